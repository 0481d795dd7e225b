//! Agent keys and enrollment secrets in PostgreSQL: hashes only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::{Row, Transaction};

use super::accounts::write_with;
use super::errors::Classify;
use super::{read_with, start_read, PostgresStore};
use crate::store::chain::nanos;
use crate::store::keys::{AgentKeyRecord, Binding, Digest, KeyStore};
use crate::store::{StoreError, StoreResult};

const COLUMNS: &str = "id, host_id, label, created_at, revoked_at, secret_hash";

fn digest(bytes: &[u8]) -> Digest {
    <Digest>::try_from(bytes).unwrap_or_default()
}

fn record(row: &Row) -> (AgentKeyRecord, Digest) {
    (
        AgentKeyRecord {
            id: row.get(0),
            host_id: row.get(1),
            label: row.get(2),
            created_at: DateTime::from_timestamp_nanos(row.get(3)),
            revoked_at: row
                .get::<_, Option<i64>>(4)
                .map(DateTime::from_timestamp_nanos),
        },
        digest(row.get(5)),
    )
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn create_key(&self, record: &AgentKeyRecord, secret_hash: Digest) -> StoreResult<()> {
        write_with!(self, |tx| {
            tx.execute(
                "INSERT INTO agent_key (id, secret_hash, host_id, label, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &record.id,
                    &&secret_hash[..],
                    &record.host_id,
                    &record.label,
                    &nanos(record.created_at),
                ],
            )
            .await
            .doing("cannot store the key")
            .map(drop)
        })
    }

    async fn key(&self, id: &str) -> StoreResult<Option<(AgentKeyRecord, Digest)>> {
        read_with!(self, |tx| {
            let row = tx
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM agent_key WHERE id = $1"),
                    &[&id],
                )
                .await
                .doing("cannot read the key")?;
            Ok(row.as_ref().map(record))
        })
    }

    async fn keys(&self) -> StoreResult<Vec<AgentKeyRecord>> {
        read_with!(self, |tx| {
            let rows = tx
                .query(
                    &format!("SELECT {COLUMNS} FROM agent_key ORDER BY created_at DESC, id"),
                    &[],
                )
                .await
                .doing("cannot read the keys")?;
            Ok(rows.iter().map(|r| record(r).0).collect())
        })
    }

    async fn bind_key(&self, id: &str, host_id: &str) -> StoreResult<Binding> {
        write_with!(self, |tx| {
            // Bound only if unbound: of two hosts racing to use one new
            // key, the first wins and the other is refused.
            tx.execute(
                "UPDATE agent_key SET host_id = $2
                 WHERE id = $1 AND host_id IS NULL AND revoked_at IS NULL",
                &[&id, &host_id],
            )
            .await
            .doing("cannot bind the key")?;
            let row = tx
                .query_opt(
                    "SELECT host_id, revoked_at FROM agent_key WHERE id = $1",
                    &[&id],
                )
                .await
                .doing("cannot bind the key")?;
            let bound: Option<(Option<String>, Option<i64>)> = row.map(|r| (r.get(0), r.get(1)));
            Ok(match bound {
                Some((Some(h), None)) if h == host_id => Binding::Bound,
                Some((Some(h), None)) => Binding::OtherHost(h),
                _ => Binding::Invalid,
            })
        })
    }

    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        write_with!(self, |tx| {
            tx.execute(
                "UPDATE agent_key SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &nanos(at)],
            )
            .await
            .doing("cannot revoke the key")
            .map(|n| n == 1)
        })
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
        write_with!(self, |tx| {
            tx.execute(
                "UPDATE agent_key SET revoked_at = $4
                 WHERE revoked_at IS NULL AND id <> $3
                   AND (($1::text IS NOT NULL AND host_id = $1)
                     OR ($2::text IS NOT NULL AND label = $2
                         AND (host_id IS NULL OR host_id = coalesce($1, host_id))))",
                &[&host_id, &label, &except, &nanos(at)],
            )
            .await
            .doing("cannot revoke keys")
        })
    }

    async fn set_enroll_secret(&self, hash: Digest, at: DateTime<Utc>) -> StoreResult<()> {
        write_with!(self, |tx| {
            tx.execute(
                "UPDATE enroll_secret SET revoked_at = $1 WHERE revoked_at IS NULL",
                &[&nanos(at)],
            )
            .await
            .doing("cannot rotate the enrollment secret")?;
            tx.execute(
                "INSERT INTO enroll_secret (secret_hash, created_at) VALUES ($1, $2)",
                &[&&hash[..], &nanos(at)],
            )
            .await
            .doing("cannot store the enrollment secret")
            .map(drop)
        })
    }

    async fn enroll_secrets(&self) -> StoreResult<Vec<Digest>> {
        read_with!(self, |tx| {
            let rows = tx
                .query(
                    "SELECT secret_hash FROM enroll_secret WHERE revoked_at IS NULL",
                    &[],
                )
                .await
                .doing("cannot read the enrollment secrets")?;
            Ok(rows
                .iter()
                .filter_map(|r| <Digest>::try_from(r.get::<_, &[u8]>(0)).ok())
                .collect())
        })
    }

    async fn enroll_secret_made(&self) -> StoreResult<bool> {
        read_with!(self, |tx| {
            tx.query_one("SELECT EXISTS (SELECT 1 FROM enroll_secret)", &[])
                .await
                .doing("cannot read the enrollment secrets")
                .map(|r| r.get(0))
        })
    }

    async fn revoke_enroll_secrets(&self, at: DateTime<Utc>) -> StoreResult<u64> {
        write_with!(self, |tx| {
            tx.execute(
                "UPDATE enroll_secret SET revoked_at = $1 WHERE revoked_at IS NULL",
                &[&nanos(at)],
            )
            .await
            .doing("cannot revoke the enrollment secrets")
        })
    }
}
