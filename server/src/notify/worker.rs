//! Sends what the alerts queue: every second, claims the deliveries due
//! (a lease that keeps other servers off them while this one sends) and
//! sends each in its own task, so a channel that hangs holds up nobody
//! else's. A failure is recorded with its error and tried again later,
//! 10 s after the first failure and twice as long after each next, up to
//! an hour apart; after a day of failures the delivery is given up, still
//! listed with its error. Nothing is dropped without a trace.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use procmon_model::alerts::AlertNotification;
use tokio::sync::Semaphore;

use super::Notifier;
use crate::clock::Clock;
use crate::metrics::alerts::{AlertMetrics, SendOutcome};
use crate::metrics::Metrics;
use crate::store::channels::{ChannelStore, ClaimedDelivery};

/// How often the queue is looked at.
pub const EVERY: Duration = Duration::from_secs(1);
/// How long a claim keeps other servers off a delivery: well past the
/// longest send ([`super::TIMEOUT`]), so only a server that died mid-send
/// loses it.
pub const LEASE: Duration = Duration::from_secs(120);
/// Deliveries sent at once at most.
pub const IN_FLIGHT: usize = 16;
/// The wait after the first failure; it doubles after each next.
pub const FIRST_RETRY: Duration = Duration::from_secs(10);
/// The longest wait between attempts.
pub const LONGEST_RETRY: Duration = Duration::from_secs(3600);
/// How long a delivery is tried before it is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before the next attempt, after `failures` failed ones.
pub fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    FIRST_RETRY
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY)
}

/// When to try again after the failure at `now` of a delivery queued at
/// `created_at` and now failed `failures` times; `None`: give up.
pub fn next_attempt(
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    failures: u32,
) -> Option<DateTime<Utc>> {
    let age = (now - created_at).to_std().unwrap_or_default();
    if age >= GIVE_UP_AFTER {
        return None;
    }
    Some(now + chrono::TimeDelta::from_std(retry_delay(failures)).unwrap_or_default())
}

/// Claims and sends until aborted: every [`EVERY`], and at once when this
/// server has queued notifications (`queued`), so that one fired here is
/// not held until the next look.
pub async fn run(
    channels: Arc<dyn ChannelStore>,
    notifier: Arc<Notifier>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    queued: Arc<tokio::sync::Notify>,
) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = queued.notified() => {}
        }
        let free = permits.available_permits();
        if free == 0 {
            continue;
        }
        let claimed = match channels.claim_due(clock.now(), LEASE, free).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot claim notifications to send; will retry"
                );
                continue;
            }
        };
        for delivery in claimed {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let (channels, notifier, clock, metrics) = (
                Arc::clone(&channels),
                Arc::clone(&notifier),
                Arc::clone(&clock),
                Arc::clone(&metrics),
            );
            tokio::spawn(async move {
                deliver(
                    channels.as_ref(),
                    &notifier,
                    clock.as_ref(),
                    &metrics.alerts,
                    delivery,
                )
                .await;
                drop(permit);
            });
        }
    }
}

/// Sends one claimed delivery and records how it went: counted in the
/// metrics first, so that one the store shows as sent is counted already.
pub async fn deliver(
    channels: &dyn ChannelStore,
    notifier: &Notifier,
    clock: &dyn Clock,
    metrics: &AlertMetrics,
    delivery: ClaimedDelivery,
) {
    let outcome = attempt(channels, notifier, &delivery).await;
    let now = clock.now();
    let recorded = match &outcome {
        Ok(()) => {
            tracing::info!(delivery = %delivery.id, channel = %delivery.channel_id, "notification delivered");
            metrics.sent(SendOutcome::Delivered);
            channels.delivered(&delivery.id, now).await
        }
        Err(Failure { error, retry }) => {
            let failures = delivery.attempts.saturating_add(1);
            let next = retry
                .then(|| next_attempt(delivery.created_at, now, failures))
                .flatten();
            match next {
                Some(next) => tracing::warn!(
                    delivery = %delivery.id, channel = %delivery.channel_id, error = %error,
                    attempts = failures, next_attempt_at = %next.to_rfc3339(),
                    "a notification could not be delivered; will retry"
                ),
                None => tracing::error!(
                    delivery = %delivery.id, channel = %delivery.channel_id, error = %error,
                    attempts = failures, "a notification could not be delivered; given up"
                ),
            }
            let (sent, error) = if next.is_some() {
                (SendOutcome::Retrying, error.clone())
            } else {
                (SendOutcome::GivenUp, format!("given up: {error}"))
            };
            metrics.sent(sent);
            channels.failed(&delivery.id, now, &error, next).await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the delivery is claimed again: sent
        // twice at worst, which its id lets the receiver see.
        tracing::warn!(delivery = %delivery.id, error = format!("{e:#}"), "cannot record a notification's delivery");
    }
}

/// Why an attempt failed, and whether another could do better.
struct Failure {
    error: String,
    retry: bool,
}

async fn attempt(
    channels: &dyn ChannelStore,
    notifier: &Notifier,
    delivery: &ClaimedDelivery,
) -> Result<(), Failure> {
    let found = channels
        .channel_secret(&delivery.channel_id)
        .await
        .map_err(|e| Failure {
            error: format!("cannot read the channel: {e}"),
            retry: true,
        })?;
    let Some((channel, secret)) = found else {
        return Err(Failure {
            error: format!(
                "channel {:?} does not exist (deleted, or never made)",
                delivery.channel_id
            ),
            retry: false,
        });
    };
    let notification: AlertNotification =
        serde_json::from_str(&delivery.body).map_err(|e| Failure {
            error: format!("the queued notification does not decode: {e}"),
            retry: false,
        })?;
    notifier
        .send(
            &channel.kind,
            secret.as_ref(),
            &notification,
            &delivery.body,
        )
        .await
        .map_err(|error| Failure { error, retry: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_10_s_doubling_to_an_hour() {
        let secs: Vec<u64> = (1..=12).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(
            secs,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]
        );
        assert_eq!(retry_delay(u32::MAX).as_secs(), 3600);
    }

    #[test]
    fn a_day_of_failures_gives_up() {
        let queued = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let soon = queued + chrono::TimeDelta::minutes(1);
        assert_eq!(
            next_attempt(queued, soon, 1),
            Some(soon + chrono::TimeDelta::seconds(10))
        );
        let late = queued + chrono::TimeDelta::hours(24);
        assert_eq!(next_attempt(queued, late, 30), None);
    }
}
