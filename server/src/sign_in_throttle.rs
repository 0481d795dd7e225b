//! Failed sign-ins, counted per user name and per client address: after
//! `max_failures` within `window` for either, sign-in is refused (429)
//! until the oldest of them leaves the window. Password guessing thus gets
//! a handful of tries a minute, spread over names or over addresses.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Keys tracked at once; past this, keys with no failure left in the
/// window are forgotten first, and new failures of new keys are not
/// recorded rather than the map growing without bound.
const MAX_TRACKED: usize = 100_000;

/// Failure times per key.
#[derive(Debug)]
pub struct SignInThrottle {
    max_failures: usize,
    window: chrono::Duration,
    failures: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

impl SignInThrottle {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            failures: Mutex::default(),
        }
    }

    /// How long to wait before any of `keys` may try again, if one has
    /// used up its failures.
    pub fn check(&self, keys: &[String], now: DateTime<Utc>) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter_map(|key| failures.get(key))
            .filter_map(|times| {
                let recent: Vec<_> = times.iter().filter(|t| now - **t < self.window).collect();
                (recent.len() >= self.max_failures).then(|| {
                    let frees_at = *recent[recent.len() - self.max_failures] + self.window;
                    (frees_at - now).to_std().unwrap_or_default()
                })
            })
            .max();
        match wait {
            Some(wait) => Err(wait.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    /// Counts a failure against each of `keys`.
    pub fn failed(&self, keys: &[String], now: DateTime<Utc>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, times| times.iter().any(|t| now - *t < self.window));
        }
        for key in keys {
            if !failures.contains_key(key) && failures.len() >= MAX_TRACKED {
                continue;
            }
            let times = failures.entry(key.clone()).or_default();
            while times.front().is_some_and(|t| now - *t >= self.window) {
                times.pop_front();
            }
            times.push_back(now);
            // Only the newest `max_failures` ever matter.
            while times.len() > self.max_failures {
                times.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_a_minute_then_wait_for_the_oldest_to_age() {
        let throttle = SignInThrottle::new(5, Duration::from_secs(60));
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |s: i64| start + chrono::Duration::seconds(s);
        let keys = ["user:al".to_owned(), "ip:10.0.0.1".to_owned()];
        for s in 0..5 {
            assert_eq!(throttle.check(&keys, at(s)), Ok(()));
            throttle.failed(&keys, at(s));
        }
        assert_eq!(throttle.check(&keys, at(10)), Err(Duration::from_secs(50)));
        // Another address for the same user is refused too, and the same
        // address for another user.
        assert!(throttle
            .check(&["user:al".into(), "ip:x".into()], at(10))
            .is_err());
        assert!(throttle
            .check(&["user:bo".into(), "ip:10.0.0.1".into()], at(10))
            .is_err());
        assert_eq!(throttle.check(&["user:bo".into()], at(10)), Ok(()));
        assert_eq!(throttle.check(&keys, at(60)), Ok(()));
    }
}
