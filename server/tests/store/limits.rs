//! The behaviours every `LimitStore` must have: budgets (token buckets)
//! and the sign-in throttle, with the caller's clock. Each test gets a
//! fresh, empty store and speaks to it only through the trait.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use procmon_server::store::limits::{Bucket, LimitStore, Throttle};

/// A fresh limit store, and whatever must live as long as it.
pub struct Fresh {
    pub limits: Arc<dyn LimitStore>,
    pub _dir: tempfile::TempDir,
}

/// One `#[tokio::test]` per behaviour below, for the backend `$fresh`.
#[macro_export]
macro_rules! limit_tests {
    ($fresh:ident) => {
        $crate::limit_tests!(@each $fresh,
            a_budget_allows_its_capacity_then_says_when_to_retry,
            a_budget_refills_by_the_callers_clock_up_to_its_capacity,
            a_clock_that_went_back_refills_nothing,
            budgets_of_different_names_are_independent,
            many_takes_in_a_row_are_counted_exactly,
            failures_lock_a_key_until_the_oldest_leaves_the_window,
            a_lock_of_either_key_refuses,
            old_failures_do_not_count,
            clearing_forgets_only_the_keys_cleared,
        );
    };
    (@each $fresh:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                // None: the backend is not there to test (and it said so).
                if let Some(fresh) = $fresh().await {
                    $crate::limits::$name(fresh).await;
                }
            }
        )*
    };
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T23:52:00Z")
        .unwrap()
        .to_utc()
}

fn millis(ms: i64) -> DateTime<Utc> {
    start() + Duration::milliseconds(ms)
}

fn seconds(s: i64) -> DateTime<Utc> {
    start() + Duration::seconds(s)
}

/// Three at once, then two a second.
const SMALL: Bucket = Bucket {
    capacity: 3.0,
    per_second: 2.0,
};

/// Five failures a minute.
fn five_a_minute() -> Throttle {
    Throttle::new(5, StdDuration::from_secs(60))
}

async fn take(limits: &dyn LimitStore, name: &str, at: DateTime<Utc>) -> Result<(), StdDuration> {
    limits
        .take(name, SMALL, at)
        .await
        .expect("the store answers")
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn locked(limits: &dyn LimitStore, names: &[&str], at: DateTime<Utc>) -> Option<StdDuration> {
    limits
        .locked(&keys(names), five_a_minute(), at)
        .await
        .expect("the store answers")
}

async fn fail(limits: &dyn LimitStore, names: &[&str], at: DateTime<Utc>) {
    limits
        .fail(&keys(names), five_a_minute(), at)
        .await
        .expect("the failure is counted");
}

pub async fn a_budget_allows_its_capacity_then_says_when_to_retry(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    for i in 0..3 {
        assert_eq!(take(l, "ingest:a", start()).await, Ok(()), "take {i}");
    }
    // Empty: the next unit is half a second away at two a second.
    assert_eq!(
        take(l, "ingest:a", start()).await,
        Err(StdDuration::from_millis(500))
    );
    // A quarter of a second on, half a unit is back: a quarter to go.
    assert_eq!(
        take(l, "ingest:a", millis(250)).await,
        Err(StdDuration::from_millis(250))
    );
}

pub async fn a_budget_refills_by_the_callers_clock_up_to_its_capacity(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    for _ in 0..3 {
        take(l, "ingest:a", start()).await.unwrap();
    }
    // Half a second later one unit is there, and only one.
    assert_eq!(take(l, "ingest:a", millis(500)).await, Ok(()));
    assert!(take(l, "ingest:a", millis(500)).await.is_err());
    // However long the wait, never more than the capacity.
    let later = seconds(3600);
    for i in 0..3 {
        assert_eq!(take(l, "ingest:a", later).await, Ok(()), "take {i}");
    }
    assert!(take(l, "ingest:a", later).await.is_err());
}

pub async fn a_clock_that_went_back_refills_nothing(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    for _ in 0..3 {
        take(l, "ingest:a", seconds(10)).await.unwrap();
    }
    // A caller whose clock is behind gets no unit back, and moves the
    // budget's time back for nobody.
    assert!(take(l, "ingest:a", seconds(0)).await.is_err());
    assert!(take(l, "ingest:a", millis(10_250)).await.is_err());
    assert_eq!(take(l, "ingest:a", millis(10_500)).await, Ok(()));
}

pub async fn budgets_of_different_names_are_independent(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    for _ in 0..3 {
        take(l, "ingest:a", start()).await.unwrap();
    }
    assert!(take(l, "ingest:a", start()).await.is_err());
    for name in ["ingest:b", "enroll:a"] {
        for i in 0..3 {
            assert_eq!(take(l, name, start()).await, Ok(()), "{name} take {i}");
        }
    }
    // A budget of another shape under another name keeps its own.
    let big = Bucket::new(10, 1);
    for i in 0..10 {
        assert_eq!(
            l.take("ingest:c", big, start()).await.unwrap(),
            Ok(()),
            "take {i}"
        );
    }
    assert_eq!(
        l.take("ingest:c", big, start()).await.unwrap(),
        Err(StdDuration::from_secs(1))
    );
}

/// Also the cost of a take, printed (the agents' hot path): not asserted,
/// as it depends on the machine.
pub async fn many_takes_in_a_row_are_counted_exactly(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    let bucket = Bucket::new(2_000, 1);
    let started = Instant::now();
    for i in 0..2_000 {
        assert_eq!(
            l.take("ingest:busy", bucket, start()).await.unwrap(),
            Ok(()),
            "take {i}"
        );
    }
    let each = started.elapsed() / 2_000;
    eprintln!("one take of a budget: {each:?}");
    assert!(l
        .take("ingest:busy", bucket, start())
        .await
        .unwrap()
        .is_err());
}

pub async fn failures_lock_a_key_until_the_oldest_leaves_the_window(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    let both = ["sign-in:al", "sign-in-ip:10.0.0.1"];
    for s in 0..5 {
        assert_eq!(
            locked(l, &both, seconds(s)).await,
            None,
            "before failure {s}"
        );
        fail(l, &both, seconds(s)).await;
    }
    // The first failure, at 0 s, leaves the window at 60 s.
    assert_eq!(
        locked(l, &both, seconds(10)).await,
        Some(StdDuration::from_secs(50))
    );
    assert_eq!(
        locked(l, &both, seconds(59)).await,
        Some(StdDuration::from_secs(1))
    );
    // Never less than a second while locked.
    assert_eq!(
        locked(l, &both, millis(59_900)).await,
        Some(StdDuration::from_secs(1))
    );
    assert_eq!(locked(l, &both, seconds(60)).await, None);
    // A sixth failure then locks again, until the second (at 1 s) ages.
    fail(l, &both, seconds(60)).await;
    assert_eq!(
        locked(l, &both, seconds(60)).await,
        Some(StdDuration::from_secs(1))
    );
    assert_eq!(locked(l, &both, seconds(61)).await, None);
}

pub async fn a_lock_of_either_key_refuses(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    for s in 0..5 {
        fail(l, &["sign-in:al", "sign-in-ip:10.0.0.1"], seconds(s)).await;
    }
    // The same user from another address, the same address for another
    // user: refused; another user from another address is not.
    assert!(locked(l, &["sign-in:al", "sign-in-ip:x"], seconds(10))
        .await
        .is_some());
    assert!(
        locked(l, &["sign-in:bo", "sign-in-ip:10.0.0.1"], seconds(10))
            .await
            .is_some()
    );
    assert_eq!(
        locked(l, &["sign-in:bo", "sign-in-ip:x"], seconds(10)).await,
        None
    );
    // Four failures of a key are not enough.
    for s in 0..4 {
        fail(l, &["sign-in:cy"], seconds(s)).await;
    }
    assert_eq!(locked(l, &["sign-in:cy"], seconds(10)).await, None);
}

pub async fn old_failures_do_not_count(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    // Two a minute ago or more, three now: not five within the window.
    fail(l, &["sign-in:al"], seconds(0)).await;
    fail(l, &["sign-in:al"], seconds(30)).await;
    for s in 90..93 {
        fail(l, &["sign-in:al"], seconds(s)).await;
    }
    assert_eq!(locked(l, &["sign-in:al"], seconds(93)).await, None);
    // Two more within the minute lock it, until 90 s + 60 s.
    fail(l, &["sign-in:al"], seconds(100)).await;
    fail(l, &["sign-in:al"], seconds(101)).await;
    assert_eq!(
        locked(l, &["sign-in:al"], seconds(110)).await,
        Some(StdDuration::from_secs(40))
    );
}

pub async fn clearing_forgets_only_the_keys_cleared(fresh: Fresh) {
    let l = fresh.limits.as_ref();
    for s in 0..5 {
        fail(l, &["sign-in:al", "sign-in-ip:10.0.0.1"], seconds(s)).await;
    }
    l.clear(&keys(&["sign-in:al"])).await.expect("cleared");
    assert_eq!(locked(l, &["sign-in:al"], seconds(10)).await, None);
    assert_eq!(
        locked(l, &["sign-in-ip:10.0.0.1"], seconds(10)).await,
        Some(StdDuration::from_secs(50))
    );
    // Counting starts again from nothing.
    for s in 10..14 {
        fail(l, &["sign-in:al"], seconds(s)).await;
    }
    assert_eq!(locked(l, &["sign-in:al"], seconds(14)).await, None);
    // Clearing keys with no failures is no error.
    l.clear(&keys(&["sign-in:nobody"])).await.expect("cleared");
}
