//! Notification channels and the delivery queue in PostgreSQL, where
//! several servers share the queue: a claim locks the rows it takes and
//! skips rows another server's claim has locked (`FOR UPDATE SKIP
//! LOCKED`), then stamps them with its lease (`claimed_until`), so each
//! due delivery goes to one server, and to another only once the lease
//! has run out (its server died mid-send). The statements are SQLite's
//! too ([`crate::store::channels::sql`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::channels::{Channel, ChannelKind, Delivery};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

use super::accounts::write_with;
use super::errors::Classify;
use super::{read_with, start_read, PostgresStore};
use crate::store::chain::nanos;
use crate::store::channels::{
    channel, claimed, deliveries_statement, delivery, kind_text, lease_end, sql, ChannelRecord,
    ChannelStore, ClaimedDelivery, DeliveryFilter, SecretChange, NEVER,
};
use crate::store::{StoreError, StoreResult};

fn channels_of(rows: &[Row]) -> StoreResult<Vec<Channel>> {
    rows.iter()
        .map(|r| {
            channel((
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
            ))
        })
        .collect()
}

async fn query_channels(
    tx: &Transaction<'_>,
    tail: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<Channel>> {
    let rows = tx
        .query(
            &format!("SELECT {} FROM alert_channel {tail}", sql::CHANNEL_COLUMNS),
            params,
        )
        .await
        .doing("cannot read the channels")?;
    channels_of(&rows)
}

/// Runs `statement` on one delivery and, if it was there, `health` on its
/// channel, with `values` after the channel's id.
async fn record_attempt(
    tx: &Transaction<'_>,
    statement: &str,
    delivery: &[&(dyn ToSql + Sync)],
    health: &str,
    values: &[&(dyn ToSql + Sync)],
) -> StoreResult<()> {
    let row = tx
        .query_opt(statement, delivery)
        .await
        .doing("cannot record the delivery")?;
    if let Some(row) = row {
        let channel: String = row.get(0);
        let mut all: Vec<&(dyn ToSql + Sync)> = vec![&channel];
        all.extend_from_slice(values);
        tx.execute(health, &all)
            .await
            .doing("cannot record the channel's health")?;
    }
    Ok(())
}

#[async_trait]
impl ChannelStore for PostgresStore {
    async fn create_channel(&self, channel: &ChannelRecord) -> StoreResult<()> {
        let kind = kind_text(&channel.kind)?;
        let secret = channel.secret.as_ref().map(|s| s.expose_secret());
        write_with!(self, |tx| {
            tx.execute(
                sql::INSERT_CHANNEL,
                &[
                    &channel.id,
                    &channel.name,
                    &kind,
                    &secret,
                    &nanos(channel.created_at),
                    &nanos(channel.updated_at),
                ],
            )
            .await
            .doing("cannot store the channel")
            .map(drop)
        })
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
        write_with!(self, |tx| {
            let changed = tx
                .execute(sql::UPDATE_CHANNEL, &[&id, &name, &kind, &nanos(at)])
                .await
                .doing("cannot store the channel")?;
            let value = match &secret {
                SecretChange::Keep => return Ok(changed == 1),
                SecretChange::Set(s) => Some(s.expose_secret()),
                SecretChange::Remove => None,
            };
            tx.execute(sql::SET_SECRET, &[&id, &value])
                .await
                .doing("cannot store the channel's secret")?;
            Ok(changed == 1)
        })
    }

    async fn delete_channel(&self, id: &str) -> StoreResult<bool> {
        write_with!(self, |tx| {
            tx.execute(sql::DELETE_CHANNEL, &[&id])
                .await
                .doing("cannot delete the channel")
                .map(|n| n == 1)
        })
    }

    async fn channels(&self) -> StoreResult<Vec<Channel>> {
        read_with!(self, |tx| query_channels(tx, "ORDER BY name, id", &[])
            .await)
    }

    async fn channel(&self, id: &str) -> StoreResult<Option<Channel>> {
        read_with!(self, |tx| Ok(query_channels(tx, "WHERE id = $1", &[&id])
            .await?
            .pop()))
    }

    async fn channel_secret(
        &self,
        id: &str,
    ) -> StoreResult<Option<(Channel, Option<SecretString>)>> {
        read_with!(self, |tx| {
            let Some(found) = query_channels(tx, "WHERE id = $1", &[&id]).await?.pop() else {
                return Ok(None);
            };
            let secret: Option<String> = tx
                .query_one(sql::SECRET, &[&id])
                .await
                .doing("cannot read the channel's secret")?
                .get(0);
            Ok(Some((found, secret.map(SecretString::from))))
        })
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let (at, until) = (nanos(now), lease_end(now, lease));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = sql::claim("FOR UPDATE SKIP LOCKED");
        let mut found = write_with!(self, |tx| {
            let rows = tx
                .query(&statement, &[&at, &until, &limit])
                .await
                .doing("cannot claim deliveries")?;
            Ok(rows
                .iter()
                .map(|r| claimed(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect::<Vec<_>>())
        })?;
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(found)
    }

    async fn delivered(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let at = nanos(at);
        write_with!(self, |tx| {
            record_attempt(
                tx,
                sql::DELIVERED,
                &[&id, &at],
                sql::CHANNEL_SUCCESS,
                &[&at],
            )
            .await
        })
    }

    async fn failed(
        &self,
        id: &str,
        at: DateTime<Utc>,
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let at = nanos(at);
        let next = next_attempt_at.map_or(NEVER, nanos);
        write_with!(self, |tx| {
            record_attempt(
                tx,
                sql::FAILED,
                &[&id, &next, &error],
                sql::CHANNEL_FAILURE,
                &[&at, &error],
            )
            .await
        })
    }

    async fn deliveries(&self, filter: &DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        let (statement, values) = deliveries_statement(filter);
        let rows = read_with!(self, |tx| {
            let params: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            let rows = tx
                .query(&statement, &params)
                .await
                .doing("cannot read the deliveries")?;
            Ok(rows
                .iter()
                .map(|r| {
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
                })
                .collect::<Vec<_>>())
        })?;
        rows.into_iter().map(delivery).collect()
    }
}
