//! `POST /api/processes/`: an agent delivers a snapshot.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use procmon_model::{ErrorBody, IngestResponse, Snapshot};

use super::body::JsonBody;
use crate::agent_keys::KeyError;
use crate::auth::AgentAuth;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::IngestOutcome;

/// Stores a snapshot. A snapshot id that was stored before is not stored
/// again (`stored: false`), so agents may retry freely. The body may be
/// compressed (`Content-Encoding: zstd` or `gzip`); the size limit applies
/// to it inflated.
#[utoipa::path(
    post,
    path = "/api/processes/",
    operation_id = "ingest_snapshot",
    tag = "processes",
    request_body(content = Snapshot, content_type = "application/json"),
    security(("agent_key" = [])),
    responses(
        (status = 201, description = "Accepted: stored now, or stored before (`stored` says which)", body = IngestResponse),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Agent key missing, wrong or revoked", body = ErrorBody),
        (status = 403, description = "The agent key belongs to another host", body = ErrorBody),
        (status = 409, description = "The snapshot id was already used by another host", body = ErrorBody),
        (status = 413, description = "The body is larger than the server's limit (inflated, when compressed)", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json, or its Content-Encoding is not zstd, gzip or none", body = ErrorBody),
        (status = 408, description = "The body stopped arriving", body = ErrorBody),
        (status = 422, description = "The JSON is not a valid snapshot (missing field, wrong type, unknown version, too long, ...)", body = ErrorBody),
        (status = 429, description = "This host sent too many snapshots; `Retry-After` says how many seconds to wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before sending again"))),
        (status = 503, description = "Nothing was stored: the store cannot write now (disk full, database locked, ...), the server is at its connection limit, or it did not answer in time; retry later", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(host, snapshot, processes))]
pub async fn ingest(
    State(state): State<AppState>,
    agent: AgentAuth,
    JsonBody(snapshot): JsonBody<Snapshot>,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    let span = tracing::Span::current();
    span.record("host", snapshot.host.id.as_str());
    span.record("snapshot", snapshot.id.to_string());
    span.record("processes", snapshot.processes.len());

    let key = rate_key(&agent);
    if let Err(retry_after) = state.ingest_limiter.check(key, std::time::Instant::now()) {
        return Err(ApiError::RateLimited {
            key: snapshot.host.id.clone(),
            retry_after,
        });
    }

    super::validate::validate(&snapshot).map_err(ApiError::InvalidSnapshot)?;
    match state
        .agent_keys
        .authorize_host(&agent.0, &snapshot.host.id)
        .await
    {
        Ok(()) => {}
        Err(KeyError::OtherHost(key_host)) => {
            return Err(ApiError::KeyForOtherHost {
                key_host,
                sent: snapshot.host.id.clone(),
            })
        }
        Err(KeyError::Refused) => return Err(ApiError::AgentKeyRefused),
        Err(KeyError::Store(e)) => return Err(e.into()),
    }
    let started = std::time::Instant::now();
    let snapshot_id = snapshot.id;
    // Held until the snapshot is stored and committed, so viewers and the
    // next change batch see the host's snapshots in the order stored.
    let host = state.live.host(&snapshot.host.id);
    let mut live = host.lock().await;
    let stored = match state
        .store
        .ingest(snapshot.clone(), state.clock.now())
        .await?
    {
        IngestOutcome::Stored => {
            live.commit(snapshot);
            true
        }
        IngestOutcome::AlreadyStored => false,
        IngestOutcome::IdTakenByOtherHost => return Err(ApiError::SnapshotIdConflict(snapshot_id)),
    };
    tracing::debug!(
        stored,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "snapshot received"
    );
    Ok((
        StatusCode::CREATED,
        Json(IngestResponse {
            snapshot_id,
            stored,
        }),
    ))
}

/// Whose budget a snapshot counts against: its key's, so a client cannot
/// spread its load over made-up host ids.
fn rate_key(agent: &AgentAuth) -> &str {
    &agent.0.id
}
