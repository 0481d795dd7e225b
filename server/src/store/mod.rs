//! Storage behind one interface, so a second database (PostgreSQL) can be
//! added beside SQLite without touching the API.

mod sqlite;

pub use sqlite::SqliteStore;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::{HostInfo, ProcessSample, Snapshot};
use uuid::Uuid;

/// What the store did with a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// New: it is stored now.
    Stored,
    /// This id was stored before, from the same host; nothing changed.
    AlreadyStored,
    /// This id was stored before from a different host; nothing changed.
    IdTakenByOtherHost,
}

/// A host as stored, with the totals of its newest snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRecord {
    /// The facts of the newest snapshot received.
    pub info: HostInfo,
    /// The agent's send interval, in milliseconds.
    pub interval_ms: u64,
    /// First snapshot received (server clock).
    pub first_seen: DateTime<Utc>,
    /// Last snapshot received (server clock).
    pub last_seen: DateTime<Utc>,
    /// Totals of the newest snapshot; zero when retention removed them all.
    pub totals: SnapshotTotals,
}

/// Sums over one snapshot's processes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SnapshotTotals {
    /// Number of processes.
    pub process_count: u32,
    /// Sum of CPU % (100 = one core).
    pub cpu_percent: f32,
    /// Sum of resident memory in bytes.
    pub memory_rss_bytes: u64,
}

impl SnapshotTotals {
    /// The sums over `processes`.
    pub fn of(processes: &[ProcessSample]) -> Self {
        Self {
            process_count: processes.len() as u32,
            cpu_percent: processes.iter().map(|p| p.cpu_percent).sum(),
            memory_rss_bytes: processes
                .iter()
                .map(|p| p.memory_rss_bytes)
                .fold(0, u64::saturating_add),
        }
    }
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
    /// The processes, as sent.
    pub processes: Vec<ProcessSample>,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deleted {
    /// Snapshots (with their samples).
    pub snapshots: u64,
    /// Processes that no remaining sample referred to.
    pub processes: u64,
    /// Hosts with nothing left, last seen before the cutoff.
    pub hosts: u64,
}

/// Where snapshots are kept. Implementations must make `ingest` atomic: a
/// snapshot is stored whole or not at all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores `snapshot`, received at `received_at` (server clock), unless
    /// its id was stored before.
    async fn ingest(
        &self,
        snapshot: &Snapshot,
        received_at: DateTime<Utc>,
    ) -> anyhow::Result<IngestOutcome>;

    /// Every host, in no particular order.
    async fn hosts(&self) -> anyhow::Result<Vec<HostRecord>>;

    /// One host, if known.
    async fn host(&self, host_id: &str) -> anyhow::Result<Option<HostRecord>>;

    /// Ids of the hosts whose newest hostname is `hostname`, to make display
    /// names unique.
    async fn hosts_named(&self, hostname: &str) -> anyhow::Result<Vec<String>>;

    /// The host's newest snapshot, or with `at`, its newest one taken at or
    /// before `at`. A snapshot counts as taken when the agent collected it,
    /// or when it arrived if the agent's clock put it later than that.
    async fn snapshot(
        &self,
        host_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Option<StoredSnapshot>>;

    /// Deletes up to `batch` snapshots received before `cutoff`, then the
    /// processes and hosts nothing refers to any more, in one short
    /// transaction. Called repeatedly until it deletes no snapshot.
    async fn delete_before(&self, cutoff: DateTime<Utc>, batch: u32) -> anyhow::Result<Deleted>;

    /// Succeeds when the database answers a query.
    async fn ping(&self) -> anyhow::Result<()>;

    /// Closes the connections, waiting for running queries; every call
    /// after this fails.
    async fn close(&self);
}
