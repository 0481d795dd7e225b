//! When to send a message again: what a send's outcome means ([`classify`]
//! into a [`Verdict`]) and how long to wait between tries ([`Backoff`]).
//! Pure: the caller sleeps, sends and logs.

use std::time::{Duration, SystemTime};

/// The first wait after a failure is between this and twice it.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// No backoff wait is longer.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A `Retry-After` longer than this is taken as this, so a server clock far
/// off (HTTP-date form) or a confused proxy cannot stall the agent for
/// hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

/// How a send ended, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The server answered with this status (`StatusCode::as_u16`) and,
    /// maybe, a `Retry-After` header.
    Answered {
        status: u16,
        retry_after: Option<&'a str>,
    },
    /// No answer: connection refused or reset, timeout, TLS failure.
    NoAnswer,
}

/// What to do with the message after a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The server has it: acknowledge it and reset the backoff.
    Sent,
    /// The server asked to wait this long (its `Retry-After`), then send
    /// the same message again.
    RetryAfter(Duration),
    /// Wait [`Backoff::next_delay`], then send the same message again.
    Backoff,
    /// Refused for a reason someone must fix on the agent or the server
    /// (its key): keep it, log the reason, which says what to do, and try
    /// again after [`Backoff::next_delay`], so that nothing is lost
    /// meanwhile (within the spool's size).
    Hold(HoldReason),
    /// Sending it again would be refused again: drop it and log the
    /// reason, which says what to do.
    Drop(DropReason),
}

/// Why the server refuses messages until someone acts; each says what to
/// do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HoldReason {
    #[error(
        "the agent key was refused (401): enroll again (set enroll_secret to the server's \
         enrollment secret) or set api_key to a new key made with `procmon-server keys create`; \
         snapshots are kept in the spool until then"
    )]
    KeyRefused,
    #[error(
        "the agent key belongs to another host (403): each host needs its own key; enroll this \
         one, or make it a key with `procmon-server keys create --host <this host>`; snapshots \
         are kept in the spool until then"
    )]
    KeyForOtherHost,
}

impl HoldReason {
    /// Logs the refusal (at each try, which backs off to once a minute).
    pub fn log(&self, server_says: Option<&str>) {
        tracing::warn!(server_says = server_says.unwrap_or(""), "{self}");
    }
}

/// Why the server will never take a message; each says what to do about
/// it. The server's own message (its error body) is worth logging beside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    #[error(
        "the server's body limit is smaller than this snapshot (413): raise body_limit on the \
         server"
    )]
    TooLarge,
    #[error(
        "the server refused the snapshot as invalid ({0}): upgrade the agent or the server so \
         that their versions match"
    )]
    Invalid(u16),
    #[error(
        "the server already has a snapshot with this id from another host (409): two agents \
         share a spool or a copied disk; give each machine its own agent directory"
    )]
    IdConflict,
    #[error("the server refused the snapshot ({0}) and would refuse it again")]
    Refused(u16),
}

impl DropReason {
    /// Logs that the message `id` was dropped, why, and what to do;
    /// `server_says` is the server's own message, if it sent one.
    pub fn log(&self, id: uuid::Uuid, server_says: Option<&str>) {
        tracing::warn!(
            message_id = %id,
            server_says = server_says.unwrap_or(""),
            "a snapshot was dropped unsent: {self}"
        );
    }
}

/// What `outcome` means for the message. `now` reads a `Retry-After` given
/// as an HTTP date.
///
/// - 2xx: sent.
/// - 429 and 503: after the server's `Retry-After` (seconds or HTTP date),
///   else backoff.
/// - 401 (key refused) and 403 (key of another host): held, with backoff,
///   and the reason logged: the key must be fixed, and what was collected
///   meanwhile is still worth sending then.
/// - 400, 415 and 422 (not a snapshot this server reads), 409 (id taken by
///   another host) and 413 (too large): dropped, since the same message
///   would be refused again.
/// - 404, 405 and 421 (server_url wrong, or a proxy before a server being
///   restarted), 408 and every other 5xx, and no answer at all: backoff, so
///   nothing is lost while someone fixes it.
/// - Any other 4xx: dropped; anything else: backoff.
pub fn classify(outcome: Outcome<'_>, now: SystemTime) -> Verdict {
    let (status, retry_after) = match outcome {
        Outcome::NoAnswer => return Verdict::Backoff,
        Outcome::Answered {
            status,
            retry_after,
        } => (status, retry_after),
    };
    match status {
        200..=299 => Verdict::Sent,
        429 | 503 => retry_after
            .and_then(|value| parse_retry_after(value, now))
            .map_or(Verdict::Backoff, Verdict::RetryAfter),
        401 => Verdict::Hold(HoldReason::KeyRefused),
        403 => Verdict::Hold(HoldReason::KeyForOtherHost),
        409 => Verdict::Drop(DropReason::IdConflict),
        413 => Verdict::Drop(DropReason::TooLarge),
        400 | 415 | 422 => Verdict::Drop(DropReason::Invalid(status)),
        404 | 405 | 408 | 421 => Verdict::Backoff,
        400..=499 => Verdict::Drop(DropReason::Refused(status)),
        _ => Verdict::Backoff,
    }
}

/// A `Retry-After` value: whole seconds, or an HTTP date (IMF-fixdate,
/// e.g. `Wed, 21 Oct 2015 07:28:00 GMT`). Kept between 1 s (a date in the
/// past would retry at once, in a loop) and [`MAX_RETRY_AFTER`]. `None`
/// when it is neither form.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "very long".
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let at: SystemTime = chrono::DateTime::parse_from_rfc2822(value).ok()?.into();
        at.duration_since(now).unwrap_or_default()
    };
    Some(wait.clamp(Duration::from_secs(1), MAX_RETRY_AFTER))
}

/// A source of random numbers for the jitter; tests give a fixed one.
pub trait Random: Send {
    fn next_u64(&mut self) -> u64;
}

impl<F: FnMut() -> u64 + Send> Random for F {
    fn next_u64(&mut self) -> u64 {
        self()
    }
}

/// A small xorshift generator: jitter needs spread, not secrecy.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded from the clock, so that agents restarted together (after a
    /// server outage, say) do not retry in step.
    pub fn from_time() -> XorShift {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        XorShift::new(nanos ^ u64::from(std::process::id()).rotate_left(32))
    }

    /// Seeded with `seed` (any value; zero is replaced).
    pub fn new(seed: u64) -> XorShift {
        // splitmix64 spreads a seed of few bits over all of them.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 1 } else { z })
    }
}

impl Random for XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Exponential backoff with "equal jitter": the n-th wait (from 0) is
/// drawn evenly from [c/2, c], where c = min(2 s × 2ⁿ, 60 s). So the first
/// wait is 1–2 s, then 2–4 s, ..., and never more than [`MAX_DELAY`]. Half
/// of each wait is fixed so that a retry never comes at once (as full
/// jitter's could); the other half spreads agents out.
#[derive(Debug, Clone)]
pub struct Backoff<R = XorShift> {
    attempt: u32,
    random: R,
}

impl Backoff<XorShift> {
    /// A backoff with a clock-seeded random source.
    pub fn new() -> Backoff<XorShift> {
        Backoff::with_random(XorShift::from_time())
    }
}

impl Default for Backoff<XorShift> {
    fn default() -> Self {
        Backoff::new()
    }
}

impl<R: Random> Backoff<R> {
    /// A backoff drawing its jitter from `random`.
    pub fn with_random(random: R) -> Backoff<R> {
        Backoff { attempt: 0, random }
    }

    /// How long to wait before the next try; each call waits longer, up to
    /// [`MAX_DELAY`].
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = (2 * FIRST_DELAY)
            .saturating_mul(1 << self.attempt.min(16))
            .min(MAX_DELAY);
        // Past the cap, counting further changes nothing.
        if ceiling < MAX_DELAY {
            self.attempt += 1;
        }
        let half = ceiling.as_nanos() as u64 / 2;
        // Scales a random u64 to 0..=half without modulo bias worth naming.
        let jitter = ((u128::from(self.random.next_u64()) * u128::from(half + 1)) >> 64) as u64;
        Duration::from_nanos(half + jitter)
    }

    /// Starts again from the shortest wait, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Verdict {
        classify(
            Outcome::Answered {
                status,
                retry_after: None,
            },
            SystemTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn success_is_sent_and_refusals_that_would_repeat_are_dropped() {
        assert_eq!(answered(200), Verdict::Sent);
        assert_eq!(answered(201), Verdict::Sent);
        assert_eq!(answered(401), Verdict::Hold(HoldReason::KeyRefused));
        assert_eq!(answered(403), Verdict::Hold(HoldReason::KeyForOtherHost));
        assert_eq!(answered(409), Verdict::Drop(DropReason::IdConflict));
        assert_eq!(answered(413), Verdict::Drop(DropReason::TooLarge));
        for status in [400, 415, 422] {
            assert_eq!(answered(status), Verdict::Drop(DropReason::Invalid(status)));
        }
        assert_eq!(answered(418), Verdict::Drop(DropReason::Refused(418)));
    }

    #[test]
    fn server_trouble_and_no_answer_are_retried_with_backoff() {
        for status in [500, 502, 503, 504, 429, 404, 405, 408, 421, 302] {
            assert_eq!(answered(status), Verdict::Backoff, "{status}");
        }
        assert_eq!(
            classify(Outcome::NoAnswer, SystemTime::now()),
            Verdict::Backoff
        );
    }

    #[test]
    fn retry_after_is_obeyed_for_429_and_503_only() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_000);
        let with = |status, value| {
            classify(
                Outcome::Answered {
                    status,
                    retry_after: Some(value),
                },
                now,
            )
        };
        assert_eq!(with(429, "7"), Verdict::RetryAfter(Duration::from_secs(7)));
        assert_eq!(
            with(503, " 1 "),
            Verdict::RetryAfter(Duration::from_secs(1))
        );
        // 2015-10-21 07:28:00 UTC is 480 s after `now`.
        assert_eq!(
            with(503, "Wed, 21 Oct 2015 07:28:00 GMT"),
            Verdict::RetryAfter(Duration::from_secs(480))
        );
        assert_eq!(with(429, "soon"), Verdict::Backoff);
        assert_eq!(with(429, "-3"), Verdict::Backoff);
        assert_eq!(with(500, "7"), Verdict::Backoff);
        assert_eq!(with(401, "7"), Verdict::Hold(HoldReason::KeyRefused));
    }

    #[test]
    fn retry_after_is_kept_between_one_second_and_the_cap() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_000);
        assert_eq!(parse_retry_after("0", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::from_secs(1)),
            "a date in the past"
        );
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn drop_and_hold_reasons_say_what_to_do() {
        assert!(HoldReason::KeyRefused.to_string().contains("enroll again"));
        assert!(HoldReason::KeyForOtherHost
            .to_string()
            .contains("keys create --host"));
        assert!(DropReason::TooLarge
            .to_string()
            .contains("raise body_limit"));
        assert!(DropReason::Invalid(422)
            .to_string()
            .contains("upgrade the agent or the server"));
    }

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute_with_equal_jitter() {
        let lowest: Vec<_> = {
            let mut backoff = Backoff::with_random(|| 0);
            (0..8).map(|_| backoff.next_delay().as_secs()).collect()
        };
        assert_eq!(lowest, [1, 2, 4, 8, 16, 30, 30, 30]);
        let highest: Vec<_> = {
            let mut backoff = Backoff::with_random(|| u64::MAX);
            (0..8)
                .map(|_| backoff.next_delay().as_secs_f64().round() as u64)
                .collect()
        };
        assert_eq!(highest, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn backoff_stays_in_bounds_and_resets_after_a_success() {
        let mut backoff = Backoff::with_random(XorShift::new(7));
        for _ in 0..1000 {
            let delay = backoff.next_delay();
            assert!(delay >= FIRST_DELAY && delay <= MAX_DELAY, "{delay:?}");
        }
        backoff.reset();
        let first = backoff.next_delay();
        assert!(
            first >= FIRST_DELAY && first <= 2 * FIRST_DELAY,
            "{first:?}"
        );
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let mut backoff = Backoff::with_random(XorShift::from_time());
        let waits: std::collections::HashSet<_> = (0..20)
            .map(|_| {
                backoff.reset();
                backoff.next_delay()
            })
            .collect();
        assert!(waits.len() > 10, "{waits:?}");
    }
}
