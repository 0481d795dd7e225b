//! Which of the agent's servers it sends to. Several procmon servers may
//! share one database, any of them taking any request; the agent is given
//! their list and sends to one of them, the current one (the first at
//! start). When it is not usable (no answer, a failed TLS handshake, 502,
//! 503 or 504), the same delivery goes to the next at once, each server at
//! most once per delivery, and the agent stays on the one that answered.
//! While it is away from the first server, it tries that one again every
//! [`DEFAULT_RETURN_AFTER`], and stays there once it answers: the first is
//! the one the operator prefers.
//!
//! Pure bookkeeping: the caller sends ([`crate::send::HttpOutbox`]).

use std::time::{Duration, Instant};

use crate::SendError;

/// How long the agent stays away from its first server before it tries
/// that one again: short enough that it is back soon after an outage
/// ends, long enough that a server still down costs one failed try (a
/// connect timeout at worst) only now and then.
pub const DEFAULT_RETURN_AFTER: Duration = Duration::from_secs(5 * 60);

/// Why the server that gave `error` is not usable now, so that the same
/// delivery should go to another; `None` when the server answered (a
/// refused key, an invalid snapshot or a missing base is the same answer
/// from every server sharing the database).
pub fn unusable(error: &SendError) -> Option<String> {
    match error {
        SendError::Unreachable { .. }
        | SendError::UntrustedCertificate { .. }
        | SendError::CertificateNameMismatch { .. }
        | SendError::PlainHttpServer { .. } => Some(error.to_string()),
        SendError::Busy { status: 503, .. } => Some(error.to_string()),
        SendError::Rejected {
            status: 502..=504, ..
        } => Some(error.to_string()),
        _ => None,
    }
}

/// The list of servers and which one is current.
#[derive(Debug, Clone)]
pub struct Servers {
    urls: Vec<String>,
    current: usize,
    /// While not on the first server: when to try it again.
    return_at: Option<Instant>,
    return_after: Duration,
}

impl Servers {
    /// On the first of `urls` (which must not be empty); away from it, it
    /// is tried again every `return_after`.
    pub fn new(urls: Vec<String>, return_after: Duration) -> Servers {
        assert!(!urls.is_empty(), "an agent needs at least one server");
        Servers {
            urls,
            current: 0,
            return_at: None,
            return_after,
        }
    }

    /// The index of the server sent to now.
    pub fn current(&self) -> usize {
        self.current
    }

    /// The URL of server `index`.
    pub fn url(&self, index: usize) -> &str {
        &self.urls[index]
    }

    /// Every server's URL, first first.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The servers to try for one delivery, each once: the current one and
    /// those after it, round to those before; the first server ahead of
    /// them when it is time to try it again.
    pub fn order(&self, now: Instant) -> Vec<usize> {
        let count = self.urls.len();
        let mut order: Vec<usize> = (0..count).map(|i| (self.current + i) % count).collect();
        if self.return_at.is_some_and(|at| now >= at) {
            order.retain(|&i| i != 0);
            order.insert(0, 0);
        }
        order
    }

    /// Server `index` answered: it is current from now on. When that is a
    /// switch, one warning says from which server, to which, and `why` (the
    /// reason the one left was not usable, if it failed in this delivery).
    pub fn answered(&mut self, index: usize, now: Instant, why: Option<&str>) {
        if index == self.current {
            return;
        }
        let (from, to) = (
            self.url(self.current).to_owned(),
            self.url(index).to_owned(),
        );
        if index == 0 {
            tracing::warn!(
                from = %from,
                to = %to,
                "switching back to the first server: {}",
                why.map_or_else(|| "it answers again".to_owned(), |why| format!("the server left is not usable: {why}"))
            );
            self.return_at = None;
        } else {
            tracing::warn!(
                from = %from,
                to = %to,
                "switching to the next server: the server left is not usable: {}",
                why.unwrap_or("it did not answer")
            );
            if self.current == 0 {
                self.return_at = Some(now + self.return_after);
            }
        }
        self.current = index;
    }

    /// Server `index` was not usable in this delivery. The first one,
    /// tried while the agent is away from it, is tried again after
    /// another `return_after`.
    pub fn failed(&mut self, index: usize, now: Instant, why: &str) {
        tracing::debug!(server = %self.url(index), "not usable: {why}");
        if index == 0 && self.current != 0 {
            self.return_at = Some(now + self.return_after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three(return_after: Duration) -> Servers {
        Servers::new(
            vec![
                "http://a:1".into(),
                "http://b:1".into(),
                "http://c:1".into(),
            ],
            return_after,
        )
    }

    #[test]
    fn the_current_server_goes_first_then_the_rest_in_turn() {
        let mut servers = three(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(servers.order(now), [0, 1, 2]);
        servers.failed(0, now, "refused");
        servers.failed(1, now, "refused");
        servers.answered(2, now, Some("refused"));
        assert_eq!(servers.current(), 2);
        assert_eq!(servers.order(now), [2, 0, 1]);
    }

    #[test]
    fn away_from_the_first_it_is_tried_first_once_the_wait_is_over() {
        let wait = Duration::from_secs(60);
        let mut servers = three(wait);
        let start = Instant::now();
        servers.failed(0, start, "refused");
        servers.answered(1, start, Some("refused"));
        assert_eq!(servers.order(start + wait / 2), [1, 2, 0]);
        let due = start + wait;
        assert_eq!(servers.order(due), [0, 1, 2]);

        // Still down: the next try is a whole wait later.
        servers.failed(0, due, "refused");
        assert_eq!(servers.order(due + wait / 2), [1, 2, 0]);
        assert_eq!(servers.order(due + wait), [0, 1, 2]);

        servers.answered(0, due + wait, None);
        assert_eq!(servers.current(), 0);
        assert_eq!(servers.order(due + wait * 10), [0, 1, 2]);
    }

    #[test]
    fn answers_from_a_server_are_no_reason_to_leave_it() {
        let refused = SendError::KeyRefused;
        let base = SendError::BaseUnknown {
            message: "gone".into(),
        };
        let invalid = SendError::Rejected {
            status: 422,
            message: "bad".into(),
        };
        let slow_down = SendError::Busy {
            status: 429,
            message: "slow".into(),
            retry_after: None,
        };
        for error in [refused, base, invalid, slow_down] {
            assert_eq!(unusable(&error), None, "{error:?}");
        }
        let down = SendError::Unreachable {
            url: "http://a:1/api/processes/".into(),
            cause: "Connection refused".into(),
        };
        let store = SendError::Busy {
            status: 503,
            message: "the store is unavailable".into(),
            retry_after: Some("5".into()),
        };
        let gateway = SendError::Rejected {
            status: 502,
            message: "Bad Gateway".into(),
        };
        for error in [down, store, gateway] {
            assert!(
                unusable(&error).is_some_and(|why| why == error.to_string()),
                "{error:?}"
            );
        }
    }
}
