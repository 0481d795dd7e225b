//! The store's contract: every behaviour of `Store`, tested through the
//! trait only, with the caller's clock, so any backend can be held to it.
//! `contract_tests!` instantiates the suite for one backend, and
//! `account_tests!`, `key_tests!`, `limit_tests!`, `alert_tests!`,
//! `channel_tests!` and `action_tests!` those of its accounts, keys,
//! limits, alerts, notification channels and actions on processes; each
//! runs on SQLite and on PostgreSQL.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod actions;
mod alerts;
mod channels;
mod contract;
mod first_layout;
mod fresh_database;
mod keys;
mod layout4;
mod layout5;
mod layout6;
mod limits;
mod postgres_only;

use std::sync::Arc;

use procmon_server::store::{PostgresStore, SqliteStore};

/// A fresh SQLite store in its own temporary directory. Always there.
async fn sqlite_store() -> Option<(Arc<SqliteStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SqliteStore::open(&dir.path().join("procmon.db"))
        .await
        .expect("the store opens");
    Some((Arc::new(store), dir))
}

/// A fresh PostgreSQL store on a database of its own, or `None` when there
/// is no test server (outside CI; under `CI=true` that fails instead).
async fn postgres_store() -> Option<(Arc<PostgresStore>, tempfile::TempDir)> {
    let url = common::postgres::fresh_database().await?;
    let store = PostgresStore::open(&url).await.expect("the store opens");
    Some((Arc::new(store), tempfile::tempdir().expect("a temp dir")))
}

/// The suites of one backend, each fed by `$open` (one of the two above).
macro_rules! backend_suites {
    ($module:ident, $open:ident) => {
        mod $module {
            use super::$open;

            async fn store() -> Option<crate::contract::Fresh> {
                let (store, _dir) = $open().await?;
                Some(crate::contract::Fresh { store, _dir })
            }

            async fn accounts() -> Option<crate::accounts::Fresh> {
                let (accounts, _dir) = $open().await?;
                Some(crate::accounts::Fresh { accounts, _dir })
            }

            async fn keys() -> Option<crate::keys::Fresh> {
                let (keys, _dir) = $open().await?;
                Some(crate::keys::Fresh { keys, _dir })
            }

            async fn limits() -> Option<crate::limits::Fresh> {
                let (limits, _dir) = $open().await?;
                Some(crate::limits::Fresh { limits, _dir })
            }

            crate::contract_tests!(store);
            crate::account_tests!(accounts);
            crate::key_tests!(keys);
            async fn alerts() -> Option<crate::alerts::Fresh> {
                let (alerts, _dir) = $open().await?;
                Some(crate::alerts::Fresh { alerts, _dir })
            }

            async fn channels() -> Option<crate::channels::Fresh> {
                let (store, _dir) = $open().await?;
                Some(crate::channels::Fresh {
                    channels: store.clone(),
                    alerts: store,
                    _dir,
                })
            }

            async fn actions() -> Option<crate::actions::Fresh> {
                let (actions, _dir) = $open().await?;
                Some(crate::actions::Fresh { actions, _dir })
            }

            crate::limit_tests!(limits);
            crate::alert_tests!(alerts);
            crate::channel_tests!(channels);
            crate::action_tests!(actions);
        }
    };
}

backend_suites!(on_sqlite, sqlite_store);
backend_suites!(on_postgres, postgres_store);
