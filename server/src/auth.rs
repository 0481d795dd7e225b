//! Who may call what: agents need their host's key to send snapshots;
//! readers need the viewer key, but only when the server listens beyond
//! loopback.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::agent_keys::KeyError;
use crate::error::{ApiError, KeyKind};
use crate::startup::AppState;
use crate::store::keys::AgentKeyRecord;

/// Proof that the request carried an agent key in force: the key.
#[derive(Debug)]
pub struct AgentAuth(pub AgentKeyRecord);

/// Proof that the request may read processes: it carried the viewer key, or
/// the server listens on loopback only.
#[derive(Debug)]
pub struct ViewerAuth;

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Missing, malformed, wrong and revoked keys all get one answer,
        // so a caller learns nothing about which keys exist.
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(bearer_token)
            .ok_or(ApiError::AgentKeyRefused)?;
        match state.agent_keys.check(token).await {
            Ok(record) => Ok(Self(record)),
            Err(KeyError::Store(e)) => Err(e.into()),
            Err(_) => Err(ApiError::AgentKeyRefused),
        }
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
pub fn bearer_token(header: &str) -> Option<&str> {
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
