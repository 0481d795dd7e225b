//! Budgets and failed sign-ins as the store keeps them. Servers that share
//! a database share these too: a host behind a balancer gets its budget
//! once, not once per server, and a password guesser its few tries.
//!
//! Both are keyed by a name the caller chooses, prefixed by what it limits
//! (`ingest:<key id>`, `enroll:<host>`, `sign-in:<user>`,
//! `sign-in-ip:<address>`); the rules (how big a budget, how many failures)
//! come with each call, so the store keeps only numbers and times.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// A token bucket: `capacity` units at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub capacity: f64,
    pub per_second: f64,
}

impl Bucket {
    /// A burst of `capacity`, then `per_second`; each at least 1.
    pub fn new(capacity: u32, per_second: u32) -> Self {
        Self {
            capacity: f64::from(capacity.max(1)),
            per_second: f64::from(per_second.max(1)),
        }
    }

    /// The units of a bucket that had `tokens` at `at`, by `now` (never
    /// more than its capacity; a clock that went back refills nothing).
    pub fn refilled(&self, tokens: f64, at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
        let elapsed = (now - at).to_std().unwrap_or_default().as_secs_f64();
        (tokens + elapsed * self.per_second).min(self.capacity)
    }

    /// How long until a bucket with `tokens` (fewer than one) has one.
    pub fn wait(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - tokens) / self.per_second).max(0.0))
    }
}

/// A sign-in throttle: `max_failures` within `window` lock a key until the
/// oldest of them leaves the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub max_failures: usize,
    pub window: Duration,
}

impl Throttle {
    /// At most `max_failures` (at least 1) within `window`.
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
        }
    }

    /// The window as a chrono span (an unrepresentable one is for ever).
    pub fn span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX)
    }

    /// Whether a failure at `at` still counts at `now`.
    pub fn counts(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now - at < self.span()
    }

    /// How long a key with failures at `times` (oldest first) stays
    /// locked at `now`, if it is: until the oldest of its newest
    /// `max_failures` leaves the window.
    pub fn lock(&self, times: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<Duration> {
        let recent: Vec<_> = times.iter().filter(|t| self.counts(**t, now)).collect();
        (recent.len() >= self.max_failures).then(|| {
            let frees_at = *recent[recent.len() - self.max_failures] + self.span();
            (frees_at - now).to_std().unwrap_or_default()
        })
    }

    /// The longest lock of several keys', at least a second (a
    /// `Retry-After` of 0 would invite an immediate retry).
    pub fn longest(locks: impl IntoIterator<Item = Option<Duration>>) -> Option<Duration> {
        locks
            .into_iter()
            .flatten()
            .max()
            .map(|wait| wait.max(Duration::from_secs(1)))
    }
}

/// Where budgets and sign-in failures are kept.
#[async_trait]
pub trait LimitStore: Send + Sync + 'static {
    /// Takes one unit of the budget `name` (a full `bucket` the first time
    /// it is asked for); when none is left, how long until one is.
    async fn take(
        &self,
        name: &str,
        bucket: Bucket,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), Duration>>;

    /// Counts a failure at `now` against each of `keys`.
    async fn fail(
        &self,
        keys: &[String],
        throttle: Throttle,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Forgets the failures of `keys`.
    async fn clear(&self, keys: &[String]) -> StoreResult<()>;

    /// How long until none of `keys` is locked, if one is.
    async fn locked(
        &self,
        keys: &[String],
        throttle: Throttle,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Duration>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_lasts_until_the_oldest_counted_failure_ages() {
        let throttle = Throttle::new(3, Duration::from_secs(60));
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |s: i64| start + chrono::Duration::seconds(s);
        let times = [at(0), at(10), at(20), at(30)];
        // The newest three count: the one at 10 s frees the key at 70 s.
        assert_eq!(throttle.lock(&times, at(40)), Some(Duration::from_secs(30)));
        assert_eq!(throttle.lock(&times[..2], at(40)), None);
        assert_eq!(throttle.lock(&times, at(70)), None);
        assert_eq!(
            Throttle::longest([None, Some(Duration::ZERO)]),
            Some(Duration::from_secs(1))
        );
    }
}
