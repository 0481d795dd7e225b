//! Storage behind one interface that speaks the domain (hosts, processes,
//! snapshots, series, changes, time), so a second database can be added
//! beside SQLite and held to the same contract tests
//! (`server/tests/store/`). Nothing above this trait knows SQL, and nothing
//! below it knows HTTP or how hosts are shown to people.
//!
//! Snapshots are stored by change ([`chain`]): a keyframe now and then, and
//! otherwise only what changed since the host's previous snapshot, so the
//! cost of a write follows what changed, not how many processes there are.

pub mod accounts;
pub mod actions;
pub mod alerts;
pub mod chain;
pub mod changes;
pub mod channels;
pub mod codec;
pub mod fields;
pub mod keys;
pub mod limits;
pub mod load;
mod open;
mod postgres;
pub mod rollup;
mod series;
mod sqlite;
#[cfg(test)]
pub(crate) mod testing;

pub use accounts::AccountStore;
pub use actions::ActionStore;
pub use alerts::AlertStore;
pub use channels::ChannelStore;
pub use keys::KeyStore;
pub use limits::LimitStore;
pub use load::LoadPoint;
pub use open::{open, redact_url, Backend, DatabaseUrl};
pub use postgres::{PostgresStore, MAINTENANCE_LOCK};
pub use series::{plan_series, SeriesPlan};
pub use sqlite::SqliteStore;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::{
    ChangeBatch, HostChanges, HostInfo, HostLoad, ProcessSample, Series, Snapshot,
};
use uuid::Uuid;

/// What the store did with a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// New: it is durably stored now.
    Stored,
    /// This id was stored before, from the same host; nothing changed.
    AlreadyStored,
    /// This id was stored before from a different host; nothing changed.
    IdTakenByOtherHost,
}

/// What the store did with a change batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    /// Applied to the host's newest snapshot and durably stored: the
    /// snapshot it made, shared (the live state keeps it without a copy).
    Stored(Arc<Snapshot>),
    /// This id was stored before, from the same host (a retry); nothing
    /// changed.
    AlreadyStored,
    /// This id was stored before from a different host; nothing changed.
    IdTakenByOtherHost,
    /// The host's newest snapshot is not the batch's base, or the host is
    /// not known: nothing was stored, and the agent must send in full.
    BaseUnknown,
    /// The batch does not fit its base: a pid that is not there, one that
    /// starts twice, another host's facts.
    DoesNotFit(String),
    /// The snapshot the batch makes is not valid (the check refused it).
    Invalid(String),
}

/// Checks a snapshot that a change batch made, before it is stored: the
/// API's own validation, which the store does not know.
pub type SnapshotCheck = fn(&Snapshot) -> Result<(), String>;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be used now (disk full, file gone, read-only,
    /// locked by another process); nothing was changed. It clears by itself
    /// once the cause is gone.
    #[error("the database cannot be used now: {0}")]
    Unavailable(String),
    /// A range or argument the store cannot answer for.
    #[error("{0}")]
    OutOfRange(String),
    /// Anything else: stored data that does not decode, or a bug.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// The store's result type.
pub type StoreResult<T> = Result<T, StoreError>;

/// A host as stored, with the totals of its newest snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRecord {
    /// The facts of the newest snapshot (by the time it was taken).
    pub info: HostInfo,
    /// The agent's send interval, in milliseconds.
    pub interval_ms: u64,
    /// First snapshot received (server clock).
    pub first_seen: DateTime<Utc>,
    /// Last snapshot received (server clock).
    pub last_seen: DateTime<Utc>,
    /// When the newest snapshot was taken: the earlier of when it was
    /// collected and when it was received.
    pub newest_taken_at: DateTime<Utc>,
    /// When the oldest snapshot was taken (retention may since have taken
    /// it away).
    pub first_taken_at: DateTime<Utc>,
    /// Totals of the newest snapshot.
    pub totals: SnapshotTotals,
}

/// Sums over one snapshot's processes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SnapshotTotals {
    /// Number of processes.
    pub process_count: u32,
    /// Sum of CPU % (100 = one core), summed as f64 so it cannot overflow.
    pub cpu_percent: f64,
    /// Sum of resident memory in bytes (saturating).
    pub memory_rss_bytes: u64,
}

impl SnapshotTotals {
    /// The sums over `processes`.
    pub fn of<'a>(processes: impl IntoIterator<Item = &'a ProcessSample>) -> Self {
        processes.into_iter().fold(Self::default(), |mut t, p| {
            t.process_count += 1;
            t.cpu_percent += f64::from(p.cpu_percent);
            t.memory_rss_bytes = t.memory_rss_bytes.saturating_add(p.memory_rss_bytes);
            t
        })
    }
}

/// The host's own meters as history keeps them beside each snapshot, from
/// its agent's [`HostLoad`] (all absent when the agent sends none). CPU is
/// kept as the machine's share (the cores' average), not per core.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostMeters {
    pub cpu_machine_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_available_bytes: Option<u64>,
    pub swap_used_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    /// The load average over one minute, where the OS has one.
    pub load_1m: Option<f64>,
}

impl HostMeters {
    pub fn of(load: Option<&HostLoad>) -> Self {
        let Some(load) = load else {
            return Self::default();
        };
        let cores = &load.cpu_per_core;
        Self {
            cpu_machine_percent: (!cores.is_empty())
                .then(|| cores.iter().map(|&c| f64::from(c)).sum::<f64>() / cores.len() as f64),
            memory_used_bytes: Some(load.memory_used_bytes),
            memory_available_bytes: Some(load.memory_available_bytes),
            swap_used_bytes: Some(load.swap_used_bytes),
            swap_total_bytes: Some(load.swap_total_bytes),
            load_1m: load.load_average.map(|l| l[0]),
        }
    }
}

/// The names of a host series' values (`GET /api/history/host/`), in the
/// order of [`host_values`].
pub const HOST_METRICS: [&str; 9] = [
    "process_count",
    "cpu_percent",
    "memory_rss_bytes",
    "cpu_machine_percent",
    "memory_used_bytes",
    "memory_available_bytes",
    "swap_used_bytes",
    "swap_total_bytes",
    "load_1m",
];

/// One snapshot's values of a host series, named by [`HOST_METRICS`].
pub fn host_values(totals: &SnapshotTotals, meters: &HostMeters) -> [Option<f64>; 9] {
    let bytes = |b: Option<u64>| b.map(|b| b as f64);
    [
        Some(f64::from(totals.process_count)),
        Some(totals.cpu_percent),
        Some(totals.memory_rss_bytes as f64),
        meters.cpu_machine_percent,
        bytes(meters.memory_used_bytes),
        bytes(meters.memory_available_bytes),
        bytes(meters.swap_used_bytes),
        bytes(meters.swap_total_bytes),
        meters.load_1m,
    ]
}

/// One stored snapshot with its processes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSnapshot {
    /// The agent's id for it.
    pub id: Uuid,
    /// Agent clock.
    pub collected_at: DateTime<Utc>,
    /// Server clock.
    pub received_at: DateTime<Utc>,
    /// When it counts as taken: `collected_at`, or `received_at` when the
    /// agent's clock put it later than its arrival.
    pub taken_at: DateTime<Utc>,
    /// The processes, as sent (in no particular order).
    pub processes: Vec<ProcessSample>,
}

/// A span of time, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Which facts a search looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchField {
    /// Name, user or command line.
    #[default]
    Any,
    Name,
    User,
    Cmd,
}

/// A fleet-wide search: `text` anywhere in the chosen facts, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub text: String,
    pub field: SearchField,
}

impl SearchQuery {
    /// Whether `p` matches; `lower` is the text in lower case.
    pub fn matches(&self, lower: &str, p: &ProcessSample) -> bool {
        let has = |s: &str| s.to_lowercase().contains(lower);
        let name = || has(&p.name) || p.exe.as_deref().is_some_and(has);
        let user = || p.user.as_deref().is_some_and(has);
        let cmd = || has(&p.cmd.join(" "));
        match self.field {
            SearchField::Any => name() || user() || cmd(),
            SearchField::Name => name(),
            SearchField::User => user(),
            SearchField::Cmd => cmd(),
        }
    }
}

/// A process a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Its host's stable id.
    pub host_id: String,
    /// When the snapshot it was found in was taken.
    pub taken_at: DateTime<Utc>,
    /// The process as it was then.
    pub process: ProcessSample,
}

/// A fleet search's answer, collected host by host (in host id order) and
/// each host's hits by pid, up to a limit: one place for the order and the
/// limit, whichever backend reads the snapshots.
pub struct Hits<'q> {
    query: &'q SearchQuery,
    lower: String,
    limit: usize,
    found: Vec<Found>,
    more: bool,
}

impl<'q> Hits<'q> {
    pub fn new(query: &'q SearchQuery, limit: usize) -> Self {
        Self {
            query,
            lower: query.text.to_lowercase(),
            limit,
            found: Vec::new(),
            more: false,
        }
    }

    /// Adds the hits of `host_id`'s `snapshot`; true once the limit is
    /// passed (there are more than `limit`), when the rest can be skipped.
    pub fn add(&mut self, host_id: &str, snapshot: StoredSnapshot) -> bool {
        let mut hits: Vec<_> = snapshot
            .processes
            .into_iter()
            .filter(|p| self.query.matches(&self.lower, p))
            .collect();
        hits.sort_by_key(|p| p.pid);
        for process in hits {
            if self.found.len() == self.limit {
                self.more = true;
                return true;
            }
            self.found.push(Found {
                host_id: host_id.to_owned(),
                taken_at: snapshot.taken_at,
                process,
            });
        }
        false
    }

    /// What was found, and whether there was more.
    pub fn done(self) -> (Vec<Found>, bool) {
        (self.found, self.more)
    }
}

/// How long each kind of history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Every snapshot as sent (time travel, exact trees).
    pub raw: Duration,
    /// One-minute roll-ups (average, minimum, maximum).
    pub minute: Duration,
    /// One-hour roll-ups.
    pub hour: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            raw: Duration::from_secs(7 * DAY),
            minute: Duration::from_secs(90 * DAY),
            hour: Duration::from_secs(730 * DAY),
        }
    }
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Maintenance {
    /// Host-hours summarised into minute roll-ups.
    pub minute_rollups: u64,
    /// Host-days summarised into hour roll-ups.
    pub hour_rollups: u64,
    /// Whole blocks of expired data dropped.
    pub blocks_dropped: u64,
    /// Hosts with nothing left, removed.
    pub hosts_removed: u64,
}

/// What this server hears of another server's writes to a shared
/// database ([`Store::stored_elsewhere`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredElsewhere {
    /// Another server stored snapshot `snapshot_id` of `host_id`.
    Snapshot { host_id: String, snapshot_id: Uuid },
    /// Word of some writes may have been lost (the store was out of touch
    /// with the database for a while): any host may have moved.
    MayHaveMissed,
}

/// Where snapshots are kept.
///
/// Times passed in are the server's clock (callers own the clock, so tests
/// can move it). Every read answers from one consistent view of the data.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores `snapshot`, received at `received_at`, unless its id was
    /// stored before. `Stored` is answered only once the snapshot is
    /// durably committed; on any error nothing of it is stored.
    /// Takes the snapshot shared: a store may move it to another thread,
    /// and the caller keeps it (as the host's live state) without a copy.
    async fn ingest(
        &self,
        snapshot: Arc<Snapshot>,
        received_at: DateTime<Utc>,
    ) -> StoreResult<IngestOutcome>;

    /// Applies `batch` to the host's newest snapshot if, and only if, that
    /// snapshot is the batch's base, checks what it makes with `check`, and
    /// stores it as [`Store::ingest`] would. The look at the newest
    /// snapshot and the write are one step (a compare-and-swap inside the
    /// store's transaction), so two requests, or two servers on one
    /// database, can never both extend the same base; and since the store
    /// owns the newest snapshot, any server can apply a batch whose base
    /// another one stored. A retry of a stored batch is `AlreadyStored`.
    async fn ingest_changes(
        &self,
        batch: Arc<ChangeBatch>,
        received_at: DateTime<Utc>,
        check: SnapshotCheck,
    ) -> StoreResult<ChangeOutcome>;

    /// Every host, in no particular order.
    async fn hosts(&self) -> StoreResult<Vec<HostRecord>>;

    /// One host, if known.
    async fn host(&self, host_id: &str) -> StoreResult<Option<HostRecord>>;

    /// Ids of the hosts whose newest hostname is `hostname`.
    async fn hosts_named(&self, hostname: &str) -> StoreResult<Vec<String>>;

    /// Exactly what the agent sent in the host's newest snapshot, or with
    /// `at`, in its newest one taken at or before `at`.
    async fn snapshot(
        &self,
        host_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<StoredSnapshot>>;

    /// Exactly what the agent sent in the host's snapshot `id`, if raw
    /// retention still keeps it.
    async fn snapshot_by_id(&self, host_id: &str, id: Uuid) -> StoreResult<Option<StoredSnapshot>>;

    /// The host's load, a point per snapshot taken at or after `from`
    /// (kept for [`load::LOAD_KEPT`]), oldest first.
    async fn load_points(&self, host_id: &str, from: DateTime<Utc>) -> StoreResult<Vec<LoadPoint>>;

    /// Snapshots that other servers store in this database, as they are
    /// stored, for this server's viewers; the first call only. `None` when
    /// no other server can write to it (an SQLite file has one server).
    fn stored_elsewhere(&self) -> Option<tokio::sync::mpsc::Receiver<StoredElsewhere>> {
        None
    }

    /// One process's numbers over `range`, in at most about `max_points`
    /// steps (raw samples for short ranges, roll-ups for long ones).
    async fn process_series(
        &self,
        host_id: &str,
        pid: u32,
        start_time: DateTime<Utc>,
        range: TimeRange,
        max_points: usize,
    ) -> StoreResult<Series>;

    /// The host's totals (process count, CPU, resident memory) over
    /// `range`, in at most about `max_points` steps.
    async fn host_series(
        &self,
        host_id: &str,
        range: TimeRange,
        max_points: usize,
    ) -> StoreResult<Series>;

    /// Processes started and exited, and facts changed, after `range.from`
    /// up to `range.to`; at most `limit` of them in all.
    async fn changes(
        &self,
        host_id: &str,
        range: TimeRange,
        limit: usize,
    ) -> StoreResult<HostChanges>;

    /// Processes matching `query` on every host, in each host's newest
    /// snapshot or its newest at or before `at`; at most `limit`, and
    /// whether there were more.
    async fn search(
        &self,
        query: &SearchQuery,
        at: Option<DateTime<Utc>>,
        limit: usize,
    ) -> StoreResult<(Vec<Found>, bool)> {
        let mut hosts = self.hosts().await?;
        hosts.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        let mut hits = Hits::new(query, limit);
        for host in hosts {
            if let Some(snapshot) = self.snapshot(&host.info.id, at).await? {
                if hits.add(&host.info.id, snapshot) {
                    break;
                }
            }
        }
        Ok(hits.done())
    }

    /// Rolls up what is complete, then drops what `retention` no longer
    /// keeps, in whole blocks and short steps that never hold ingest up
    /// for long. Reads never show data older than retention, even before
    /// its block is dropped.
    async fn maintain(&self, now: DateTime<Utc>, retention: Retention) -> StoreResult<Maintenance>;

    /// Removes a host and all its history; false when there is no such
    /// host. A snapshot it sends afterwards starts it anew.
    async fn remove_host(&self, host_id: &str) -> StoreResult<bool>;

    /// How many snapshots are stored as sent, of every host (within raw
    /// retention): what an operator or a test counts to see that nothing
    /// was lost or stored twice.
    async fn count_snapshots(&self) -> StoreResult<u64>;

    /// Succeeds when the database can be read and written: takes the same
    /// path as a write, without changing anything.
    async fn check(&self) -> StoreResult<()>;

    /// Closes the database; every call after this fails.
    async fn close(&self);
}
