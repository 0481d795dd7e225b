//! The one place that turns a database URL into a store: everything above
//! it holds the store traits only, whichever backend answers them.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::{
    AccountStore, ActionStore, AlertStore, ChannelStore, KeyStore, LimitStore, PostgresStore,
    SqliteStore, Store,
};

/// The stores of one database: history, people, agent keys, budgets,
/// alerts, channels, actions on processes.
#[derive(Clone)]
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub accounts: Arc<dyn AccountStore>,
    pub keys: Arc<dyn KeyStore>,
    pub limits: Arc<dyn LimitStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub channels: Arc<dyn ChannelStore>,
    pub actions: Arc<dyn ActionStore>,
}

/// Where the database is.
#[derive(Clone)]
pub enum DatabaseUrl {
    /// An SQLite file: `sqlite://path`, `sqlite:path`, or a bare path.
    Sqlite(PathBuf),
    /// A PostgreSQL server: `postgres://…` or `postgresql://…`. Secret, as
    /// it may hold a password.
    Postgres(SecretString),
}

impl DatabaseUrl {
    /// The URL as it may be shown: a PostgreSQL password is left out.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => redact_url(url.expose_secret()),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sqlite(a), Self::Sqlite(b)) => a == b,
            (Self::Postgres(a), Self::Postgres(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "the database is empty: give a file path, sqlite://path or postgres://…".into(),
            );
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(SecretString::from(text.to_owned())));
        }
        if let Some(path) = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(
                    "sqlite:// needs a file path after it, e.g. sqlite://procmon.db".into(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "{scheme}:// is not a database procmon knows: use a file path, sqlite://path \
                 or postgres://user@host/database"
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(text)))
    }
}

/// A PostgreSQL URL with its password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

impl Backend {
    /// One database serving as every store.
    fn of<S>(store: S) -> Self
    where
        S: Store + AccountStore + KeyStore + LimitStore + AlertStore + ChannelStore + ActionStore,
    {
        let store = Arc::new(store);
        Self {
            store: store.clone(),
            accounts: store.clone(),
            keys: store.clone(),
            limits: store.clone(),
            alerts: store.clone(),
            channels: store.clone(),
            actions: store,
        }
    }
}

/// Opens the database at `url`, creating and migrating it as needed.
pub async fn open(url: &DatabaseUrl) -> anyhow::Result<Backend> {
    match url {
        DatabaseUrl::Sqlite(path) => Ok(Backend::of(SqliteStore::open(path).await?)),
        DatabaseUrl::Postgres(secret) => Ok(Backend::of(
            PostgresStore::open(secret.expose_secret()).await?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        let parse = |s: &str| s.parse::<DatabaseUrl>();
        assert_eq!(
            parse("procmon.db"),
            Ok(DatabaseUrl::Sqlite("procmon.db".into()))
        );
        assert_eq!(
            parse("sqlite:///var/lib/p.db"),
            Ok(DatabaseUrl::Sqlite("/var/lib/p.db".into()))
        );
        assert_eq!(parse("sqlite:p.db"), Ok(DatabaseUrl::Sqlite("p.db".into())));
        assert!(matches!(
            parse("postgres://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(parse("mysql://h/db").unwrap_err().contains("mysql://"));
        assert!(parse("sqlite://").is_err());
        assert!(parse(" ").is_err());
    }

    #[test]
    fn a_password_is_never_shown() {
        let url: DatabaseUrl = "postgres://procmon:hunter2@db.example:5432/procmon"
            .parse()
            .unwrap();
        for shown in [url.to_string(), format!("{url:?}"), url.redacted()] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(
                shown.contains("procmon:***@db.example:5432/procmon"),
                "{shown}"
            );
        }
        let plain: DatabaseUrl = "postgres://procmon@db/procmon".parse().unwrap();
        assert_eq!(plain.to_string(), "postgres://procmon@db/procmon");
    }
}
