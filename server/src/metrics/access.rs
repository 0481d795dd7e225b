//! Who may read `GET /metrics`: a scraper with the `metrics_token` setting
//! as its bearer token, or a signed-in admin (to look by hand). The
//! numbers say how busy the server is and how many hosts report; they are
//! not for viewers or the public.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::auth::{bearer_of, Admin};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::keys::Digest;

/// The `metrics_token` setting, kept only as its SHA-256 hash: compared
/// in constant time, as agent keys are, and never printed.
#[derive(Clone)]
pub struct MetricsToken(Digest);

impl MetricsToken {
    pub fn new(token: &SecretString) -> Self {
        Self(crate::agent_keys::hash(token.expose_secret()))
    }

    /// Whether `given` is the token. Both sides are hashed first, so the
    /// time taken says nothing about how much of it matched.
    pub fn matches(&self, given: &str) -> bool {
        crate::agent_keys::hash(given).ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken([REDACTED])")
    }
}

/// Proof that the request may read the metrics.
#[derive(Debug)]
pub struct Scraper;

impl FromRequestParts<AppState> for Scraper {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_of(parts);
        if let (Some(token), Some(expected)) = (token, &state.metrics_token) {
            if expected.matches(token) {
                return Ok(Self);
            }
        }
        match Admin::from_request_parts(parts, state).await {
            Ok(_) => Ok(Self),
            // The store could not say whether the session is an admin's: a
            // 503 to retry, not a refusal.
            Err(error @ (ApiError::StoreUnavailable(_) | ApiError::Internal(_))) => Err(error),
            // No session, an ended one, or a viewer's: one answer for all.
            Err(_) => Err(ApiError::MetricsRefused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_itself_matches() {
        let token = MetricsToken::new(&SecretString::from("s3cret-metrics-token"));
        assert!(token.matches("s3cret-metrics-token"));
        assert!(!token.matches("s3cret-metrics-toke"));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "MetricsToken([REDACTED])");
    }
}
