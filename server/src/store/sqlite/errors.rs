//! SQLite's failures in the store's words: what keeps the database from
//! being used now (and clears by itself) is `Unavailable`, with a message
//! that names the cause; anything else is `Failed`.

use rusqlite::ErrorCode;

use crate::store::StoreError;

/// What to call a failure of SQLite while doing `what`.
pub fn classify(error: rusqlite::Error, what: &str) -> StoreError {
    let cause = match &error {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::DiskFull => Some("the disk is full"),
            ErrorCode::ReadOnly => Some("the database file or its directory is read-only"),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                Some("the database is locked by another program")
            }
            ErrorCode::SystemIoFailure => Some("reading or writing the database file failed"),
            ErrorCode::CannotOpen => Some("the database file cannot be opened"),
            ErrorCode::PermissionDenied => Some("permission to the database file was denied"),
            ErrorCode::NotADatabase => Some("the database file is not a SQLite database"),
            ErrorCode::FileLockingProtocolFailed => Some("the database file cannot be locked"),
            _ => None,
        },
        _ => None,
    };
    match cause {
        Some(cause) => StoreError::Unavailable(format!("{what}: {cause} ({error})")),
        None => StoreError::Failed(anyhow::Error::new(error).context(what.to_owned())),
    }
}

/// `?` with context for SQLite calls.
pub trait Classify<T> {
    fn doing(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Classify<T> for Result<T, rusqlite::Error> {
    fn doing(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| classify(e, what))
    }
}
