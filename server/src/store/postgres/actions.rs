//! Actions on processes in PostgreSQL, where several servers share the
//! queue: a claim locks the rows it takes and skips rows another server's
//! claim has locked (`FOR UPDATE SKIP LOCKED`), then marks them delivered
//! in the same statement, so each action goes to its agent once, whichever
//! server it asks. The statements are SQLite's too
//! ([`crate::store::actions::sql`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::actions::{ActionEntry, ActionReport, SignedAction};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use super::accounts::write_with;
use super::errors::Classify;
use super::{in_time, read_with, start_read, PostgresStore};
use crate::store::actions::{
    code_text, entry, seed_of, seed_text, signed, sql, ActionStore, EntryRow, InsertValues,
    NewAction, ResultRecorded, SignedRow, SEED_BYTES,
};
use crate::store::chain::nanos;
use crate::store::{StoreError, StoreResult};

fn signed_row(r: &Row) -> SignedRow {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
        r.get(8),
    )
}

fn entry_row(r: &Row) -> EntryRow {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
        r.get(8),
        r.get(9),
        r.get(10),
        r.get(11),
        r.get(12),
        r.get(13),
        r.get(14),
        r.get(15),
    )
}

async fn query_entries(
    tx: &Transaction<'_>,
    statement: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<EntryRow>> {
    let rows = tx
        .query(statement, params)
        .await
        .doing("cannot read the actions")?;
    Ok(rows.iter().map(entry_row).collect())
}

#[async_trait]
impl ActionStore for PostgresStore {
    async fn signing_seed(
        &self,
        candidate: &[u8; SEED_BYTES],
        now: DateTime<Utc>,
    ) -> StoreResult<[u8; SEED_BYTES]> {
        let candidate = seed_text(candidate);
        // A second server inserting at once waits for the first's insert,
        // then inserts nothing and reads the first's key.
        let stored: String = write_with!(self, |tx| {
            tx.execute(sql::PUT_SEED, &[&candidate, &nanos(now)])
                .await
                .doing("cannot store the action signing key")?;
            Ok(tx
                .query_one(sql::SEED, &[])
                .await
                .doing("cannot read the action signing key")?
                .get(0))
        })?;
        seed_of(&stored)
    }

    async fn insert_action(&self, action: &NewAction) -> StoreResult<()> {
        let v = InsertValues::of(action);
        write_with!(self, |tx| {
            tx.execute(
                sql::INSERT,
                &[
                    &v.id,
                    &v.host_id,
                    &v.hostname,
                    &v.pid,
                    &v.started_at,
                    &v.process_name,
                    &v.process_user,
                    &v.kind,
                    &v.reason,
                    &v.requested_by,
                    &v.requested_at,
                    &v.nonce,
                    &v.issued_at,
                    &v.expires_at,
                    &v.signature,
                ],
            )
            .await
            .doing("cannot store the action")
            .map(drop)
        })
    }

    async fn pending_actions(&self, host_id: &str, now: DateTime<Utc>) -> StoreResult<u32> {
        // Asked with every snapshot: one statement, no transaction around
        // it, so one round trip.
        let count: i64 = in_time(&self.inner.pool, "counting the waiting actions", async {
            let conn = self
                .inner
                .pool
                .get()
                .await
                .doing("cannot connect to read")?;
            Ok::<_, StoreError>(
                conn.query_one(sql::PENDING, &[&host_id, &nanos(now)])
                    .await
                    .doing("cannot count the waiting actions")?
                    .get(0),
            )
        })
        .await?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn claim_actions(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<SignedAction>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = sql::claim("FOR UPDATE SKIP LOCKED");
        let rows = write_with!(self, |tx| {
            let rows = tx
                .query(&statement, &[&host_id, &nanos(now), &limit])
                .await
                .doing("cannot claim the host's actions")?;
            Ok(rows.iter().map(signed_row).collect::<Vec<_>>())
        })?;
        let mut claimed = rows
            .into_iter()
            .map(signed)
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by(|a, b| a.issued_at.cmp(&b.issued_at).then(a.id.cmp(&b.id)));
        Ok(claimed)
    }

    async fn record_result(
        &self,
        host_id: &str,
        id: Uuid,
        report: &ActionReport,
        at: DateTime<Utc>,
    ) -> StoreResult<ResultRecorded> {
        let code = code_text(report.code)?;
        let id = id.to_string();
        // A second report waits for the first's row lock, then finds the
        // result written and changes nothing.
        write_with!(self, |tx| {
            let written = tx
                .execute(
                    sql::RECORD,
                    &[&id, &host_id, &code, &report.message, &nanos(at)],
                )
                .await
                .doing("cannot record the action's result")?;
            if written == 1 {
                return Ok(ResultRecorded::Recorded);
            }
            let known: i64 = tx
                .query_one(sql::EXISTS, &[&id, &host_id])
                .await
                .doing("cannot read the action")?
                .get(0);
            Ok(if known > 0 {
                ResultRecorded::AlreadyRecorded
            } else {
                ResultRecorded::NotFound
            })
        })
    }

    async fn action(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<ActionEntry>> {
        let id = id.to_string();
        let statement = format!(
            "SELECT {} FROM process_action WHERE id = $1",
            sql::ENTRY_COLUMNS
        );
        let rows = read_with!(self, |tx| query_entries(tx, &statement, &[&id]).await)?;
        rows.into_iter()
            .next()
            .map(|row| entry(row, now))
            .transpose()
    }

    async fn actions(
        &self,
        host_id: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ActionEntry>> {
        let statement = sql::list(host_id.is_some(), limit);
        let rows = read_with!(self, |tx| {
            match &host_id {
                Some(host) => query_entries(tx, &statement, &[host]).await,
                None => query_entries(tx, &statement, &[]).await,
            }
        })?;
        rows.into_iter().map(|row| entry(row, now)).collect()
    }
}
