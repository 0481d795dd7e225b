//! Each host's recent load, one point per snapshot, for the page's meters
//! and their sparklines (`GET /api/live/load/`). Written with each
//! snapshot in its transaction and kept for [`LOAD_KEPT`], in the database
//! rather than in a server's memory, so that every server of a shared
//! database, and a server just restarted, answers the same.

use chrono::{DateTime, Utc};
use procmon_model::{HostLoad, Snapshot};
use serde::Serialize;

use super::chain::nanos;
use super::SnapshotTotals;

/// How long load points are kept.
pub const LOAD_KEPT: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// One point of a host's load history: the meters' sparklines.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LoadPoint {
    /// When the snapshot was taken.
    pub at: DateTime<Utc>,
    /// Sum of every process's CPU %, 100 = one core.
    pub cpu_percent: f64,
    /// Resident memory of all processes, in bytes.
    pub memory_rss_bytes: u64,
    /// Number of processes.
    pub processes: usize,
    /// The host's own meters, when its agent sends them.
    pub load: Option<HostLoad>,
}

/// A load point as a store writes it: the point, with the time it counts
/// as taken (nanoseconds) and the agent's meters as JSON.
pub struct LoadRow {
    pub taken: i64,
    pub at: i64,
    pub cpu_percent: f64,
    pub memory_rss_bytes: i64,
    pub processes: i64,
    pub load: Option<String>,
}

impl LoadRow {
    /// The point of `snapshot`, taken at `taken`. Invalid CPU readings
    /// (not finite) count as nothing, as in the page's sums.
    pub fn of(snapshot: &Snapshot, taken: i64) -> Self {
        let totals = SnapshotTotals::of(&snapshot.processes);
        let cpu_percent = snapshot
            .processes
            .iter()
            .map(|p| f64::from(p.cpu_percent))
            .filter(|c| c.is_finite())
            .sum();
        Self {
            taken,
            at: nanos(snapshot.collected_at),
            cpu_percent,
            memory_rss_bytes: i64::try_from(totals.memory_rss_bytes).unwrap_or(i64::MAX),
            processes: i64::from(totals.process_count),
            load: snapshot
                .load
                .as_ref()
                .map(|l| serde_json::to_string(l).expect("a host load serialises")),
        }
    }

    /// Points older than this go when this one is written.
    pub fn expired_before(&self) -> i64 {
        self.taken - LOAD_KEPT.num_nanoseconds().expect("an hour fits")
    }
}

/// A point read back: `at` in nanoseconds, the meters as stored.
pub fn point(
    at: i64,
    cpu_percent: f64,
    memory_rss_bytes: i64,
    processes: i64,
    load: Option<&str>,
) -> anyhow::Result<LoadPoint> {
    Ok(LoadPoint {
        at: DateTime::from_timestamp_nanos(at),
        cpu_percent,
        memory_rss_bytes: u64::try_from(memory_rss_bytes).unwrap_or(0),
        processes: usize::try_from(processes).unwrap_or(0),
        load: load
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| anyhow::anyhow!("a stored host load does not decode: {e}"))?,
    })
}
