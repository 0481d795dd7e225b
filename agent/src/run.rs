//! The agent's loop: every interval, collect, send, log one line.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::time::MissedTickBehavior;

use crate::enroll::Credentials;
use crate::{AgentConfig, Collector, SendError};

/// How long a stop waits for the snapshot in flight: long enough for a
/// send to a server that answers, short enough for a service manager that
/// kills after 10 s or so.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Takes and sends a snapshot every `config.interval` until `shutdown`
/// completes; a snapshot in flight then gets [`STOP_GRACE`] to be sent. A
/// failed send is logged and the loop goes on: the server may come back.
/// Errors only when the agent cannot start at all.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut credentials =
        Credentials::new(&config.server_url, config.key.clone(), config.trust.clone())?;
    // Reading every process takes a while and blocks, so it runs on the
    // blocking pool; the collector moves there and back through the mutex.
    let collector = tokio::task::spawn_blocking(Collector::new)
        .await
        .context("the process collector could not start")?;
    let collector = Arc::new(Mutex::new(collector));
    tracing::info!(
        server = %credentials.server_url(),
        interval = %humantime::format_duration(config.interval),
        "procmon agent started"
    );

    let mut ticks = tokio::time::interval(config.interval);
    // After a stall (a slow send, a suspended laptop) go on at the normal
    // pace rather than firing the missed ticks in a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticks.tick() => {}
        }
        let cycle = collect_and_send(&collector, &mut credentials, &config);
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

/// One cycle; logs the send's outcome in one line. Errors only when the
/// collector itself failed.
async fn collect_and_send(
    collector: &Arc<Mutex<Collector>>,
    credentials: &mut Credentials,
    config: &AgentConfig,
) -> anyhow::Result<()> {
    let interval = config.interval;
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

    let send_started = Instant::now();
    let outcome = match credentials.sender(&snapshot.host).await {
        Ok(sender) => sender.send(&snapshot).await,
        Err(e) => Err(e),
    };
    if matches!(outcome, Err(SendError::KeyRefused)) {
        credentials.refused();
    }
    let send_ms = send_started.elapsed().as_millis();
    let id = snapshot.id.simple().to_string();
    let short_id = &id[..8];
    let processes = snapshot.processes.len();
    match outcome {
        Ok(answer) => tracing::info!(
            snapshot = %short_id,
            processes,
            collect_ms,
            send_ms,
            status = %if answer.stored { "stored" } else { "already stored" },
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
