//! The store's contract: every behaviour of `Store`, tested through the
//! trait only, with the caller's clock, so any backend can be held to it.
//! `contract_tests!` instantiates the suite for one backend.

mod contract;
mod first_layout;
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
