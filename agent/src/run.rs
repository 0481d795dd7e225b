//! The agent's loop: every interval, collect, deliver, log one line.
//!
//! What goes is decided by [`Link`]: the first snapshot, and one every
//! `full_every`, in full; in between only what changed since the last
//! snapshot the server acknowledged (a change batch). A batch the server
//! cannot apply (it lacks the base: it restarted, or a batch was lost) is
//! answered `base_unknown`, and the same snapshot goes again at once, in
//! full.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use procmon_model::changes::diff;
use procmon_model::{IngestResponse, Snapshot};
use tokio::time::MissedTickBehavior;

use crate::deliver::{Deliver, Delivery, SendError};
use crate::Collector;

/// How long a stop waits for the snapshot in flight: long enough for a
/// send to a server that answers, short enough for a service manager that
/// kills after 10 s or so.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often a snapshot goes in full when nothing says otherwise, though
/// the server holds the base: a bound on how long a server that lost track
/// without saying so (it should not) shows a wrong tree.
pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(600);

/// Takes and sends a snapshot every `config.interval` over HTTP until
/// `shutdown` completes; see [`run_with`].
#[cfg(feature = "http")]
pub async fn run(
    config: crate::AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let credentials =
        crate::enroll::Credentials::new(&config.server_url, config.key.clone(), config.trust)?;
    let outbox = crate::send::HttpOutbox::new(credentials);
    tracing::info!(server = %outbox.server_url(), "sending to");
    run_with(
        outbox,
        Pace {
            interval: config.interval,
            full_every: config.full_every,
        },
        shutdown,
    )
    .await
}

/// How often the loop takes a snapshot, and sends one in full.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Time between two snapshots.
    pub interval: Duration,
    /// Time between two snapshots sent in full.
    pub full_every: Duration,
}

/// Takes a snapshot every `pace.interval` and hands it to `outbox`, until
/// `shutdown` completes; a snapshot in flight then gets [`STOP_GRACE`] to
/// be delivered. A failed delivery is logged and the loop goes on: the
/// server may come back. Errors only when the agent cannot start at all.
pub async fn run_with(
    mut outbox: impl Deliver,
    pace: Pace,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Reading every process takes a while and blocks, so it runs on the
    // blocking pool; the collector moves there and back through the mutex.
    let collector = tokio::task::spawn_blocking(Collector::new)
        .await
        .context("the process collector could not start")?;
    let collector = Arc::new(Mutex::new(collector));
    let mut link = Link::new(pace.full_every);
    tracing::info!(
        interval = %humantime::format_duration(pace.interval),
        full_every = %humantime::format_duration(pace.full_every),
        "procmon agent started"
    );

    let mut ticks = tokio::time::interval(pace.interval);
    // After a stall (a slow send, a suspended laptop) go on at the normal
    // pace rather than firing the missed ticks in a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticks.tick() => {}
        }
        let cycle = collect_and_send(&collector, &mut link, &mut outbox, pace.interval);
        tokio::pin!(cycle);
        let result = tokio::select! {
            result = &mut cycle => result,
            () = &mut shutdown => {
                tracing::info!(
                    "stopping: finishing the snapshot in flight (at most {} s)",
                    STOP_GRACE.as_secs()
                );
                match tokio::time::timeout(STOP_GRACE, &mut cycle).await {
                    Ok(result) => log_failure(result),
                    Err(_) => tracing::warn!(
                        "stopping: the snapshot in flight was abandoned after {} s",
                        STOP_GRACE.as_secs()
                    ),
                }
                break;
            }
        };
        log_failure(result);
    }
    tracing::info!("procmon agent stopped");
    Ok(())
}

fn log_failure(cycle: anyhow::Result<()>) {
    if let Err(error) = cycle {
        tracing::error!("{error:#}");
    }
}

/// What the server has acknowledged, and so what the next snapshot can be
/// sent as: a change batch against the last acknowledged snapshot, or
/// whole.
pub struct Link {
    /// The last snapshot the server answered 201 for, by its exact id.
    acked: Option<Snapshot>,
    /// When a snapshot last went in full and was acknowledged.
    full_at: Option<Instant>,
    full_every: Duration,
}

/// How a snapshot went.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The server's answer.
    pub answer: IngestResponse,
    /// Whether it went in full (at start, when due, or after the server
    /// lacked a batch's base).
    pub full: bool,
}

impl Link {
    /// Nothing acknowledged yet: the first snapshot goes in full.
    pub fn new(full_every: Duration) -> Self {
        Self {
            acked: None,
            full_at: None,
            full_every,
        }
    }

    /// The snapshot the next batch would be relative to.
    pub fn acked(&self) -> Option<&Snapshot> {
        self.acked.as_ref()
    }

    /// Forgets what the server acknowledged: the next snapshot goes in
    /// full.
    pub fn reset(&mut self) {
        self.acked = None;
    }

    /// How `snapshot` should go now: `None` in full, else the batch
    /// against the last acknowledged snapshot.
    pub fn batch_for(&self, snapshot: &Snapshot) -> Option<procmon_model::ChangeBatch> {
        let due = self
            .full_at
            .is_none_or(|at| at.elapsed() >= self.full_every);
        match &self.acked {
            Some(acked) if !due && acked.host.id == snapshot.host.id => Some(diff(acked, snapshot)),
            _ => None,
        }
    }

    /// The server answered 201 for `snapshot` (sent `full` or not).
    pub fn acknowledged(&mut self, snapshot: Snapshot, full: bool) {
        if full {
            self.full_at = Some(Instant::now());
        }
        self.acked = Some(snapshot);
    }

    /// Delivers `snapshot` through `outbox`: as a batch when it can, and in
    /// full when due or when the server lacks the batch's base. Whatever
    /// the outcome, a later batch is only ever relative to a snapshot the
    /// server said 201 for.
    pub async fn send(
        &mut self,
        outbox: &mut impl Deliver,
        snapshot: Snapshot,
    ) -> Result<Sent, SendError> {
        if let Some(batch) = self.batch_for(&snapshot) {
            match outbox.deliver(Delivery::Batch(&batch)).await {
                Ok(answer) => {
                    if answer.snapshot_id == snapshot.id {
                        self.acknowledged(snapshot, false);
                    }
                    return Ok(Sent {
                        answer,
                        full: false,
                    });
                }
                Err(SendError::BaseUnknown { message }) => {
                    tracing::info!("the server lacks the base ({message}): sending in full");
                    self.acked = None;
                }
                Err(e) => return Err(e),
            }
        }
        let answer = outbox.deliver(Delivery::Full(&snapshot)).await?;
        if answer.snapshot_id == snapshot.id {
            self.acknowledged(snapshot, true);
        }
        Ok(Sent { answer, full: true })
    }
}

/// One cycle; logs the send's outcome in one line. Errors only when the
/// collector itself failed.
async fn collect_and_send(
    collector: &Arc<Mutex<Collector>>,
    link: &mut Link,
    outbox: &mut impl Deliver,
    interval: Duration,
) -> anyhow::Result<()> {
    let collector = Arc::clone(collector);
    let collect_started = Instant::now();
    let snapshot = tokio::task::spawn_blocking(move || {
        // A panic while collecting poisons the lock; the collector's state
        // is only caches, so it is safe to go on with it.
        let mut collector = collector.lock().unwrap_or_else(|p| p.into_inner());
        collector.snapshot(interval)
    })
    .await
    .context("taking a snapshot failed")?;
    let collect_ms = collect_started.elapsed().as_millis();

    let id = snapshot.id.simple().to_string();
    let short_id = &id[..8];
    let processes = snapshot.processes.len();
    let send_started = Instant::now();
    let outcome = link.send(outbox, snapshot).await;
    let send_ms = send_started.elapsed().as_millis();
    match outcome {
        Ok(sent) => tracing::info!(
            snapshot = %short_id,
            processes,
            collect_ms,
            send_ms,
            sent = %if sent.full { "whole" } else { "changes" },
            status = %if sent.answer.stored { "stored" } else { "already stored" },
            "sent"
        ),
        Err(error) => tracing::warn!(
            snapshot = %short_id,
            processes,
            collect_ms,
            send_ms,
            status = %"not sent",
            "{error}"
        ),
    }
    Ok(())
}
