//! The store's contract: every behaviour of `Store`, tested through the
//! trait only, with the caller's clock, so any backend can be held to it.
//! `contract_tests!` instantiates the suite for one backend, and
//! `account_tests!` and `key_tests!` those of its accounts and keys.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod contract;
mod first_layout;
mod fresh_database;
mod keys;
mod layout4;

/// A fresh SQLite store in its own temporary directory.
async fn sqlite() -> contract::Fresh {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = procmon_server::store::SqliteStore::open(&dir.path().join("procmon.db"))
        .await
        .expect("the store opens");
    contract::Fresh {
        store: std::sync::Arc::new(store),
        _dir: dir,
    }
}

contract_tests!(sqlite);

/// The accounts of a fresh SQLite store.
async fn sqlite_accounts() -> accounts::Fresh {
    let fresh = sqlite_store().await;
    accounts::Fresh {
        accounts: fresh.0,
        _dir: fresh.1,
    }
}

/// The keys of a fresh SQLite store.
async fn sqlite_keys() -> keys::Fresh {
    let fresh = sqlite_store().await;
    keys::Fresh {
        keys: fresh.0,
        _dir: fresh.1,
    }
}

/// A fresh SQLite store as itself, for the trait each suite needs.
async fn sqlite_store() -> (
    std::sync::Arc<procmon_server::store::SqliteStore>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = procmon_server::store::SqliteStore::open(&dir.path().join("procmon.db"))
        .await
        .expect("the store opens");
    (std::sync::Arc::new(store), dir)
}

account_tests!(sqlite_accounts);
key_tests!(sqlite_keys);
