//! Users, sessions and sign-in links in PostgreSQL: three small tables
//! beside the hosts, each change one short transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::{Row, Transaction};

use super::errors::Classify;
use super::schema::SECOND;
use super::{read_with, start_read, PostgresStore};
use crate::store::accounts::{
    AccountStore, Role, SessionLifetime, SessionRecord, TokenHash, UserRecord,
};
use crate::store::chain::nanos;
use crate::store::{StoreError, StoreResult};

/// Activity is recorded when the last record is older than this: a page
/// polling every 2 s costs a write a minute, not one a poll.
const TOUCH_EVERY: i64 = 60 * SECOND;

fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

fn user_row(row: &Row) -> UserRecord {
    UserRecord {
        name: row.get(0),
        // The CHECK constraint keeps other values out.
        role: Role::parse(row.get(1)).unwrap_or(Role::Viewer),
        created_at: time(row.get(2)),
        password_hash: row.get(3),
    }
}

const USER_COLUMNS: &str = "name, role, created_at, password_hash";

/// Runs `$body` with `$tx`, a write transaction, committed after it.
macro_rules! write_with {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut conn = $self
            .inner
            .pool
            .get()
            .await
            .doing("cannot connect to write")?;
        let tx = conn.transaction().await.doing("cannot start a write")?;
        let answer: StoreResult<_> = {
            let $tx: &Transaction<'_> = &tx;
            async { $body }.await
        };
        let answer = answer?;
        tx.commit().await.doing("cannot commit")?;
        Ok::<_, StoreError>(answer)
    }};
}
pub(crate) use write_with;

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<bool> {
        write_with!(self, |tx| {
            let added = tx
                .execute(
                    "INSERT INTO account (name, role, created_at, password_hash)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                    &[
                        &user.name,
                        &user.role.as_str(),
                        &nanos(user.created_at),
                        &user.password_hash,
                    ],
                )
                .await
                .doing("cannot add the user")?;
            Ok(added == 1)
        })
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> StoreResult<bool> {
        write_with!(self, |tx| {
            let changed = tx
                .execute(
                    "UPDATE account SET password_hash = $2 WHERE name = $1",
                    &[&name, &password_hash],
                )
                .await
                .doing("cannot set the password")?;
            Ok(changed == 1)
        })
    }

    async fn remove_user(&self, name: &str) -> StoreResult<bool> {
        write_with!(self, |tx| {
            for sql in [
                "DELETE FROM session WHERE account = $1",
                "DELETE FROM signin_link WHERE account = $1",
            ] {
                tx.execute(sql, &[&name])
                    .await
                    .doing("cannot remove the user's sessions")?;
            }
            let removed = tx
                .execute("DELETE FROM account WHERE name = $1", &[&name])
                .await
                .doing("cannot remove the user")?;
            Ok(removed == 1)
        })
    }

    async fn find_user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        read_with!(self, |tx| {
            let row = tx
                .query_opt(
                    &format!("SELECT {USER_COLUMNS} FROM account WHERE name = $1"),
                    &[&name],
                )
                .await
                .doing("cannot read the user")?;
            Ok(row.as_ref().map(user_row))
        })
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        read_with!(self, |tx| {
            let rows = tx
                .query(
                    &format!("SELECT {USER_COLUMNS} FROM account ORDER BY name"),
                    &[],
                )
                .await
                .doing("cannot read the users")?;
            Ok(rows.iter().map(user_row).collect())
        })
    }

    async fn create_session(
        &self,
        token_hash: &TokenHash,
        name: &str,
        now: DateTime<Utc>,
        via_link: bool,
    ) -> StoreResult<()> {
        write_with!(self, |tx| {
            // The user's row is locked: a removal cannot slip in between.
            let known = tx
                .query_opt("SELECT 1 FROM account WHERE name = $1 FOR SHARE", &[&name])
                .await
                .doing("cannot start the session")?
                .is_some();
            if !known {
                return Err(StoreError::OutOfRange(format!("no user named {name:?}")));
            }
            tx.execute(
                "INSERT INTO session (token_hash, account, created_at, last_used, via_link)
                 VALUES ($1, $2, $3, $3, $4)",
                &[&&token_hash[..], &name, &nanos(now), &via_link],
            )
            .await
            .doing("cannot start the session")
            .map(drop)
        })
    }

    async fn session(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
        lifetime: SessionLifetime,
    ) -> StoreResult<Option<SessionRecord>> {
        let found: Option<SessionRecord> = read_with!(self, |tx| {
            let row = tx
                .query_opt(
                    "SELECT a.name, a.role, a.created_at, a.password_hash,
                            s.created_at, s.last_used, s.via_link
                     FROM session s JOIN account a ON a.name = s.account
                     WHERE s.token_hash = $1",
                    &[&&token_hash[..]],
                )
                .await
                .doing("cannot read the session")?;
            Ok(row.map(|row| SessionRecord {
                user: user_row(&row),
                created_at: time(row.get(4)),
                last_used: time(row.get(5)),
                via_link: row.get(6),
            }))
        })?;
        let Some(mut session) = found else {
            return Ok(None);
        };
        if session.expires_at(lifetime) <= now {
            self.delete_session(token_hash).await?;
            return Ok(None);
        }
        let now_nanos = nanos(now);
        if now_nanos - nanos(session.last_used) >= TOUCH_EVERY {
            write_with!(self, |tx| {
                tx.execute(
                    "UPDATE session SET last_used = greatest(last_used, $2) WHERE token_hash = $1",
                    &[&&token_hash[..], &now_nanos],
                )
                .await
                .doing("cannot record the session's use")
                .map(drop)
            })?;
            session.last_used = now;
        }
        Ok(Some(session))
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<()> {
        write_with!(self, |tx| {
            tx.execute(
                "DELETE FROM session WHERE token_hash = $1",
                &[&&token_hash[..]],
            )
            .await
            .doing("cannot end the session")
            .map(drop)
        })
    }

    async fn delete_sessions_of_user(
        &self,
        name: &str,
        keep: Option<&TokenHash>,
    ) -> StoreResult<u64> {
        let keep = keep.copied().unwrap_or_default();
        write_with!(self, |tx| {
            tx.execute(
                "DELETE FROM session WHERE account = $1 AND token_hash <> $2",
                &[&name, &&keep[..]],
            )
            .await
            .doing("cannot end the user's sessions")
        })
    }

    async fn delete_ended(
        &self,
        now: DateTime<Utc>,
        lifetime: SessionLifetime,
    ) -> StoreResult<u64> {
        let span = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let now_ns = nanos(now);
        let idle = now_ns.saturating_sub(span(lifetime.idle));
        let absolute = now_ns.saturating_sub(span(lifetime.absolute));
        write_with!(self, |tx| {
            let sessions = tx
                .execute(
                    "DELETE FROM session WHERE last_used < $1 OR created_at < $2",
                    &[&idle, &absolute],
                )
                .await
                .doing("cannot delete ended sessions")?;
            let links = tx
                .execute("DELETE FROM signin_link WHERE expires_at < $1", &[&now_ns])
                .await
                .doing("cannot delete expired sign-in links")?;
            Ok(sessions + links)
        })
    }

    async fn create_signin_link(
        &self,
        token_hash: &TokenHash,
        name: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        write_with!(self, |tx| {
            tx.execute(
                "INSERT INTO signin_link (token_hash, account, expires_at) VALUES ($1, $2, $3)",
                &[&&token_hash[..], &name, &nanos(expires_at)],
            )
            .await
            .doing("cannot store the sign-in link")
            .map(drop)
        })
    }

    async fn take_signin_link(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let now = nanos(now);
        write_with!(self, |tx| {
            // Expired links of anyone go too: they can never be used.
            tx.execute("DELETE FROM signin_link WHERE expires_at <= $1", &[&now])
                .await
                .doing("cannot use the sign-in link")?;
            let row = tx
                .query_opt(
                    "DELETE FROM signin_link WHERE token_hash = $1 RETURNING account",
                    &[&&token_hash[..]],
                )
                .await
                .doing("cannot use the sign-in link")?;
            Ok(row.map(|r| r.get(0)))
        })
    }
}
