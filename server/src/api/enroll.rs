//! `POST /api/enroll/`: an agent exchanges the enrollment secret for its
//! host's own key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use procmon_model::limits::MAX_HOST_FIELD;
use procmon_model::{EnrollRequest, EnrollResponse, ErrorBody};
use secrecy::{ExposeSecret, SecretString};

use super::body::JsonBody;
use crate::agent_keys::KeyError;
use crate::error::ApiError;
use crate::startup::AppState;

/// Gives the host named in the request a key of its own, if the enrollment
/// secret is right. A host that enrolls again gets a new key, and its
/// previous keys stop working.
#[utoipa::path(
    post,
    path = "/api/enroll/",
    operation_id = "enroll_agent",
    tag = "agents",
    request_body(content = EnrollRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The host's new key (shown only now)", body = EnrollResponse),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "The enrollment secret is missing or wrong", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The host id is empty, too long, or has spaces around it", body = ErrorBody),
        (status = 429, description = "Too many enrollments from this client", body = ErrorBody),
        (status = 503, description = "The store cannot write now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(host))]
pub async fn enroll(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrollResponse>), ApiError> {
    let host_id = request.host_id.as_str();
    tracing::Span::current().record("host", host_id);
    if host_id.trim().is_empty() || host_id.trim() != host_id || host_id.len() > MAX_HOST_FIELD {
        return Err(ApiError::InvalidSnapshot(format!(
            "host_id {host_id:?} must be 1 to {MAX_HOST_FIELD} bytes with no spaces around it"
        )));
    }
    // Guessing the secret is throttled like sending: per claimed host.
    if let Err(retry_after) = state
        .ingest_limiter
        .check("enroll", host_id, state.clock.now())
        .await?
    {
        return Err(ApiError::RateLimited {
            key: host_id.to_owned(),
            retry_after,
        });
    }
    let secret = SecretString::from(request.enroll_secret);
    let new = match state
        .agent_keys
        .enroll(&secret, host_id, state.clock.now())
        .await
    {
        Ok(new) => new,
        Err(KeyError::Store(e)) => return Err(e.into()),
        Err(_) => return Err(ApiError::EnrollRefused),
    };
    tracing::info!(key = %new.record.id, hostname = %request.hostname, "agent enrolled");
    Ok((
        StatusCode::CREATED,
        Json(EnrollResponse {
            key_id: new.record.id,
            key: new.key.expose_secret().to_owned(),
            host_id: host_id.to_owned(),
            action_key: Some(state.action_signer.public_key().to_owned()),
        }),
    ))
}
