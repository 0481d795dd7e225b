//! Keeps history within its retention, in the background: every pass rolls
//! up what is complete and drops whole blocks of what is too old (see
//! `Store::maintain`). A pass does its work in short steps, so ingest never
//! waits long behind it.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Maintenance, Retention, Store, StoreResult};

/// Runs passes until one has nothing left to do (a pass does a bounded
/// amount), and returns the totals.
pub async fn sweep(
    store: &dyn Store,
    clock: &dyn Clock,
    retention: Retention,
) -> StoreResult<Maintenance> {
    let mut total = Maintenance::default();
    loop {
        let done = store.maintain(clock.now(), retention).await?;
        total.minute_rollups += done.minute_rollups;
        total.hour_rollups += done.hour_rollups;
        total.blocks_dropped += done.blocks_dropped;
        total.hosts_removed += done.hosts_removed;
        if done == Maintenance::default() {
            return Ok(total);
        }
    }
}

/// Sweeps every `every` until the task is dropped or aborted; each sweep
/// is timed and counted in `metrics`.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    every: Duration,
    metrics: Arc<Metrics>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = std::time::Instant::now();
        let swept = sweep(store.as_ref(), clock.as_ref(), retention).await;
        metrics.maintenance_done(&swept, started.elapsed());
        match swept {
            Ok(d) if d == Maintenance::default() => {}
            Ok(d) => tracing::info!(
                minute_rollups = d.minute_rollups,
                hour_rollups = d.hour_rollups,
                blocks_dropped = d.blocks_dropped,
                hosts_removed = d.hosts_removed,
                "history maintained"
            ),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "history maintenance failed; will retry"
            ),
        }
    }
}
