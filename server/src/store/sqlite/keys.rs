//! Agent keys and enrollment secrets in SQLite: hashes only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::errors::Classify;
use super::SqliteStore;
use crate::store::chain::nanos;
use crate::store::keys::{AgentKeyRecord, Binding, Digest, KeyStore};
use crate::store::{StoreError, StoreResult};

/// The tables, created with the others at open.
pub const TABLES: &str = "
CREATE TABLE IF NOT EXISTS agent_key (
    id TEXT PRIMARY KEY NOT NULL,
    -- SHA-256 of the key's secret part; the key itself is never stored.
    secret_hash BLOB NOT NULL,
    host_id TEXT,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS agent_key_host ON agent_key (host_id);

CREATE TABLE IF NOT EXISTS enroll_secret (
    secret_hash BLOB PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
";

const COLUMNS: &str = "id, host_id, label, created_at, revoked_at, secret_hash";

fn record(row: &Row<'_>) -> rusqlite::Result<(AgentKeyRecord, Digest)> {
    let hash: Vec<u8> = row.get(5)?;
    let mut digest = [0u8; 32];
    if hash.len() == 32 {
        digest.copy_from_slice(&hash);
    }
    Ok((
        AgentKeyRecord {
            id: row.get(0)?,
            host_id: row.get(1)?,
            label: row.get(2)?,
            created_at: DateTime::from_timestamp_nanos(row.get(3)?),
            revoked_at: row
                .get::<_, Option<i64>>(4)?
                .map(DateTime::from_timestamp_nanos),
        },
        digest,
    ))
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_key(&self, record: &AgentKeyRecord, secret_hash: Digest) -> StoreResult<()> {
        let record = record.clone();
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(
                        "INSERT INTO agent_key (id, secret_hash, host_id, label, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            record.id,
                            secret_hash.to_vec(),
                            record.host_id,
                            record.label,
                            nanos(record.created_at)
                        ])
                    })
                    .doing("cannot store the key")
                    .map(drop)
                })
            })
        })
        .await
    }

    async fn key(&self, id: &str) -> StoreResult<Option<(AgentKeyRecord, Digest)>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM agent_key WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], record).optional())
                .doing("cannot read the key")
        })
        .await
    }

    async fn keys(&self) -> StoreResult<Vec<AgentKeyRecord>> {
        self.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM agent_key ORDER BY created_at DESC, id"
                ))
                .doing("cannot read the keys")?;
            let rows = s.query_map([], record).doing("cannot read the keys")?;
            rows.map(|r| r.map(|(k, _)| k))
                .collect::<Result<_, _>>()
                .doing("cannot read the keys")
        })
        .await
    }

    async fn bind_key(&self, id: &str, host_id: &str) -> StoreResult<Binding> {
        let (id, host_id) = (id.to_owned(), host_id.to_owned());
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    // Bound only if unbound: of two hosts racing to use one
                    // new key, the first wins and the other is refused.
                    conn.prepare_cached(
                        "UPDATE agent_key SET host_id = ?2
                         WHERE id = ?1 AND host_id IS NULL AND revoked_at IS NULL",
                    )
                    .and_then(|mut s| s.execute(params![id, host_id]))
                    .doing("cannot bind the key")?;
                    let bound: Option<(Option<String>, Option<i64>)> = conn
                        .prepare_cached("SELECT host_id, revoked_at FROM agent_key WHERE id = ?1")
                        .and_then(|mut s| {
                            s.query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                                .optional()
                        })
                        .doing("cannot bind the key")?;
                    Ok(match bound {
                        Some((Some(h), None)) if h == host_id => Binding::Bound,
                        Some((Some(h), None)) => Binding::OtherHost(h),
                        _ => Binding::Invalid,
                    })
                })
            })
        })
        .await
    }

    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.to_owned();
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(
                        "UPDATE agent_key SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    )
                    .and_then(|mut s| s.execute(params![id, nanos(at)]))
                    .doing("cannot revoke the key")
                    .map(|n| n == 1)
                })
            })
        })
        .await
    }

    async fn revoke_keys_of(
        &self,
        host_id: Option<&str>,
        label: Option<&str>,
        except: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        if host_id.is_none() && label.is_none() {
            return Err(StoreError::OutOfRange(
                "say whose keys to revoke: a host, a label, or both".into(),
            ));
        }
        let (host_id, label, except) = (
            host_id.map(str::to_owned),
            label.map(str::to_owned),
            except.to_owned(),
        );
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(
                        "UPDATE agent_key SET revoked_at = ?4
                         WHERE revoked_at IS NULL AND id <> ?3
                           AND ((?1 IS NOT NULL AND host_id = ?1)
                             OR (?2 IS NOT NULL AND label = ?2
                                 AND (host_id IS NULL OR host_id = coalesce(?1, host_id))))",
                    )
                    .and_then(|mut s| s.execute(params![host_id, label, except, nanos(at)]))
                    .doing("cannot revoke keys")
                    .map(|n| n as u64)
                })
            })
        })
        .await
    }

    async fn set_enroll_secret(&self, hash: Digest, at: DateTime<Utc>) -> StoreResult<()> {
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(
                        "UPDATE enroll_secret SET revoked_at = ?1 WHERE revoked_at IS NULL",
                    )
                    .and_then(|mut s| s.execute([nanos(at)]))
                    .doing("cannot rotate the enrollment secret")?;
                    conn.prepare_cached(
                        "INSERT INTO enroll_secret (secret_hash, created_at) VALUES (?1, ?2)",
                    )
                    .and_then(|mut s| s.execute(params![hash.to_vec(), nanos(at)]))
                    .doing("cannot store the enrollment secret")
                    .map(drop)
                })
            })
        })
        .await
    }

    async fn enroll_secrets(&self) -> StoreResult<Vec<Digest>> {
        self.read(|conn| {
            let mut s = conn
                .prepare_cached("SELECT secret_hash FROM enroll_secret WHERE revoked_at IS NULL")
                .doing("cannot read the enrollment secrets")?;
            let rows = s
                .query_map([], |r| r.get::<_, Vec<u8>>(0))
                .doing("cannot read the enrollment secrets")?;
            let mut out = Vec::new();
            for row in rows {
                let bytes = row.doing("cannot read the enrollment secrets")?;
                if let Ok(digest) = <Digest>::try_from(bytes.as_slice()) {
                    out.push(digest);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn enroll_secret_made(&self) -> StoreResult<bool> {
        self.read(|conn| {
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM enroll_secret)")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .doing("cannot read the enrollment secrets")
        })
        .await
    }

    async fn revoke_enroll_secrets(&self, at: DateTime<Utc>) -> StoreResult<u64> {
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(
                        "UPDATE enroll_secret SET revoked_at = ?1 WHERE revoked_at IS NULL",
                    )
                    .and_then(|mut s| s.execute([nanos(at)]))
                    .doing("cannot revoke the enrollment secrets")
                    .map(|n| n as u64)
                })
            })
        })
        .await
    }
}
