//! A token bucket per client: a burst is allowed, then a steady rate, so one
//! runaway or hostile agent cannot fill the store while the others go on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clients tracked at once. A bucket that has refilled is forgotten, so
/// only clients active in the last few seconds count; past this many the
/// new ones wait, rather than the map growing without bound.
const MAX_TRACKED: usize = 100_000;

/// Buckets keyed by client, all with the same rate and burst.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    state: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_key: HashMap<String, Bucket>,
    last_pruned: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `burst` requests at once, then `per_second` a second.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            state: Mutex::default(),
        }
    }

    /// Takes one token from `key`'s bucket; when it is empty, how long
    /// until the next request from `key` would be allowed.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        // The map is only numbers: a panic elsewhere cannot leave it broken.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !state.by_key.contains_key(key) && state.by_key.len() >= MAX_TRACKED {
            self.prune(&mut state, now);
            if state.by_key.len() >= MAX_TRACKED {
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = state.by_key.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }

    /// Forgets full buckets (a client that comes back starts full anyway);
    /// at most once a second, so a full map does not cost a scan per call.
    fn prune(&self, state: &mut Buckets, now: Instant) {
        if state
            .last_pruned
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        state.last_pruned = Some(now);
        state
            .by_key
            .retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_key() {
        let limiter = RateLimiter::new(2, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("a", start), Ok(()));
        }
        let wait = limiter.check("a", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another key is not affected.
        assert_eq!(limiter.check("b", start), Ok(()));
        // Half a second later one more token is there, and only one.
        let later = start + Duration::from_millis(500);
        assert_eq!(limiter.check("a", later), Ok(()));
        assert!(limiter.check("a", later).is_err());
        // Never more than the burst, however long the wait.
        let much_later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check("a", much_later), Ok(()));
        }
        assert!(limiter.check("a", much_later).is_err());
    }

    #[test]
    fn refilled_buckets_are_forgotten_when_the_map_is_full() {
        let limiter = RateLimiter::new(10, 1);
        let start = Instant::now();
        for i in 0..MAX_TRACKED {
            limiter.check(&i.to_string(), start).unwrap();
        }
        // All empty: a new key waits.
        assert!(limiter.check("new", start).is_err());
        // A second later all have refilled and are dropped.
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.check("new", later), Ok(()));
        assert_eq!(limiter.state.lock().unwrap().by_key.len(), 1);
    }
}
