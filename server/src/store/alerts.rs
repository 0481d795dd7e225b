//! Alert rules, the alerts they raise and silences, as the store keeps
//! them. Servers that share a database share these: any server evaluates
//! the snapshots it receives against every rule, and every change of an
//! alert is a compare-and-swap on its revision, so when two servers see
//! the same transition (both timers find a `for` run out) one wins and the
//! channels hear of it once. The notifications a transition sends are
//! queued in the same transaction ([`QueuedDelivery`]), so a transition is
//! never stored without them, nor they without it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::alerts::{Alert, AlertRule, AlertState, Silence};

use super::StoreResult;

/// One alert as stored: what the API shows, and what evaluation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub alert: Alert,
    /// What it is about within its rule and host: empty for the host as a
    /// whole, `pid@start-nanos` for one process. With the rule and the
    /// host, the key of the one open (pending or firing) alert.
    pub subject: String,
    /// One more at every change; a write names the revision it replaces.
    pub revision: i64,
    /// The time of the newest observation applied (the snapshot's
    /// `taken_at`, or the timer's now): an older one is not applied.
    pub observed_at: DateTime<Utc>,
    /// While firing: since when the condition has not held (the rule's
    /// `clear_seconds` count from here).
    pub clear_since: Option<DateTime<Utc>>,
    /// When channels were last told it fires (none: not told, because it
    /// was silenced or has no channel); a resolve is sent only after one.
    pub notified_at: Option<DateTime<Utc>>,
}

/// A notification queued for one channel, sent by whichever server claims
/// it first.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedDelivery {
    pub id: String,
    pub channel_id: String,
    /// The [`procmon_model::alerts::AlertNotification`] as JSON.
    pub body: String,
}

/// One change of one alert, applied only if the alert is still as it was
/// read.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertWrite {
    /// The alert as it is to be (its `revision` is the one it replaces; the
    /// store stores one more). For a new alert, `revision` is 0 and no open
    /// alert of the same rule, host and subject may exist.
    pub record: AlertRecord,
    /// Forget it rather than store it: a pending alert whose condition
    /// cleared before it fired leaves no trace.
    pub forget: bool,
    /// Sent once this is stored.
    pub deliveries: Vec<QueuedDelivery>,
}

/// How one rule, host and subject has fired lately: what flap damping
/// (`alerts::flap`) decides by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlapHistory {
    /// Its alerts that fired at or after the time asked about.
    pub firings: u32,
    /// Whether it is flapping: its newest fired alert is marked so and has
    /// not settled.
    pub flapping: bool,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    /// Only these states; none: every state.
    pub states: Vec<AlertState>,
    pub host_id: Option<String>,
    pub rule_id: Option<String>,
    /// At most this many, newest first by `since`.
    pub limit: usize,
}

/// Why a rule was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRefused {
    /// No rule has this id.
    NotFound,
    /// The rule was changed since the version the change names.
    VersionMoved { now: u32 },
}

#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// Every rule, newest version of each, by name.
    async fn rules(&self) -> StoreResult<Vec<AlertRule>>;

    /// Every version of one rule, oldest first (empty: no such rule, or
    /// deleted).
    async fn rule_versions(&self, id: &str) -> StoreResult<Vec<AlertRule>>;

    /// Stores a new rule (`rule.version` 1).
    async fn create_rule(&self, rule: &AlertRule) -> StoreResult<()>;

    /// Stores `rule` as the next version of its id, if the newest stored
    /// version is `rule.version - 1`.
    async fn update_rule(&self, rule: &AlertRule) -> StoreResult<Result<(), RuleRefused>>;

    /// Deletes a rule, its versions and its open alerts (its resolved
    /// alerts stay, as history); false when there is no such rule.
    async fn delete_rule(&self, id: &str) -> StoreResult<bool>;

    /// Open (pending or firing) alerts, of one host or of all.
    async fn open_alerts(&self, host_id: Option<&str>) -> StoreResult<Vec<AlertRecord>>;

    /// Alerts matching `filter`.
    async fn alerts(&self, filter: &AlertFilter) -> StoreResult<Vec<AlertRecord>>;

    /// One alert by id.
    async fn alert(&self, id: &str) -> StoreResult<Option<AlertRecord>>;

    /// Applies each write whose alert is still at the revision it names
    /// (and whose observation is not older than the stored one), in one
    /// transaction with the deliveries of those applied; for each write,
    /// whether it was applied.
    async fn write_alerts(&self, writes: Vec<AlertWrite>) -> StoreResult<Vec<bool>>;

    /// How the alerts of `rule_id` on `host_id` about `subject` fired at or
    /// after `since`, and whether they are flapping. Counts every alert
    /// kept, resolved ones too (they are kept for history's retention).
    async fn flap_history(
        &self,
        rule_id: &str,
        host_id: &str,
        subject: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<FlapHistory>;

    /// The alerts marked flapping that may settle: the newest fired alert
    /// of each rule, host and subject that flaps, unless one of the same is
    /// pending (its firing, or its forgetting, decides first).
    async fn flapping_alerts(&self) -> StoreResult<Vec<AlertRecord>>;

    /// Forgets resolved alerts resolved before `before`; how many.
    async fn forget_resolved(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Every silence not yet over at `now`, by start.
    async fn silences(&self, now: DateTime<Utc>) -> StoreResult<Vec<Silence>>;

    async fn create_silence(&self, silence: &Silence) -> StoreResult<()>;

    /// Ends a silence; false when there is no such silence.
    async fn delete_silence(&self, id: &str) -> StoreResult<bool>;
}

/// The subject of an alert about one process.
pub fn process_subject(pid: u32, start_time: DateTime<Utc>) -> String {
    format!("{pid}@{}", super::chain::nanos(start_time))
}

/// The tables, one text for both backends (plain SQL types both read the
/// same way; SQLite's own `STRICT` is left out for that). Times are
/// nanoseconds since 1970, as elsewhere in the store. What the API shows
/// is kept as JSON (`spec`, `body`); the columns beside it are what the
/// store looks things up by.
pub const TABLES: &str = "
CREATE TABLE IF NOT EXISTS alert_rule (
    id TEXT PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_rule_version (
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    spec TEXT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE TABLE IF NOT EXISTS alert (
    id TEXT PRIMARY KEY NOT NULL,
    rule_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    since BIGINT NOT NULL,
    resolved_at BIGINT,
    revision BIGINT NOT NULL,
    observed_at BIGINT NOT NULL,
    clear_since BIGINT,
    notified_at BIGINT,
    body TEXT NOT NULL
);
-- At most one open alert per rule, host and subject: two servers that
-- both see a condition begin raise it once.
CREATE UNIQUE INDEX IF NOT EXISTS alert_open ON alert (rule_id, host_id, subject)
    WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alert_host ON alert (host_id, state);
CREATE INDEX IF NOT EXISTS alert_since ON alert (since);
CREATE TABLE IF NOT EXISTS alert_silence (
    id TEXT PRIMARY KEY NOT NULL,
    until BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_delivery (
    id TEXT PRIMARY KEY NOT NULL,
    channel_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT,
    delivered_at BIGINT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS alert_delivery_due ON alert_delivery (next_attempt_at)
    WHERE delivered_at IS NULL;
";

/// What flap damping adds to [`TABLES`], in both backends, to tables made
/// before it (SQLite runs it once the alert table lacks `fired_at`;
/// PostgreSQL as a migration). `fired_at` is the alert's, for counting
/// firings within a window; `flapping` is 1 on the one alert of a rule,
/// host and subject that flaps and has not settled (the newest fired): a
/// newer firing takes the mark over, settling clears it. (An alert's JSON
/// keeps its own `flapping`: whether it fired while flapping.)
pub const FLAP_COLUMNS: &str = "
ALTER TABLE alert ADD COLUMN fired_at BIGINT;
ALTER TABLE alert ADD COLUMN flapping BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS alert_fired ON alert (rule_id, host_id, subject, fired_at);
CREATE INDEX IF NOT EXISTS alert_flapping ON alert (rule_id, host_id, subject)
    WHERE flapping <> 0;
";

/// The statements both backends run, written with PostgreSQL's `$n`
/// (SQLite reads them as `?n`, see [`sqlite_text`]).
pub(super) mod sql {
    pub const RULE_COLUMNS: &str = "id, version, created_at, updated_at, updated_by, spec";
    pub const ALERT_COLUMNS: &str =
        "subject, revision, observed_at, clear_since, notified_at, body";
    pub const INSERT_RULE: &str = "INSERT INTO alert_rule
        (id, version, created_at, updated_at, updated_by, spec) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const INSERT_RULE_VERSION: &str = "INSERT INTO alert_rule_version
        (id, version, created_at, updated_at, updated_by, spec) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const UPDATE_RULE: &str = "UPDATE alert_rule
        SET version = $2, updated_at = $3, updated_by = $4, spec = $5
        WHERE id = $1 AND version + 1 = $2";
    pub const RULE_VERSION: &str = "SELECT version FROM alert_rule WHERE id = $1";
    pub const INSERT_ALERT: &str = "INSERT INTO alert
        (id, rule_id, host_id, subject, state, since, resolved_at, observed_at,
         clear_since, notified_at, body, fired_at, flapping, revision)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1)
        ON CONFLICT DO NOTHING";
    /// As [`INSERT_ALERT`], with `$14` the revision it replaces.
    pub const UPDATE_ALERT: &str = "UPDATE alert
        SET state = $5, since = $6, resolved_at = $7, observed_at = $8,
            clear_since = $9, notified_at = $10, body = $11, fired_at = $12,
            flapping = $13, revision = revision + 1
        WHERE id = $1 AND rule_id = $2 AND host_id = $3 AND subject = $4
          AND revision = $14 AND observed_at <= $8";
    /// Once alert `$4` fired, the flapping mark is its own (or gone, if it
    /// does not flap): older alerts of its rule, host and subject lose it.
    pub const TAKE_FLAP_MARK: &str = "UPDATE alert SET flapping = 0
        WHERE rule_id = $1 AND host_id = $2 AND subject = $3 AND id <> $4 AND flapping <> 0";
    /// [`super::FlapHistory`]: firings at or after `$4`, and the mark.
    pub const FLAP_HISTORY: &str = "SELECT
            coalesce(sum(CASE WHEN fired_at >= $4 THEN 1 ELSE 0 END), 0),
            coalesce(max(flapping), 0)
        FROM alert
        WHERE rule_id = $1 AND host_id = $2 AND subject = $3
          AND (fired_at >= $4 OR flapping <> 0)";
    /// The `WHERE` of [`super::AlertStore::flapping_alerts`].
    pub const FLAPPING_ALERTS: &str = "WHERE flapping <> 0 AND NOT EXISTS (
            SELECT 1 FROM alert pending
            WHERE pending.rule_id = alert.rule_id AND pending.host_id = alert.host_id
              AND pending.subject = alert.subject AND pending.state = 'pending')";
    pub const FORGET_ALERT: &str =
        "DELETE FROM alert WHERE id = $1 AND revision = $2 AND observed_at <= $3";
    pub const INSERT_DELIVERY: &str = "INSERT INTO alert_delivery
        (id, channel_id, body, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)";
}

/// A statement of [`sql`] as SQLite numbers its parameters.
pub(super) fn sqlite_text(statement: &str) -> String {
    statement.replace('$', "?")
}

/// The columns of one alert, as both backends bind them in
/// [`sql::INSERT_ALERT`] and [`sql::UPDATE_ALERT`] (`$1` to `$13` in the
/// order of the fields, then `revision` as `$14`).
pub(super) struct AlertColumns {
    pub id: String,
    pub rule_id: String,
    pub host_id: String,
    pub subject: String,
    pub state: &'static str,
    pub since: i64,
    pub resolved_at: Option<i64>,
    pub observed_at: i64,
    pub clear_since: Option<i64>,
    pub notified_at: Option<i64>,
    pub body: String,
    pub fired_at: Option<i64>,
    /// 1 when the alert carries the flapping mark (see [`FLAP_COLUMNS`]).
    pub flapping: i64,
    pub revision: i64,
}

impl AlertColumns {
    pub fn of(record: &AlertRecord) -> Result<Self, super::StoreError> {
        use super::chain::nanos;
        let alert = &record.alert;
        Ok(Self {
            id: alert.id.clone(),
            rule_id: alert.rule_id.clone(),
            host_id: alert.host_id.clone(),
            subject: record.subject.clone(),
            state: alert.state.as_str(),
            since: nanos(alert.since),
            resolved_at: alert.resolved_at.map(nanos),
            revision: record.revision,
            observed_at: nanos(record.observed_at),
            clear_since: record.clear_since.map(nanos),
            notified_at: record.notified_at.map(nanos),
            body: serde_json::to_string(alert)
                .map_err(|e| anyhow::anyhow!("cannot encode an alert: {e}"))?,
            fired_at: alert.fired_at.map(nanos),
            flapping: i64::from(alert.flapping),
        })
    }
}

/// An alert from the columns of [`sql::ALERT_COLUMNS`].
pub(super) fn alert_record(
    subject: String,
    revision: i64,
    observed_at: i64,
    clear_since: Option<i64>,
    notified_at: Option<i64>,
    body: &str,
) -> Result<AlertRecord, super::StoreError> {
    let time = DateTime::from_timestamp_nanos;
    Ok(AlertRecord {
        alert: serde_json::from_str(body)
            .map_err(|e| anyhow::anyhow!("a stored alert does not decode: {e}"))?,
        subject,
        revision,
        observed_at: time(observed_at),
        clear_since: clear_since.map(time),
        notified_at: notified_at.map(time),
    })
}

/// A rule from the columns of [`sql::RULE_COLUMNS`].
pub(super) fn alert_rule(
    id: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    updated_by: String,
    spec: &str,
) -> Result<AlertRule, super::StoreError> {
    let time = DateTime::from_timestamp_nanos;
    Ok(AlertRule {
        spec: serde_json::from_str(spec)
            .map_err(|e| anyhow::anyhow!("stored rule {id} does not decode: {e}"))?,
        id,
        version: u32::try_from(version).unwrap_or(u32::MAX),
        created_at: time(created_at),
        updated_at: time(updated_at),
        updated_by,
    })
}

/// A rule's spec as stored.
pub(super) fn rule_spec(rule: &AlertRule) -> Result<String, super::StoreError> {
    serde_json::to_string(&rule.spec)
        .map_err(|e| anyhow::anyhow!("cannot encode a rule: {e}").into())
}

/// A silence as stored.
pub(super) fn silence_body(silence: &Silence) -> Result<String, super::StoreError> {
    serde_json::to_string(silence)
        .map_err(|e| anyhow::anyhow!("cannot encode a silence: {e}").into())
}

/// A silence from its stored body.
pub(super) fn silence(body: &str) -> Result<Silence, super::StoreError> {
    serde_json::from_str(body)
        .map_err(|e| anyhow::anyhow!("a stored silence does not decode: {e}").into())
}

/// The `WHERE` of an alert listing and its parameters, in order, with
/// `$n` numbering.
pub(super) fn filter_clause(filter: &AlertFilter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    if !filter.states.is_empty() {
        let mut marks = Vec::new();
        for state in &filter.states {
            params.push(state.as_str().to_owned());
            marks.push(format!("${}", params.len()));
        }
        clauses.push(format!("state IN ({})", marks.join(", ")));
    }
    if let Some(host) = &filter.host_id {
        params.push(host.clone());
        clauses.push(format!("host_id = ${}", params.len()));
    }
    if let Some(rule) = &filter.rule_id {
        params.push(rule.clone());
        clauses.push(format!("rule_id = ${}", params.len()));
    }
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (clause, params)
}
