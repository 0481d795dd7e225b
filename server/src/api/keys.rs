//! `/api/keys/` and `/api/enroll-secret/`: agent keys and the enrollment
//! secret, for admins. A key or secret is answered once, when made: the
//! store keeps only hashes, so no later request can show it again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use procmon_model::limits::MAX_HOST_FIELD;
use procmon_model::{AgentKeyInfo, CreatedAgentKey, EnrollSecret, ErrorBody, NewAgentKey};
use secrecy::ExposeSecret;

use super::body::JsonBody;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::keys::AgentKeyRecord;
use crate::store::StoreError;

/// Longest label, in bytes.
pub const MAX_LABEL: usize = 256;

fn info(record: AgentKeyRecord) -> AgentKeyInfo {
    AgentKeyInfo {
        id: record.id,
        host_id: record.host_id,
        label: record.label,
        created_at: record.created_at,
        revoked_at: record.revoked_at,
    }
}

/// The store's own error when that is what failed (so a store that cannot
/// write answers 503, not 500), else an internal one.
fn store_or_internal(error: anyhow::Error) -> ApiError {
    match error.downcast::<StoreError>() {
        Ok(e) => e.into(),
        Err(e) => ApiError::Internal(e),
    }
}

/// Every agent key, newest first, revoked ones included; never a key.
#[utoipa::path(
    get,
    path = "/api/keys/",
    operation_id = "list_agent_keys",
    tag = "agents",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every agent key, newest first", body = Vec<AgentKeyInfo>),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Signed in, but not as an admin", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<AgentKeyInfo>>, ApiError> {
    let keys = state.agent_keys.store().keys().await?;
    Ok(Json(keys.into_iter().map(info).collect()))
}

/// Makes an agent key, bound to a host when one is named (else to the
/// host of its first snapshot), and answers it this once.
#[utoipa::path(
    post,
    path = "/api/keys/",
    operation_id = "create_agent_key",
    tag = "agents",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    request_body(content = NewAgentKey, content_type = "application/json"),
    responses(
        (status = 201, description = "Made; the key is shown only now", body = CreatedAgentKey),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The host id or label is not acceptable, or a field is unknown", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, host = ?body.host_id))]
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<NewAgentKey>,
) -> Result<(StatusCode, Json<CreatedAgentKey>), ApiError> {
    if let Some(host) = &body.host_id {
        if host.is_empty() || host.trim() != host || host.len() > MAX_HOST_FIELD {
            return Err(ApiError::InvalidAgentKey(format!(
                "host_id {host:?} must be 1 to {MAX_HOST_FIELD} bytes with no spaces around it \
                 (or left out: the key then belongs to the host of its first snapshot)"
            )));
        }
    }
    let label = match body.label.as_deref().map(str::trim) {
        Some(label) if label.len() > MAX_LABEL => {
            return Err(ApiError::InvalidAgentKey(format!(
                "the label is {} bytes long; at most {MAX_LABEL}",
                label.len()
            )))
        }
        Some(label) if !label.is_empty() => label.to_owned(),
        _ => format!("made by {}", admin.0.user.name),
    };
    let new = state
        .agent_keys
        .create(body.host_id.as_deref(), &label, state.clock.now())
        .await
        .map_err(store_or_internal)?;
    tracing::info!(key = %new.record.id, "agent key made");
    Ok((
        StatusCode::CREATED,
        Json(CreatedAgentKey {
            key: new.key.expose_secret().to_owned(),
            record: info(new.record),
        }),
    ))
}

/// Revokes an agent key: its agent is refused from then on (an enrolled
/// agent can enroll again while the enrollment secret works).
#[utoipa::path(
    delete,
    path = "/api/keys/{id}",
    operation_id = "revoke_agent_key",
    tag = "agents",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "The key's id, as `GET /api/keys/` lists it"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such key, or it is revoked already", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, key = %id))]
pub async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .agent_keys
        .store()
        .revoke_key(&id, state.clock.now())
        .await?
    {
        return Err(ApiError::UnknownAgentKey(id));
    }
    tracing::info!("agent key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a new enrollment secret and answers it this once; the previous
/// one stops working. Keys already handed out keep working.
#[utoipa::path(
    post,
    path = "/api/enroll-secret/",
    operation_id = "rotate_enroll_secret",
    tag = "agents",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    responses(
        (status = 201, description = "The new secret; it is shown only now", body = EnrollSecret),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name))]
pub async fn rotate_enroll_secret(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<(StatusCode, Json<EnrollSecret>), ApiError> {
    let secret = state
        .agent_keys
        .rotate_enroll_secret(state.clock.now())
        .await
        .map_err(store_or_internal)?;
    tracing::info!("enrollment secret rotated");
    Ok((
        StatusCode::CREATED,
        Json(EnrollSecret {
            enroll_secret: secret.expose_secret().to_owned(),
        }),
    ))
}
