//! Notification channels, and the queue of deliveries to them, as the
//! store keeps them. The evaluator queues deliveries
//! (`alert_delivery`, see [`super::alerts`]); any server's sender claims
//! those due ([`ChannelStore::claim_due`]) for a lease, sends them and
//! records how it went. A claim is atomic, so two servers on one database
//! never both send one delivery: PostgreSQL locks the rows it claims and
//! skips those another server holds (`FOR UPDATE SKIP LOCKED`), SQLite has
//! one writer.
//!
//! A channel's secret must be sent as it is (an HMAC key, a password), so
//! it is kept as given, in the database whose file (or server) only the
//! service may read; the store hands it out only through
//! [`ChannelStore::channel_secret`], which the sender alone calls.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::alerts::AlertNotification;
use procmon_model::channels::{Channel, ChannelHealth, ChannelKind, Delivery, DeliveryStatus};
use secrecy::SecretString;

use super::StoreResult;

/// `next_attempt_at` of a delivery given up: never due again. Kept in the
/// queue's own column, so a given-up delivery stays listed with its error.
pub const NEVER: i64 = i64::MAX;

/// A channel to store.
#[derive(Debug, Clone)]
pub struct ChannelRecord {
    pub id: String,
    pub name: String,
    pub kind: ChannelKind,
    pub secret: Option<SecretString>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a change does to a channel's secret.
#[derive(Debug, Clone)]
pub enum SecretChange {
    Keep,
    Set(SecretString),
    Remove,
}

/// A delivery claimed for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub id: String,
    pub channel_id: String,
    /// The [`AlertNotification`] as JSON.
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    pub channel_id: Option<String>,
    /// Only these; none: all.
    pub statuses: Vec<DeliveryStatus>,
    /// At most this many, newest first.
    pub limit: usize,
}

#[async_trait]
pub trait ChannelStore: Send + Sync + 'static {
    /// Stores a new channel.
    async fn create_channel(&self, channel: &ChannelRecord) -> StoreResult<()>;

    /// Changes a channel's name, kind and secret; false when there is no
    /// such channel.
    async fn update_channel(
        &self,
        id: &str,
        name: &str,
        kind: &ChannelKind,
        secret: SecretChange,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Deletes a channel; false when there is no such channel. Its
    /// deliveries stay listed; those not yet sent are given up by the
    /// sender, which finds no channel.
    async fn delete_channel(&self, id: &str) -> StoreResult<bool>;

    /// Every channel, by name.
    async fn channels(&self) -> StoreResult<Vec<Channel>>;

    async fn channel(&self, id: &str) -> StoreResult<Option<Channel>>;

    /// A channel with its secret: for sending only, never for an answer.
    async fn channel_secret(
        &self,
        id: &str,
    ) -> StoreResult<Option<(Channel, Option<SecretString>)>>;

    /// Claims up to `limit` deliveries due at `now` (not delivered, not
    /// claimed by a lease still running), oldest due first, until
    /// `now + lease`; none is handed to two claimers.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>>;

    /// Records that a delivery reached its channel (and the channel's
    /// success).
    async fn delivered(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;

    /// Records a failed attempt at `at` and when to try again (`None`:
    /// never, given up), and the channel's failure.
    async fn failed(
        &self,
        id: &str,
        at: DateTime<Utc>,
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;

    /// Deliveries matching `filter`, newest first.
    async fn deliveries(&self, filter: &DeliveryFilter) -> StoreResult<Vec<Delivery>>;
}

/// The table, one text for both backends, as [`super::alerts::TABLES`].
/// The health columns are the channel's recent deliveries in short, so
/// that listing channels reads no queue.
pub const TABLES: &str = "
CREATE TABLE IF NOT EXISTS alert_channel (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_success_at BIGINT,
    last_error_at BIGINT,
    last_error TEXT,
    failing BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alert_delivery_created ON alert_delivery (created_at);
";

/// The statements both backends run, with PostgreSQL's `$n` (SQLite's
/// text: [`super::alerts::sqlite_text`]).
pub(super) mod sql {
    pub const CHANNEL_COLUMNS: &str = "id, name, kind, secret IS NOT NULL, created_at, updated_at,
        last_success_at, last_error_at, last_error, failing";
    pub const INSERT_CHANNEL: &str = "INSERT INTO alert_channel
        (id, name, kind, secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const UPDATE_CHANNEL: &str =
        "UPDATE alert_channel SET name = $2, kind = $3, updated_at = $4 WHERE id = $1";
    pub const SET_SECRET: &str = "UPDATE alert_channel SET secret = $2 WHERE id = $1";
    pub const DELETE_CHANNEL: &str = "DELETE FROM alert_channel WHERE id = $1";
    pub const SECRET: &str = "SELECT secret FROM alert_channel WHERE id = $1";
    pub const DELIVERED: &str = "UPDATE alert_delivery
        SET delivered_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = NULL
        WHERE id = $1 RETURNING channel_id";
    pub const CHANNEL_SUCCESS: &str = "UPDATE alert_channel
        SET last_success_at = $2, failing = 0 WHERE id = $1";
    pub const FAILED: &str = "UPDATE alert_delivery
        SET next_attempt_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = $3
        WHERE id = $1 AND delivered_at IS NULL RETURNING channel_id";
    pub const CHANNEL_FAILURE: &str = "UPDATE alert_channel
        SET last_error_at = $2, last_error = $3, failing = failing + 1 WHERE id = $1";
    pub const DELIVERY_COLUMNS: &str = "d.id, d.channel_id, c.name, d.body, d.created_at,
        d.attempts, d.next_attempt_at, d.delivered_at, d.last_error";

    /// Claims what is due: `$1` now, `$2` the lease's end, `$3` the limit.
    /// `lock` is PostgreSQL's row locking (SQLite has none, nor needs it).
    /// The rows are picked once, in a materialized query: inside
    /// `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`
    /// PostgreSQL may run the subquery again and claim past the limit (the
    /// actions' claim met it). The outer condition is checked again on a
    /// row another claim changed meanwhile.
    pub fn claim(lock: &str) -> String {
        format!(
            "WITH picked AS MATERIALIZED (
                 SELECT id FROM alert_delivery
                 WHERE delivered_at IS NULL AND next_attempt_at <= $1
                   AND (claimed_until IS NULL OR claimed_until <= $1)
                 ORDER BY next_attempt_at, id
                 LIMIT $3 {lock})
             UPDATE alert_delivery SET claimed_until = $2
             WHERE id IN (SELECT id FROM picked) AND delivered_at IS NULL
               AND (claimed_until IS NULL OR claimed_until <= $1)
             RETURNING id, channel_id, body, created_at, attempts"
        )
    }
}

/// The `WHERE` of a delivery listing and its text parameters, with `$n`
/// numbering (the statuses are fixed SQL, not parameters).
pub(super) fn delivery_filter(filter: &DeliveryFilter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    if let Some(channel) = &filter.channel_id {
        params.push(channel.clone());
        clauses.push(format!("d.channel_id = ${}", params.len()));
    }
    if !filter.statuses.is_empty() {
        let any: Vec<String> = filter
            .statuses
            .iter()
            .map(|status| match status {
                DeliveryStatus::Pending => "(d.delivered_at IS NULL AND d.attempts = 0)".into(),
                DeliveryStatus::Failing => format!(
                    "(d.delivered_at IS NULL AND d.attempts > 0 AND d.next_attempt_at < {NEVER})"
                ),
                DeliveryStatus::Delivered => "(d.delivered_at IS NOT NULL)".into(),
                DeliveryStatus::GivenUp => {
                    format!("(d.delivered_at IS NULL AND d.next_attempt_at = {NEVER})")
                }
            })
            .collect();
        clauses.push(format!("({})", any.join(" OR ")));
    }
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (clause, params)
}

/// The whole listing statement for `filter` (`$n` numbering).
pub(super) fn deliveries_statement(filter: &DeliveryFilter) -> (String, Vec<String>) {
    let (clause, params) = delivery_filter(filter);
    (
        format!(
            "SELECT {} FROM alert_delivery d LEFT JOIN alert_channel c ON c.id = d.channel_id
             {clause} ORDER BY d.created_at DESC, d.id LIMIT {}",
            sql::DELIVERY_COLUMNS,
            filter.limit
        ),
        params,
    )
}

/// A channel's kind as stored.
pub(super) fn kind_text(kind: &ChannelKind) -> StoreResult<String> {
    serde_json::to_string(kind).map_err(|e| anyhow::anyhow!("cannot encode a channel: {e}").into())
}

/// The columns of [`sql::CHANNEL_COLUMNS`], in order.
pub(super) type ChannelRow = (
    String,
    String,
    String,
    bool,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

/// A channel from the columns of [`sql::CHANNEL_COLUMNS`].
pub(super) fn channel(row: ChannelRow) -> StoreResult<Channel> {
    let time = DateTime::from_timestamp_nanos;
    let (id, name, kind, has_secret, created, updated, success, error_at, error, failing) = row;
    Ok(Channel {
        kind: serde_json::from_str(&kind)
            .map_err(|e| anyhow::anyhow!("stored channel {id} does not decode: {e}"))?,
        id,
        name,
        has_secret,
        created_at: time(created),
        updated_at: time(updated),
        health: ChannelHealth {
            last_success_at: success.map(time),
            last_error_at: error_at.map(time),
            last_error: error,
            failing: u32::try_from(failing).unwrap_or(u32::MAX),
        },
    })
}

/// The columns of [`sql::DELIVERY_COLUMNS`], in order.
pub(super) type DeliveryRow = (
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

/// A delivery from the columns of [`sql::DELIVERY_COLUMNS`].
pub(super) fn delivery(row: DeliveryRow) -> StoreResult<Delivery> {
    let time = DateTime::from_timestamp_nanos;
    let (id, channel_id, channel_name, body, created, attempts, next, delivered, error) = row;
    let notification: AlertNotification = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("queued notification {id} does not decode: {e}"))?;
    let status = match (delivered, attempts) {
        (Some(_), _) => DeliveryStatus::Delivered,
        (None, _) if next == NEVER => DeliveryStatus::GivenUp,
        (None, 0) => DeliveryStatus::Pending,
        (None, _) => DeliveryStatus::Failing,
    };
    Ok(Delivery {
        id,
        channel_id,
        channel_name,
        alert_id: notification.alert.id,
        summary: notification.alert.summary,
        state: notification.state,
        repeat: notification.repeat,
        status,
        created_at: time(created),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: matches!(status, DeliveryStatus::Pending | DeliveryStatus::Failing)
            .then(|| time(next)),
        delivered_at: delivered.map(time),
        last_error: error,
    })
}

/// A claimed delivery from `id, channel_id, body, created_at, attempts`.
pub(super) fn claimed(
    id: String,
    channel_id: String,
    body: String,
    created_at: i64,
    attempts: i64,
) -> ClaimedDelivery {
    ClaimedDelivery {
        id,
        channel_id,
        body,
        created_at: DateTime::from_timestamp_nanos(created_at),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    }
}

/// A lease's end, in the store's nanoseconds.
pub(super) fn lease_end(now: DateTime<Utc>, lease: std::time::Duration) -> i64 {
    super::chain::nanos(now).saturating_add(i64::try_from(lease.as_nanos()).unwrap_or(i64::MAX))
}
