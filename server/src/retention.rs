//! Deletes snapshots older than the retention age, in the background.
//!
//! Work is done in small batches, each its own short transaction, with a
//! pause between them, so an ingest never waits long behind a deletion.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::store::{Deleted, Store};

/// Snapshots deleted per transaction.
pub const BATCH: u32 = 10;
/// Pause between batches, leaving the database to ingests.
const PAUSE: Duration = Duration::from_millis(20);

/// Deletes everything older than `retention`, batch by batch, and returns
/// the totals.
pub async fn sweep(store: &dyn Store, retention: Duration) -> anyhow::Result<Deleted> {
    let cutoff = Utc::now() - retention;
    let mut total = Deleted::default();
    loop {
        let deleted = store.delete_before(cutoff, BATCH).await?;
        total.snapshots += deleted.snapshots;
        total.processes += deleted.processes;
        total.hosts += deleted.hosts;
        if deleted.snapshots < u64::from(BATCH) {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Sweeps every `every` until the task is dropped or aborted.
pub async fn run(store: Arc<dyn Store>, retention: Duration, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match sweep(store.as_ref(), retention).await {
            Ok(d) if d == Deleted::default() => {}
            Ok(d) => tracing::info!(
                snapshots = d.snapshots,
                processes = d.processes,
                hosts = d.hosts,
                "retention: deleted data older than {}",
                humantime::format_duration(retention)
            ),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "retention pass failed; will retry"
            ),
        }
    }
}
