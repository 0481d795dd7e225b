//! Users, sessions and sign-in links in SQLite: three small tables beside
//! the hosts, written through the one writer like everything else.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::errors::Classify;
use super::{Inner, SqliteStore};
use crate::store::accounts::{
    AccountStore, Role, SessionLifetime, SessionRecord, TokenHash, UserRecord,
};
use crate::store::chain::nanos;
use crate::store::{StoreError, StoreResult};

/// Created with the other base tables (`migrate`). Times are nanoseconds
/// since 1970, as elsewhere in the store.
pub const TABLES: &str = "
CREATE TABLE IF NOT EXISTS account (
    name TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_at INTEGER NOT NULL,
    -- argon2 in PHC form; NULL until a password is set
    password_hash TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS session (
    token_hash BLOB PRIMARY KEY NOT NULL,
    account TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used INTEGER NOT NULL,
    via_link INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS session_account ON session (account);

CREATE TABLE IF NOT EXISTS signin_link (
    token_hash BLOB PRIMARY KEY NOT NULL,
    account TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
";

/// Activity is recorded when the last record is older than this: often
/// enough for an idle timeout of minutes or more, rare enough that a page
/// polling every 2 s costs a write a minute, not one a poll.
const TOUCH_EVERY: i64 = 60 * super::schema::SECOND;

fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let role: String = row.get(1)?;
    Ok(UserRecord {
        name: row.get(0)?,
        // The CHECK constraint keeps other values out.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at: time(row.get(2)?),
        password_hash: row.get(3)?,
    })
}

const USER_COLUMNS: &str = "name, role, created_at, password_hash";

impl SqliteStore {
    /// Runs `work` in one write transaction on the blocking pool.
    async fn account_write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.blocking(move |inner: &Inner| inner.write(|w| w.transaction(work)))
            .await
    }

    /// Runs `work` in one read transaction on the blocking pool.
    async fn account_read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.read(move |conn| work(conn)).await
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<bool> {
        let user = user.clone();
        self.account_write(move |conn| {
            let added = conn
                .prepare_cached(
                    "INSERT INTO account (name, role, created_at, password_hash)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        user.name,
                        user.role.as_str(),
                        nanos(user.created_at),
                        user.password_hash
                    ])
                })
                .doing("cannot add the user")?;
            Ok(added == 1)
        })
        .await
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> StoreResult<bool> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.account_write(move |conn| {
            let changed = conn
                .prepare_cached("UPDATE account SET password_hash = ?2 WHERE name = ?1")
                .and_then(|mut s| s.execute(params![name, hash]))
                .doing("cannot set the password")?;
            Ok(changed == 1)
        })
        .await
    }

    async fn remove_user(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        self.account_write(move |conn| {
            for sql in [
                "DELETE FROM session WHERE account = ?1",
                "DELETE FROM signin_link WHERE account = ?1",
            ] {
                conn.prepare_cached(sql)
                    .and_then(|mut s| s.execute([&name]))
                    .doing("cannot remove the user's sessions")?;
            }
            let removed = conn
                .prepare_cached("DELETE FROM account WHERE name = ?1")
                .and_then(|mut s| s.execute([&name]))
                .doing("cannot remove the user")?;
            Ok(removed == 1)
        })
        .await
    }

    async fn find_user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        let name = name.to_owned();
        self.account_read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM account WHERE name = ?1"
            ))
            .and_then(|mut s| s.query_row([name], user_row).optional())
            .doing("cannot read the user")
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.account_read(|conn| {
            let mut s = conn
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM account ORDER BY name"))
                .doing("cannot read the users")?;
            let users = s.query_map([], user_row).doing("cannot read the users")?;
            users
                .collect::<Result<_, _>>()
                .doing("cannot read the users")
        })
        .await
    }

    async fn create_session(
        &self,
        token_hash: &TokenHash,
        name: &str,
        now: DateTime<Utc>,
        via_link: bool,
    ) -> StoreResult<()> {
        let (hash, name) = (*token_hash, name.to_owned());
        self.account_write(move |conn| {
            let known: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM account WHERE name = ?1)")
                .and_then(|mut s| s.query_row([&name], |r| r.get(0)))
                .doing("cannot start the session")?;
            if !known {
                return Err(StoreError::OutOfRange(format!("no user named {name:?}")));
            }
            conn.prepare_cached(
                "INSERT INTO session (token_hash, account, created_at, last_used, via_link)
                 VALUES (?1, ?2, ?3, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![&hash[..], name, nanos(now), via_link]))
            .doing("cannot start the session")
            .map(drop)
        })
        .await
    }

    async fn session(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
        lifetime: SessionLifetime,
    ) -> StoreResult<Option<SessionRecord>> {
        let hash = *token_hash;
        let found = self
            .account_read(move |conn| {
                conn.prepare_cached(
                    "SELECT a.name, a.role, a.created_at, a.password_hash,
                            s.created_at, s.last_used, s.via_link
                     FROM session s JOIN account a ON a.name = s.account
                     WHERE s.token_hash = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&hash[..]], |row| {
                        Ok(SessionRecord {
                            user: user_row(row)?,
                            created_at: time(row.get(4)?),
                            last_used: time(row.get(5)?),
                            via_link: row.get(6)?,
                        })
                    })
                    .optional()
                })
                .doing("cannot read the session")
            })
            .await?;
        let Some(mut session) = found else {
            return Ok(None);
        };
        if session.expires_at(lifetime) <= now {
            self.delete_session(&hash).await?;
            return Ok(None);
        }
        let now_nanos = nanos(now);
        if now_nanos - nanos(session.last_used) >= TOUCH_EVERY {
            self.account_write(move |conn| {
                conn.prepare_cached(
                    "UPDATE session SET last_used = max(last_used, ?2) WHERE token_hash = ?1",
                )
                .and_then(|mut s| s.execute(params![&hash[..], now_nanos]))
                .doing("cannot record the session's use")
                .map(drop)
            })
            .await?;
            session.last_used = now;
        }
        Ok(Some(session))
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<()> {
        let hash = *token_hash;
        self.account_write(move |conn| {
            conn.prepare_cached("DELETE FROM session WHERE token_hash = ?1")
                .and_then(|mut s| s.execute([&hash[..]]))
                .doing("cannot end the session")
                .map(drop)
        })
        .await
    }

    async fn delete_sessions_of_user(
        &self,
        name: &str,
        keep: Option<&TokenHash>,
    ) -> StoreResult<u64> {
        let (name, keep) = (name.to_owned(), keep.copied().unwrap_or_default());
        self.account_write(move |conn| {
            let ended = conn
                .prepare_cached("DELETE FROM session WHERE account = ?1 AND token_hash != ?2")
                .and_then(|mut s| s.execute(params![name, &keep[..]]))
                .doing("cannot end the user's sessions")?;
            Ok(ended as u64)
        })
        .await
    }

    async fn delete_ended(
        &self,
        now: DateTime<Utc>,
        lifetime: SessionLifetime,
    ) -> StoreResult<u64> {
        let span = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let now_ns = nanos(now);
        let (idle, absolute) = (span(lifetime.idle), span(lifetime.absolute));
        self.account_write(move |conn| {
            let sessions = conn
                .prepare_cached("DELETE FROM session WHERE last_used < ?1 OR created_at < ?2")
                .and_then(|mut s| {
                    s.execute(params![
                        now_ns.saturating_sub(idle),
                        now_ns.saturating_sub(absolute)
                    ])
                })
                .doing("cannot delete ended sessions")?;
            let links = conn
                .prepare_cached("DELETE FROM signin_link WHERE expires_at < ?1")
                .and_then(|mut s| s.execute([now_ns]))
                .doing("cannot delete expired sign-in links")?;
            Ok((sessions + links) as u64)
        })
        .await
    }

    async fn create_signin_link(
        &self,
        token_hash: &TokenHash,
        name: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (hash, name) = (*token_hash, name.to_owned());
        self.account_write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO signin_link (token_hash, account, expires_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![&hash[..], name, nanos(expires_at)]))
            .doing("cannot store the sign-in link")
            .map(drop)
        })
        .await
    }

    async fn take_signin_link(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let hash = *token_hash;
        let now = nanos(now);
        self.account_write(move |conn| {
            // Expired links of anyone go too: they can never be used.
            conn.prepare_cached("DELETE FROM signin_link WHERE expires_at <= ?1")
                .and_then(|mut s| s.execute([now]))
                .doing("cannot use the sign-in link")?;
            conn.prepare_cached("DELETE FROM signin_link WHERE token_hash = ?1 RETURNING account")
                .and_then(|mut s| s.query_row([&hash[..]], |r| r.get(0)).optional())
                .doing("cannot use the sign-in link")
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIFETIME: SessionLifetime = SessionLifetime {
        idle: Duration::from_secs(3600),
        absolute: Duration::from_secs(4 * 3600),
    };

    fn user(name: &str, role: Role) -> UserRecord {
        UserRecord {
            name: name.into(),
            role,
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            password_hash: Some("$argon2id$stand-in".into()),
        }
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn users_are_added_once_listed_changed_and_removed() {
        let (_dir, store) = store().await;
        assert!(store.create_user(&user("bo", Role::Viewer)).await.unwrap());
        assert!(store.create_user(&user("al", Role::Admin)).await.unwrap());
        assert!(!store.create_user(&user("bo", Role::Admin)).await.unwrap());
        let names: Vec<_> = store
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.name, u.role))
            .collect();
        assert_eq!(
            names,
            [("al".into(), Role::Admin), ("bo".into(), Role::Viewer)]
        );
        assert!(store.set_password("bo", "new").await.unwrap());
        assert!(!store.set_password("nobody", "new").await.unwrap());
        let bo = store.find_user("bo").await.unwrap().unwrap();
        assert_eq!(bo.password_hash.as_deref(), Some("new"));
        assert!(store.remove_user("bo").await.unwrap());
        assert!(!store.remove_user("bo").await.unwrap());
        assert_eq!(store.find_user("bo").await.unwrap(), None);
    }

    #[tokio::test]
    async fn sessions_end_when_idle_too_long_or_too_old() {
        let (_dir, store) = store().await;
        store.create_user(&user("al", Role::Admin)).await.unwrap();
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let minutes = |m: i64| start + chrono::Duration::minutes(m);
        store
            .create_session(&[1; 32], "al", start, false)
            .await
            .unwrap();
        // Used every 50 minutes, it outlives the idle hour, up to 4 hours.
        for m in (50..=200).step_by(50) {
            let s = store.session(&[1; 32], minutes(m), LIFETIME).await.unwrap();
            assert_eq!(s.unwrap().user.name, "al", "at {m} min");
        }
        assert_eq!(
            store
                .session(&[1; 32], minutes(240), LIFETIME)
                .await
                .unwrap(),
            None
        );
        // And ended means gone, whatever the clock says next.
        assert_eq!(
            store.session(&[1; 32], minutes(1), LIFETIME).await.unwrap(),
            None
        );

        store
            .create_session(&[2; 32], "al", start, true)
            .await
            .unwrap();
        assert!(
            store
                .session(&[2; 32], minutes(59), LIFETIME)
                .await
                .unwrap()
                .unwrap()
                .via_link
        );
        assert_eq!(
            store
                .session(&[2; 32], minutes(120), LIFETIME)
                .await
                .unwrap(),
            None
        );
        assert!(store
            .create_session(&[3; 32], "nobody", start, false)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn sessions_of_a_user_end_together_and_with_the_user() {
        let (_dir, store) = store().await;
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        store.create_user(&user("al", Role::Admin)).await.unwrap();
        for n in 1..=3 {
            store
                .create_session(&[n; 32], "al", now, false)
                .await
                .unwrap();
        }
        assert_eq!(
            store
                .delete_sessions_of_user("al", Some(&[1; 32]))
                .await
                .unwrap(),
            2
        );
        assert!(store
            .session(&[1; 32], now, LIFETIME)
            .await
            .unwrap()
            .is_some());
        store.delete_session(&[1; 32]).await.unwrap();
        assert!(store
            .session(&[1; 32], now, LIFETIME)
            .await
            .unwrap()
            .is_none());
        store
            .create_session(&[4; 32], "al", now, false)
            .await
            .unwrap();
        store.remove_user("al").await.unwrap();
        assert!(store
            .session(&[4; 32], now, LIFETIME)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_signin_link_works_once_and_not_after_it_expires() {
        let (_dir, store) = store().await;
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let later = now + chrono::Duration::hours(1);
        store.create_user(&user("al", Role::Admin)).await.unwrap();
        store
            .create_signin_link(&[1; 32], "al", later)
            .await
            .unwrap();
        store
            .create_signin_link(&[2; 32], "al", later)
            .await
            .unwrap();
        assert_eq!(
            store
                .take_signin_link(&[1; 32], now)
                .await
                .unwrap()
                .as_deref(),
            Some("al")
        );
        assert_eq!(store.take_signin_link(&[1; 32], now).await.unwrap(), None);
        assert_eq!(store.take_signin_link(&[2; 32], later).await.unwrap(), None);
    }
}
