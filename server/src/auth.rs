//! Who may call what: agents send snapshots with their host's key; people
//! sign in and then carry a session cookie, which reads (any role), acts on
//! processes (operators and admins) and manages users, keys, rules and
//! channels (admins). Reading without a session happens only under
//! the explicit `no_login` setting, which the settings allow on loopback
//! only.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::agent_keys::KeyError;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::accounts::{Role, TokenHash, UserRecord};
use crate::store::keys::AgentKeyRecord;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "procmon_session";
/// The header every state-changing request made by a person must carry.
/// A page on another site cannot add it without a CORS preflight, which
/// this server never grants: so no other site can make a signed-in
/// browser change anything (on top of the cookie's `SameSite=Strict`).
pub const CSRF_HEADER: &str = "x-procmon-csrf";

/// Proof that the request carried an agent key in force: the key.
#[derive(Debug)]
pub struct AgentAuth(pub AgentKeyRecord);

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Missing, malformed, wrong and revoked keys all get one answer,
        // so a caller learns nothing about which keys exist.
        let token = bearer_of(parts).ok_or(ApiError::AgentKeyRefused)?;
        match state.agent_keys.check(token).await {
            Ok(record) => Ok(Self(record)),
            Err(KeyError::Store(e)) => Err(e.into()),
            Err(_) => Err(ApiError::AgentKeyRefused),
        }
    }
}

/// A signed-in person: the request carried the cookie of a live session
/// (and, when it changes something, the CSRF header).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserRecord,
    /// The hash of the session's token, to end it or keep it.
    pub token_hash: TokenHash,
    /// When the session ends unless used again.
    pub expires_at: DateTime<Utc>,
    /// Whether the session was opened with a one-time link.
    pub via_link: bool,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = session_token(parts).ok_or(ApiError::NotSignedIn)?;
        let token_hash = crate::accounts::token_hash(&token);
        let session = state
            .accounts
            .session(&token_hash, state.clock.now(), state.session_lifetime)
            .await?
            .ok_or(ApiError::SessionEnded)?;
        require_csrf_header(parts)?;
        Ok(Self {
            expires_at: session.expires_at(state.session_lifetime),
            user: session.user,
            token_hash,
            via_link: session.via_link,
        })
    }
}

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Admin(pub SignedIn);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if signed_in.user.role != Role::Admin {
            return Err(ApiError::Forbidden(format!(
                "only an admin may do this; {:?} is signed in as a {}",
                signed_in.user.name, signed_in.user.role
            )));
        }
        Ok(Self(signed_in))
    }
}

/// A signed-in person who may act on processes: an operator or an admin.
#[derive(Debug, Clone)]
pub struct Operator(pub SignedIn);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if !signed_in.user.role.may_act() {
            return Err(ApiError::Forbidden(format!(
                "only an operator or an admin may act on processes; {:?} is signed in as a {}",
                signed_in.user.name, signed_in.user.role
            )));
        }
        Ok(Self(signed_in))
    }
}

/// Proof that the request may read hosts and processes: a live session,
/// or the `no_login` setting.
#[derive(Debug)]
pub struct Reader;

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.no_login {
            return Ok(Self);
        }
        SignedIn::from_request_parts(parts, state)
            .await
            .map(|_| Self)
    }
}

/// Proof that a request which changes something carried the CSRF header
/// (for sign-in, which has no session yet).
#[derive(Debug)]
pub struct CsrfChecked;

impl FromRequestParts<AppState> for CsrfChecked {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        require_csrf_header(parts).map(|()| Self)
    }
}

/// The client's address as the server saw the connection ("unknown" when
/// served without a socket, as in `app(state).oneshot(..)` tests). Behind a
/// reverse proxy this is the proxy.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |ConnectInfo(a)| a.ip().to_string());
        Ok(Self(address))
    }
}

fn require_csrf_header(parts: &Parts) -> Result<(), ApiError> {
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || parts.headers.get(CSRF_HEADER).is_some_and(|v| v == "1") {
        Ok(())
    } else {
        Err(ApiError::CsrfHeaderMissing)
    }
}

/// The value of the session cookie, if the request has one.
fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

/// `Set-Cookie` for a new session. `HttpOnly`: scripts (an injected one
/// included) cannot read it; `SameSite=Strict`: other sites' pages never
/// send it; `Secure` when served over TLS.
pub fn session_cookie(
    token: &SecretString,
    max_age: std::time::Duration,
    tls: bool,
) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        token.expose_secret(),
        max_age.as_secs()
    );
    // Hex digits and fixed ASCII only.
    HeaderValue::try_from(value).expect("a valid header value")
}

/// `Set-Cookie` that makes the browser drop the session cookie.
pub fn cleared_cookie(tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::try_from(format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"
    ))
    .expect("a valid header value")
}

/// The bearer token of a request's `Authorization` header, if it has one.
pub fn bearer_of(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer_token)
}

/// The token of `Bearer <token>` (scheme case-insensitive, as RFC 7235 says).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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
    fn the_session_cookie_is_found_among_others() {
        let (mut parts, ()) = axum::http::Request::builder()
            .header(COOKIE, "a=1; procmon_session=abc ; b=2")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(session_token(&parts).as_deref(), Some("abc"));
        parts
            .headers
            .insert(COOKIE, HeaderValue::from_static("procmon_session="));
        assert_eq!(session_token(&parts), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_tls() {
        let token = SecretString::from("t");
        let plain = session_cookie(&token, std::time::Duration::from_secs(60), false);
        assert_eq!(
            plain,
            "procmon_session=t; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        let tls = session_cookie(&token, std::time::Duration::from_secs(60), true);
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
    }
}
