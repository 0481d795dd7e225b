//! Budgets and failed sign-ins of an SQLite store, in memory. An SQLite
//! file is one server's (it cannot be shared over a network, and several
//! servers share a PostgreSQL database instead), so there is nobody to
//! share them with; kept out of the file, the budget taken on every agent
//! request costs a map lookup rather than a write through the one writer,
//! queued behind the snapshots. A restart forgets them, as it always did.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::store::limits::{Bucket, LimitStore, Throttle};
use crate::store::StoreResult;

/// Budgets, and keys with failures, tracked at once. A full bucket is
/// forgotten (it would start full anyway), as is a key with no failure
/// left in its window; past this many, new budgets are refused for a
/// second and new keys' failures go unrecorded, rather than the maps
/// growing without bound.
const MAX_TRACKED: usize = 100_000;

/// What the store keeps in memory.
#[derive(Debug, Default)]
pub struct MemoryLimits {
    buckets: Mutex<Buckets>,
    failures: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_name: HashMap<String, Level>,
    last_pruned: Option<DateTime<Utc>>,
}

/// A bucket's units as of a time, and its shape (to tell when it is full).
#[derive(Debug, Clone, Copy)]
struct Level {
    tokens: f64,
    at: DateTime<Utc>,
    bucket: Bucket,
}

impl Level {
    fn full(&self, now: DateTime<Utc>) -> bool {
        self.bucket.refilled(self.tokens, self.at, now) >= self.bucket.capacity
    }
}

/// One key's failure times, oldest first, and the window they count in.
#[derive(Debug)]
struct Failures {
    times: VecDeque<DateTime<Utc>>,
    throttle: Throttle,
}

/// Locks a mutex, going on after a panic elsewhere: the maps are only
/// numbers and times, which no panic leaves half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryLimits {
    fn take(&self, name: &str, bucket: Bucket, now: DateTime<Utc>) -> Result<(), Duration> {
        let mut state = lock(&self.buckets);
        if !state.by_name.contains_key(name) && state.by_name.len() >= MAX_TRACKED {
            prune(&mut state, now);
            if state.by_name.len() >= MAX_TRACKED {
                return Err(Duration::from_secs(1));
            }
        }
        let level = state.by_name.entry(name.to_owned()).or_insert(Level {
            tokens: bucket.capacity,
            at: now,
            bucket,
        });
        let tokens = bucket.refilled(level.tokens, level.at, now);
        if tokens >= 1.0 {
            *level = Level {
                tokens: tokens - 1.0,
                at: now.max(level.at),
                bucket,
            };
            Ok(())
        } else {
            Err(bucket.wait(tokens))
        }
    }

    fn fail(&self, keys: &[String], throttle: Throttle, now: DateTime<Utc>) {
        let mut failures = lock(&self.failures);
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| f.times.iter().any(|t| f.throttle.counts(*t, now)));
        }
        for key in keys {
            if !failures.contains_key(key) && failures.len() >= MAX_TRACKED {
                continue;
            }
            let entry = failures.entry(key.clone()).or_insert_with(|| Failures {
                times: VecDeque::new(),
                throttle,
            });
            entry.throttle = throttle;
            let times = &mut entry.times;
            while times.front().is_some_and(|t| !throttle.counts(*t, now)) {
                times.pop_front();
            }
            times.push_back(now);
            // Only the newest `max_failures` ever matter.
            while times.len() > throttle.max_failures {
                times.pop_front();
            }
        }
    }

    fn clear(&self, keys: &[String]) {
        let mut failures = lock(&self.failures);
        for key in keys {
            failures.remove(key);
        }
    }

    fn locked(&self, keys: &[String], throttle: Throttle, now: DateTime<Utc>) -> Option<Duration> {
        let failures = lock(&self.failures);
        Throttle::longest(keys.iter().filter_map(|key| failures.get(key)).map(|f| {
            let times: Vec<_> = f.times.iter().copied().collect();
            throttle.lock(&times, now)
        }))
    }
}

/// Forgets full buckets; at most once a second, so a full map does not
/// cost a scan per call.
fn prune(state: &mut Buckets, now: DateTime<Utc>) {
    if state
        .last_pruned
        .is_some_and(|at| (now - at).to_std().unwrap_or_default() < Duration::from_secs(1))
    {
        return;
    }
    state.last_pruned = Some(now);
    state.by_name.retain(|_, level| !level.full(now));
}

#[async_trait]
impl LimitStore for SqliteStore {
    async fn take(
        &self,
        name: &str,
        bucket: Bucket,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), Duration>> {
        Ok(self.inner.limits.take(name, bucket, now))
    }

    async fn fail(
        &self,
        keys: &[String],
        throttle: Throttle,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.limits.fail(keys, throttle, now);
        Ok(())
    }

    async fn clear(&self, keys: &[String]) -> StoreResult<()> {
        self.inner.limits.clear(keys);
        Ok(())
    }

    async fn locked(
        &self,
        keys: &[String],
        throttle: Throttle,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Duration>> {
        Ok(self.inner.limits.locked(keys, throttle, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_buckets_are_forgotten_when_the_map_is_full() {
        let limits = MemoryLimits::default();
        let bucket = Bucket::new(1, 10);
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for i in 0..MAX_TRACKED {
            limits.take(&i.to_string(), bucket, start).unwrap();
        }
        // All empty: a new budget waits.
        assert!(limits.take("new", bucket, start).is_err());
        // A second later all have refilled and are dropped.
        let later = start + chrono::Duration::seconds(1);
        assert_eq!(limits.take("new", bucket, later), Ok(()));
        assert_eq!(lock(&limits.buckets).by_name.len(), 1);
    }
}
