//! PostgreSQL's failures in the store's words: what keeps the database from
//! being used now (the server down, restarting or shutting down, a lost
//! connection, a full disk, a read-only standby) is `Unavailable`, with a
//! message that names the cause; anything else is `Failed`.

use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// The cause named when a lock was not had in time (`lock_timeout`).
pub const LOCK_WAIT: &str = "a lock in the database is held too long by another session";

/// Why the database cannot be used now, if that is what `error` says.
fn cause(error: &tokio_postgres::Error) -> Option<&'static str> {
    if let Some(code) = error.code() {
        let code = code.code();
        return match code {
            "57P01" => Some("the PostgreSQL server was shut down by its administrator"),
            "57P02" => Some("the PostgreSQL server crashed"),
            "57P03" => Some("the PostgreSQL server is starting up or shutting down"),
            "53100" => Some("the PostgreSQL server's disk is full"),
            "53200" => Some("the PostgreSQL server is out of memory"),
            "53300" => Some("the PostgreSQL server has too many connections"),
            "25006" => Some("the PostgreSQL server is read-only (a standby?)"),
            "55P03" => Some(LOCK_WAIT),
            c if c.starts_with("08") => Some("the connection to PostgreSQL failed"),
            _ => None,
        };
    }
    // No SQLSTATE: the connection itself (refused, reset, closed).
    if error.is_closed() {
        return Some("the connection to PostgreSQL was closed");
    }
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return Some("PostgreSQL cannot be reached");
        }
        source = s.source();
    }
    None
}

/// What to call a failure of PostgreSQL while doing `what`.
pub fn classify(error: tokio_postgres::Error, what: &str) -> StoreError {
    match cause(&error) {
        Some(cause) => {
            // The server's own words where it sent some ("db error" says
            // nothing), else the driver's.
            let detail = error
                .as_db_error()
                .map_or_else(|| error.to_string(), |db| db.message().to_owned());
            StoreError::Unavailable(format!("{what}: {cause} ({detail})"))
        }
        None => StoreError::Failed(anyhow::Error::new(error).context(what.to_owned())),
    }
}

/// What to call a failure to get a pooled connection.
pub fn classify_pool(error: deadpool_postgres::PoolError, what: &str) -> StoreError {
    use deadpool_postgres::PoolError;
    match error {
        // No connection could be made or kept (refused, the database not
        // accepting connections, credentials no longer valid): whatever
        // the cause, the database cannot be used now.
        PoolError::Backend(e) => match classify(e, what) {
            StoreError::Failed(e) => StoreError::Unavailable(format!("{e:#}")),
            other => other,
        },
        PoolError::Closed => StoreError::Unavailable(format!("{what}: the store is closed")),
        PoolError::Timeout(_) => StoreError::Unavailable(format!(
            "{what}: no connection to PostgreSQL could be had in time"
        )),
        other => StoreError::Unavailable(format!("{what}: {other}")),
    }
}

/// Whether `error` says a row fell outside every partition: one was
/// dropped by another server since this one saw it.
pub fn no_partition(error: &StoreError) -> bool {
    match error {
        StoreError::Failed(e) => e
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(|e| e.code())
            .is_some_and(|c| *c == SqlState::CHECK_VIOLATION),
        _ => false,
    }
}

/// `?` with context for PostgreSQL calls.
pub trait Classify<T> {
    fn doing(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Classify<T> for Result<T, tokio_postgres::Error> {
    fn doing(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| classify(e, what))
    }
}

impl<T> Classify<T> for Result<T, deadpool_postgres::PoolError> {
    fn doing(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| classify_pool(e, what))
    }
}
