//! Who may call what: agents need the agent key to send snapshots; readers
//! need the viewer key, but only when the server listens beyond loopback.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, KeyKind};
use crate::startup::AppState;

/// Proof that the request carried the agent key.
#[derive(Debug)]
pub struct AgentAuth;

/// Proof that the request may read processes: it carried the viewer key, or
/// the server listens on loopback only.
#[derive(Debug)]
pub struct ViewerAuth;

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check(parts, &state.keys.agent, KeyKind::Agent).map(|()| Self)
    }
}

impl FromRequestParts<AppState> for ViewerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.viewer_key_required {
            return Ok(Self);
        }
        check(parts, &state.keys.viewer, KeyKind::Viewer).map(|()| Self)
    }
}

fn check(parts: &Parts, expected: &SecretString, kind: KeyKind) -> Result<(), ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::MissingKey(kind))?;
    let given = header
        .to_str()
        .ok()
        .and_then(bearer_token)
        .ok_or(ApiError::MalformedAuthorization)?;
    if keys_match(given, expected.expose_secret()) {
        Ok(())
    } else {
        Err(ApiError::WrongKey(kind))
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, as RFC 7235 says).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares in time that does not depend on where the keys differ, so the
/// key cannot be guessed byte by byte from response times.
fn keys_match(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn keys_compare_whole() {
        assert!(keys_match("secret", "secret"));
        assert!(!keys_match("secre", "secret"));
        assert!(!keys_match("secretx", "secret"));
        assert!(!keys_match("", "secret"));
    }
}
