//! The store's contract: every behaviour of `Store`, tested through the
//! trait only, with the caller's clock, so any backend can be held to it.
//! `contract_tests!` instantiates the suite for one backend.

mod contract;
mod first_layout;
mod layout4;
mod postgres_only;

/// A fresh SQLite store in its own temporary directory.
async fn sqlite() -> Option<contract::Fresh> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = procmon_server::store::SqliteStore::open(&dir.path().join("procmon.db"))
        .await
        .expect("the store opens");
    Some(contract::Fresh {
        store: std::sync::Arc::new(store),
        _dir: dir,
    })
}

/// The variable that names the PostgreSQL server the tests may use: a URL
/// like `postgres://postgres@127.0.0.1:PORT/postgres` whose user may create
/// databases.
const POSTGRES_URL: &str = "PROCMON_TEST_POSTGRES_URL";

/// The URL of a new, empty database on the test server; `None` (after
/// saying so) when no server is set outside CI. In CI a missing server
/// fails the test: the suite must not pass by skipping.
async fn postgres_database() -> Option<String> {
    let Ok(url) = std::env::var(POSTGRES_URL) else {
        let why = format!("PostgreSQL is needed: set {POSTGRES_URL} (scripts/test does)");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}");
        }
        eprintln!("{why}; this test did nothing");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL}: {e}"));
    tokio::spawn(connection);
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("a test database is created");
    let base = url.split('?').next().unwrap_or(&url);
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Some(format!("{server}/{name}"))
}

/// A fresh PostgreSQL store on a database of its own.
async fn postgres() -> Option<contract::Fresh> {
    let url = postgres_database().await?;
    let store = procmon_server::store::PostgresStore::open(&url)
        .await
        .expect("the store opens");
    Some(contract::Fresh {
        store: std::sync::Arc::new(store),
        _dir: tempfile::tempdir().expect("a temp dir"),
    })
}

contract_tests!(sqlite);

/// The same contract on PostgreSQL.
mod on_postgres {
    use super::postgres;
    use crate::contract_tests;
    contract_tests!(postgres);
}
