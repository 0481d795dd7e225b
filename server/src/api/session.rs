//! `/api/session/`: signing in (with a password or a one-time link), who
//! is signed in, signing out.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use procmon_model::ErrorBody;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::JsonBody;
use crate::auth::{cleared_cookie, session_cookie, ClientAddress, CsrfChecked, SignedIn};
use crate::error::ApiError;
use crate::sign_in_throttle::SignInThrottle;
use crate::startup::AppState;
use crate::store::accounts::Role;

/// How to sign in: a name and password, or the token of a one-time link
/// (what follows `#signin=` in the link).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SignIn {
    Password {
        name: String,
        #[schema(value_type = String, format = Password)]
        password: SecretString,
    },
    Link {
        #[schema(value_type = String)]
        link_token: SecretString,
    },
}

/// Who is signed in, and until when.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub name: String,
    pub role: Role,
    /// When the session ends unless used before (sessions end after a
    /// while unused, and at the latest a fixed time after sign-in).
    pub expires_at: DateTime<Utc>,
    /// Whether the user has a password; a user signed in by the first
    /// link has none yet, and the page asks for one.
    pub has_password: bool,
}

impl From<&SignedIn> for SessionInfo {
    fn from(s: &SignedIn) -> Self {
        Self {
            name: s.user.name.clone(),
            role: s.user.role,
            expires_at: s.expires_at,
            has_password: s.user.password_hash.is_some(),
        }
    }
}

/// Signs in: answers who is signed in and sets the session cookie.
#[utoipa::path(
    post,
    path = "/api/session/",
    operation_id = "sign_in",
    tag = "session",
    request_body(content = SignIn, content_type = "application/json"),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    responses(
        (status = 201, description = "Signed in; the session cookie is set", body = SessionInfo,
            headers(("Set-Cookie" = String, description = "procmon_session, HttpOnly, SameSite=Strict"))),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Wrong user name or password (one answer for both), or a used or expired link", body = ErrorBody),
        (status = 403, description = "The X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The body is neither a name and password nor a link token", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins for this name or from this address; `Retry-After` says how many seconds to wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "The store cannot be used now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(user))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    _csrf: CsrfChecked,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<(StatusCode, HeaderMap, Json<SessionInfo>), ApiError> {
    let now = state.clock.now();
    let name = match &body {
        SignIn::Password { name, .. } => Some(name.as_str()),
        SignIn::Link { .. } => None,
    };
    let keys = SignInThrottle::keys(&client, name);
    state
        .sign_in_throttle
        .check(&keys, now)
        .await?
        .map_err(|retry_after| ApiError::SignInThrottled { retry_after })?;

    let (name, via_link) = match body {
        SignIn::Password { name, password } => {
            let user = state.accounts.find_user(&name).await?;
            let hash = user.as_ref().and_then(|u| u.password_hash.clone());
            // An unknown name is checked against a stand-in hash: it takes
            // as long, and answers the same, as a wrong password.
            if !crate::accounts::verify_password(password, hash).await? {
                state.sign_in_throttle.failed(&keys, now).await?;
                return Err(ApiError::WrongCredentials);
            }
            (name, false)
        }
        SignIn::Link { link_token } => {
            use secrecy::ExposeSecret;
            let hash = crate::accounts::token_hash(link_token.expose_secret().trim());
            match state.accounts.take_signin_link(&hash, now).await? {
                Some(name) => (name, true),
                None => {
                    state.sign_in_throttle.failed(&keys, now).await?;
                    return Err(ApiError::LinkRefused);
                }
            }
        }
    };
    tracing::Span::current().record("user", name.as_str());
    state.sign_in_throttle.signed_in(&name).await?;

    let (token, token_hash) = crate::accounts::new_token()?;
    state
        .accounts
        .create_session(&token_hash, &name, now, via_link)
        .await?;
    let session = state
        .accounts
        .session(&token_hash, now, state.session_lifetime)
        .await?
        .ok_or(ApiError::SessionEnded)?;
    let signed_in = SignedIn {
        expires_at: session.expires_at(state.session_lifetime),
        user: session.user,
        token_hash,
        via_link,
    };
    tracing::info!(via_link, "signed in");
    let mut headers = HeaderMap::new();
    headers.insert(
        SET_COOKIE,
        session_cookie(&token, state.session_lifetime.absolute, state.tls),
    );
    Ok((
        StatusCode::CREATED,
        headers,
        Json(SessionInfo::from(&signed_in)),
    ))
}

/// Who is signed in.
#[utoipa::path(
    get,
    path = "/api/session/",
    operation_id = "current_session",
    tag = "session",
    security(("session" = [])),
    responses(
        (status = 200, description = "The signed-in user and when the session ends", body = SessionInfo),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be used now", body = ErrorBody),
    ),
)]
pub async fn current(signed_in: SignedIn) -> Json<SessionInfo> {
    Json(SessionInfo::from(&signed_in))
}

/// Signs out: the session ends on the server and its cookie is dropped.
#[utoipa::path(
    delete,
    path = "/api/session/",
    operation_id = "sign_out",
    tag = "session",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "The X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 503, description = "The store cannot be used now", body = ErrorBody),
    ),
)]
pub async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    state.accounts.delete_session(&signed_in.token_hash).await?;
    let mut headers = HeaderMap::new();
    headers.insert(SET_COOKIE, cleared_cookie(state.tls));
    Ok((StatusCode::NO_CONTENT, headers))
}
