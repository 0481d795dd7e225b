//! A token bucket per client: a burst is allowed, then a steady rate, so one
//! runaway or hostile agent cannot fill the store while the others go on.
//! The buckets are the store's ([`LimitStore`]): servers sharing a
//! database share them, and a client gets its budget once, not once per
//! server behind a balancer.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::limits::{Bucket, LimitStore};
use crate::store::StoreResult;

/// Budgets of one shape, each named by what it limits and for whom.
#[derive(Clone)]
pub struct RateLimiter {
    bucket: Bucket,
    limits: Arc<dyn LimitStore>,
}

impl RateLimiter {
    /// `burst` requests at once, then `per_second` a second, kept in
    /// `limits`.
    pub fn new(limits: Arc<dyn LimitStore>, per_second: u32, burst: u32) -> Self {
        Self {
            bucket: Bucket::new(burst, per_second),
            limits,
        }
    }

    /// Takes one unit of the budget of `what` (e.g. "ingest") for `key`;
    /// when it is empty, how long until the next request would be allowed.
    pub async fn check(
        &self,
        what: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), Duration>> {
        self.limits
            .take(&format!("{what}:{key}"), self.bucket, now)
            .await
    }
}
