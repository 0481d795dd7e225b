//! A fresh PostgreSQL database per test, on the server that
//! `scripts/with-postgres` starts (and `scripts/test` runs the suite in):
//! it exports `PROCMON_TEST_POSTGRES_URL`. Databases are not dropped
//! afterwards; the whole cluster is thrown away when the run ends.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test server, a `postgres://` URL of a database
/// on it whose user may create databases.
pub const URL_VARIABLE: &str = "PROCMON_TEST_POSTGRES_URL";

/// The URL of a new, empty database on the test server, or `None` when
/// there is no test server: then under `CI=true` this panics (CI must run
/// every test), elsewhere it prints that the PostgreSQL variant is skipped.
pub async fn fresh_database() -> Option<String> {
    let Some(base) = std::env::var(URL_VARIABLE).ok().filter(|u| !u.is_empty()) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{URL_VARIABLE} is not set, and CI must run the PostgreSQL tests: \
                 they need a PostgreSQL server, which scripts/test starts \
                 (through scripts/with-postgres)"
            );
        }
        eprintln!(
            "skipped: the PostgreSQL variant ({URL_VARIABLE} is not set; \
             scripts/with-postgres COMMAND runs COMMAND with a server)"
        );
        return None;
    };
    let name = unique_name();
    let client = connect(&base).await;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| {
            panic!("cannot create the test database {name} on {URL_VARIABLE}: {e}")
        });
    Some(with_database(&base, &name))
}

/// A client of the database at `url`, its connection driven on the test's
/// runtime.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to the test PostgreSQL server ({URL_VARIABLE}): {e}")
        });
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("the test PostgreSQL connection failed: {e}");
        }
    });
    client
}

/// A name no other test of any run on this cluster has: the process, a
/// count within it, and the time (tests of several binaries run at once).
fn unique_name() -> String {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "procmon_test_{}_{}_{nanos}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database replaced by `name`, keeping user, host, port
/// and any parameters after `?`.
pub fn with_database(url: &str, name: &str) -> String {
    let (rest, query) = match url.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (url, None),
    };
    let (scheme, authority) = rest
        .split_once("://")
        .unwrap_or_else(|| panic!("{URL_VARIABLE} is not a postgres:// URL (no \"://\")"));
    let authority = authority.split_once('/').map_or(authority, |(a, _)| a);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}
