//! Actions on processes in SQLite. Claims and results go through the one
//! writer, so a claim is one transaction no other write interleaves with:
//! no action is handed out twice (the statements are PostgreSQL's too:
//! [`crate::store::actions::sql`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::actions::{ActionEntry, ActionReport, SignedAction};
use rusqlite::{params, params_from_iter, Row};
use uuid::Uuid;

use super::errors::Classify;
use super::SqliteStore;
use crate::store::actions::{
    code_text, entry, seed_of, seed_text, signed, sql, ActionStore, EntryRow, InsertValues,
    NewAction, ResultRecorded, SignedRow, SEED_BYTES,
};
use crate::store::alerts::sqlite_text;
use crate::store::chain::nanos;
use crate::store::StoreResult;

pub use crate::store::actions::TABLES;

fn signed_row(r: &Row<'_>) -> rusqlite::Result<SignedRow> {
    // rusqlite reads a tuple column by column, in the statement's order.
    SignedRow::try_from(r)
}

fn entry_row(r: &Row<'_>) -> rusqlite::Result<EntryRow> {
    // rusqlite reads a tuple column by column, in the statement's order.
    EntryRow::try_from(r)
}

#[async_trait]
impl ActionStore for SqliteStore {
    async fn signing_seed(
        &self,
        candidate: &[u8; SEED_BYTES],
        now: DateTime<Utc>,
    ) -> StoreResult<[u8; SEED_BYTES]> {
        let (candidate, now) = (seed_text(candidate), nanos(now));
        let stored: String = self
            .blocking(move |inner| {
                inner.write(|w| {
                    w.transaction(|conn| {
                        conn.prepare_cached(&sqlite_text(sql::PUT_SEED))
                            .and_then(|mut s| s.execute(params![candidate, now]))
                            .doing("cannot store the action signing key")?;
                        conn.query_row(sql::SEED, [], |r| r.get(0))
                            .doing("cannot read the action signing key")
                    })
                })
            })
            .await?;
        seed_of(&stored)
    }

    async fn insert_action(&self, action: &NewAction) -> StoreResult<()> {
        let v = InsertValues::of(action);
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(&sqlite_text(sql::INSERT))
                        .and_then(|mut s| {
                            s.execute(params![
                                v.id,
                                v.host_id,
                                v.hostname,
                                v.pid,
                                v.started_at,
                                v.process_name,
                                v.process_user,
                                v.kind,
                                v.reason,
                                v.requested_by,
                                v.requested_at,
                                v.nonce,
                                v.issued_at,
                                v.expires_at,
                                v.signature,
                            ])
                        })
                        .doing("cannot store the action")
                        .map(drop)
                })
            })
        })
        .await
    }

    async fn pending_actions(&self, host_id: &str, now: DateTime<Utc>) -> StoreResult<u32> {
        let (host_id, now) = (host_id.to_owned(), nanos(now));
        let count: i64 = self
            .read(move |conn| {
                conn.prepare_cached(&sqlite_text(sql::PENDING))
                    .and_then(|mut s| s.query_row(params![host_id, now], |r| r.get(0)))
                    .doing("cannot count the waiting actions")
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
        let (host_id, now) = (host_id.to_owned(), nanos(now));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .blocking(move |inner| {
                inner.write(|w| {
                    w.transaction(|conn| {
                        conn.prepare_cached(&sqlite_text(&sql::claim("")))
                            .and_then(|mut s| {
                                s.query_map(params![host_id, now, limit], signed_row)?
                                    .collect::<Result<Vec<_>, _>>()
                            })
                            .doing("cannot claim the host's actions")
                    })
                })
            })
            .await?;
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
        let (host_id, id, message, at) = (
            host_id.to_owned(),
            id.to_string(),
            report.message.clone(),
            nanos(at),
        );
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    let written = conn
                        .prepare_cached(&sqlite_text(sql::RECORD))
                        .and_then(|mut s| s.execute(params![id, host_id, code, message, at]))
                        .doing("cannot record the action's result")?;
                    if written == 1 {
                        return Ok(ResultRecorded::Recorded);
                    }
                    let known: i64 = conn
                        .prepare_cached(&sqlite_text(sql::EXISTS))
                        .and_then(|mut s| s.query_row(params![id, host_id], |r| r.get(0)))
                        .doing("cannot read the action")?;
                    Ok(if known > 0 {
                        ResultRecorded::AlreadyRecorded
                    } else {
                        ResultRecorded::NotFound
                    })
                })
            })
        })
        .await
    }

    async fn action(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<ActionEntry>> {
        let id = id.to_string();
        let rows = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {} FROM process_action WHERE id = ?1",
                    sql::ENTRY_COLUMNS
                ))
                .and_then(|mut s| s.query_map([id], entry_row)?.collect::<Result<Vec<_>, _>>())
                .doing("cannot read the action")
            })
            .await?;
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
        let statement = sqlite_text(&sql::list(host_id.is_some(), limit));
        let values: Vec<String> = host_id.map(str::to_owned).into_iter().collect();
        let rows = self
            .read(move |conn| {
                conn.prepare_cached(&statement)
                    .and_then(|mut s| {
                        s.query_map(params_from_iter(values), entry_row)?
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .doing("cannot read the actions")
            })
            .await?;
        rows.into_iter().map(|row| entry(row, now)).collect()
    }
}
