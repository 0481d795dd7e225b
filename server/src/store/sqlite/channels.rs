//! Notification channels and the delivery queue in SQLite. Claims go
//! through the one writer, so a claim is one transaction no other write
//! interleaves with: no delivery is claimed twice (the statements are
//! PostgreSQL's too: [`crate::store::channels::sql`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::channels::{Channel, ChannelKind, Delivery};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use secrecy::{ExposeSecret, SecretString};

use super::errors::Classify;
use super::SqliteStore;
use crate::store::alerts::sqlite_text;
use crate::store::chain::nanos;
use crate::store::channels::{
    self, channel, claimed, deliveries_statement, delivery, kind_text, lease_end, sql,
    ChannelRecord, ChannelRow, ChannelStore, ClaimedDelivery, DeliveryFilter, SecretChange, NEVER,
};
use crate::store::StoreResult;

pub use channels::TABLES;

fn channel_row(row: &Row<'_>) -> rusqlite::Result<ChannelRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn query_channels(
    conn: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<Channel>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {} FROM alert_channel {tail}",
            sql::CHANNEL_COLUMNS
        ))
        .and_then(|mut s| {
            s.query_map(params, channel_row)?
                .collect::<Result<Vec<_>, _>>()
        })
        .doing("cannot read the channels")?;
    rows.into_iter().map(channel).collect()
}

/// Runs `statement` on the delivery `id` and, if it was there, `health`
/// on its channel, with `values` after the channel's id.
fn record_attempt(
    conn: &Connection,
    statement: &str,
    delivery: &[&dyn rusqlite::ToSql],
    health: &str,
    values: &[&dyn rusqlite::ToSql],
) -> StoreResult<()> {
    let channel: Option<String> = conn
        .prepare_cached(&sqlite_text(statement))
        .and_then(|mut s| s.query_row(delivery, |r| r.get(0)).optional())
        .doing("cannot record the delivery")?;
    if let Some(channel) = channel {
        let mut all: Vec<&dyn rusqlite::ToSql> = vec![&channel];
        all.extend_from_slice(values);
        conn.prepare_cached(&sqlite_text(health))
            .and_then(|mut s| s.execute(params_from_iter(all)))
            .doing("cannot record the channel's health")?;
    }
    Ok(())
}

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn create_channel(&self, channel: &ChannelRecord) -> StoreResult<()> {
        let kind = kind_text(&channel.kind)?;
        let (id, name) = (channel.id.clone(), channel.name.clone());
        let secret = channel
            .secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned());
        let (created, updated) = (nanos(channel.created_at), nanos(channel.updated_at));
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(&sqlite_text(sql::INSERT_CHANNEL))
                        .and_then(|mut s| {
                            s.execute(params![id, name, kind, secret, created, updated])
                        })
                        .doing("cannot store the channel")
                        .map(drop)
                })
            })
        })
        .await
    }

    async fn update_channel(
        &self,
        id: &str,
        name: &str,
        kind: &ChannelKind,
        secret: SecretChange,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let kind = kind_text(kind)?;
        let (id, name, at) = (id.to_owned(), name.to_owned(), nanos(at));
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    let changed = conn
                        .prepare_cached(&sqlite_text(sql::UPDATE_CHANNEL))
                        .and_then(|mut s| s.execute(params![id, name, kind, at]))
                        .doing("cannot store the channel")?;
                    let value = match &secret {
                        SecretChange::Keep => return Ok(changed == 1),
                        SecretChange::Set(s) => Some(s.expose_secret()),
                        SecretChange::Remove => None,
                    };
                    conn.prepare_cached(&sqlite_text(sql::SET_SECRET))
                        .and_then(|mut s| s.execute(params![id, value]))
                        .doing("cannot store the channel's secret")?;
                    Ok(changed == 1)
                })
            })
        })
        .await
    }

    async fn delete_channel(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.execute(&sqlite_text(sql::DELETE_CHANNEL), [id])
                        .doing("cannot delete the channel")
                        .map(|n| n == 1)
                })
            })
        })
        .await
    }

    async fn channels(&self) -> StoreResult<Vec<Channel>> {
        self.read(|conn| query_channels(conn, "ORDER BY name, id", []))
            .await
    }

    async fn channel(&self, id: &str) -> StoreResult<Option<Channel>> {
        let id = id.to_owned();
        self.read(move |conn| query_channels(conn, "WHERE id = ?1", [id]))
            .await
            .map(|mut found| found.pop())
    }

    async fn channel_secret(
        &self,
        id: &str,
    ) -> StoreResult<Option<(Channel, Option<SecretString>)>> {
        let id = id.to_owned();
        self.read(move |conn| {
            let Some(found) = query_channels(conn, "WHERE id = ?1", [&id])?.pop() else {
                return Ok(None);
            };
            let secret: Option<String> = conn
                .prepare_cached(&sqlite_text(sql::SECRET))
                .and_then(|mut s| s.query_row([&id], |r| r.get(0)))
                .doing("cannot read the channel's secret")?;
            Ok(Some((found, secret.map(SecretString::from))))
        })
        .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let (at, until) = (nanos(now), lease_end(now, lease));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    let mut found = conn
                        .prepare_cached(&sqlite_text(&sql::claim("")))
                        .and_then(|mut s| {
                            s.query_map(params![at, until, limit], |r| {
                                Ok(claimed(
                                    r.get(0)?,
                                    r.get(1)?,
                                    r.get(2)?,
                                    r.get(3)?,
                                    r.get(4)?,
                                ))
                            })?
                            .collect::<Result<Vec<_>, _>>()
                        })
                        .doing("cannot claim deliveries")?;
                    found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
                    Ok(found)
                })
            })
        })
        .await
    }

    async fn delivered(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let (id, at) = (id.to_owned(), nanos(at));
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    record_attempt(
                        conn,
                        sql::DELIVERED,
                        &[&id, &at],
                        sql::CHANNEL_SUCCESS,
                        &[&at],
                    )
                })
            })
        })
        .await
    }

    async fn failed(
        &self,
        id: &str,
        at: DateTime<Utc>,
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let (id, at, error) = (id.to_owned(), nanos(at), error.to_owned());
        let next = next_attempt_at.map_or(NEVER, nanos);
        self.blocking(move |inner| {
            inner.write(|w| {
                w.transaction(|conn| {
                    record_attempt(
                        conn,
                        sql::FAILED,
                        &[&id, &next, &error],
                        sql::CHANNEL_FAILURE,
                        &[&at, &error],
                    )
                })
            })
        })
        .await
    }

    async fn deliveries(&self, filter: &DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        let (statement, values) = deliveries_statement(filter);
        let rows = self
            .read(move |conn| {
                conn.prepare_cached(&sqlite_text(&statement))
                    .and_then(|mut s| {
                        s.query_map(params_from_iter(values), |r| r.try_into())?
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .doing("cannot read the deliveries")
            })
            .await?;
        rows.into_iter().map(delivery).collect()
    }
}
