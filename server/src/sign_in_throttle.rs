//! Failed sign-ins, counted per user name and per client address: after
//! `max_failures` within `window` for either, sign-in is refused (429)
//! until the oldest of them leaves the window. Password guessing thus gets
//! a handful of tries a minute, spread over names or over addresses. The
//! failures are the store's ([`LimitStore`]): servers sharing a database
//! count them together, so a guesser gains nothing by spreading tries over
//! them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::limits::{LimitStore, Throttle};
use crate::store::StoreResult;

/// The throttle's rule, over the store that keeps the failures.
#[derive(Clone)]
pub struct SignInThrottle {
    throttle: Throttle,
    limits: Arc<dyn LimitStore>,
}

/// The key under which failures for the user `name` count.
fn user_key(name: &str) -> String {
    format!("sign-in:{}", name.to_lowercase())
}

impl SignInThrottle {
    pub fn new(limits: Arc<dyn LimitStore>, max_failures: usize, window: Duration) -> Self {
        Self {
            throttle: Throttle::new(max_failures, window),
            limits,
        }
    }

    /// The keys a sign-in from `client` counts against: its address, and
    /// the user name when one is given (in any case).
    pub fn keys(client: &str, name: Option<&str>) -> Vec<String> {
        let mut keys = vec![format!("sign-in-ip:{client}")];
        keys.extend(name.map(user_key));
        keys
    }

    /// How long to wait before any of `keys` may try again, if one has
    /// used up its failures.
    pub async fn check(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), Duration>> {
        let locked = self.limits.locked(keys, self.throttle, now).await?;
        Ok(locked.map_or(Ok(()), Err))
    }

    /// Counts a failure against each of `keys`.
    pub async fn failed(&self, keys: &[String], now: DateTime<Utc>) -> StoreResult<()> {
        self.limits.fail(keys, self.throttle, now).await
    }

    /// `name` signed in: their mistakes before are forgotten. Not the
    /// address's: signing in to one account must not reset the count of
    /// guesses at others from there.
    pub async fn signed_in(&self, name: &str) -> StoreResult<()> {
        self.limits.clear(&[user_key(name)]).await
    }
}
