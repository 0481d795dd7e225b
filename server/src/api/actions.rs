//! `/api/actions/…`: acting on a process from the page. Operators and
//! admins ask (`POST`), anyone who reads sees the audit log; the host's
//! agent fetches what waits for it (`GET /api/agent/actions/`, with its
//! key) and reports how it went. See `procmon_model::actions` for the
//! whole path and why each step is there.
//!
//! The fetch and the report are also what the server's own agent calls in
//! process ([`claim_for`], [`report_for`]): one path, whoever asks.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use procmon_model::actions::{
    ActionEntry, ActionReport, ActionRequest, ActionResultCode, SignedAction, MAX_REASON_CHARS,
    MAX_REPORT_CHARS,
};
use procmon_model::{ErrorBody, ProcessSample};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::body::JsonBody;
use crate::actions::sign::Unsigned;
use crate::auth::{AgentAuth, Operator, Reader};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::actions::{NewAction, ResultRecorded};

/// Entries listed by default, and at most.
const LISTED: usize = 100;
const MAX_LISTED: usize = 1000;
/// Actions handed to an agent in one fetch, at most; the rest wait for
/// the next (its next ingest answer says they are there).
const MAX_CLAIMED: usize = 100;

/// Which entries `GET /api/actions/` lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    /// Only this host's (its id).
    pub host: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Asks the host's agent to act on one of its processes. The process is
/// named by its pid and its start time, both as the host's newest snapshot
/// has them: if that snapshot has no process with both, nothing is asked
/// (409). The action is signed, good for a minute, and fetched by the
/// agent after its next delivery; `GET /api/actions/{id}` follows it.
#[utoipa::path(
    post,
    path = "/api/actions/",
    operation_id = "create_action",
    tag = "actions",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    request_body(content = ActionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Asked: the audit entry, pending", body = ActionEntry),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Signed in as a viewer (only operators and admins act), or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 409, description = "The host's newest snapshot has no process with this pid and start time (the message says which: no such pid, or the pid belongs to a process started at another time)", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The reason is empty or longer than 500 characters, or a field is missing or of the wrong type", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %operator.0.user.name, host = %request.host_id, pid = request.pid, kind = %request.kind))]
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    JsonBody(request): JsonBody<ActionRequest>,
) -> Result<(StatusCode, Json<ActionEntry>), ApiError> {
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::InvalidAction(
            "the reason is empty: say why, in 1 to 500 characters (it is kept in the audit log)"
                .into(),
        ));
    }
    let length = reason.chars().count();
    if length > MAX_REASON_CHARS {
        return Err(ApiError::InvalidAction(format!(
            "the reason is {length} characters long; at most {MAX_REASON_CHARS}"
        )));
    }
    let host = state
        .store
        .host(&request.host_id)
        .await?
        .ok_or_else(|| ApiError::UnknownHost(request.host_id.clone()))?;
    let target = target(&state, &request, host.newest_taken_at).await?;
    let now = state.clock.now();
    let action = state.action_signer.sign(
        Unsigned {
            id: Uuid::new_v4(),
            host_id: request.host_id.clone(),
            pid: request.pid,
            started_at: request.started_at,
            kind: request.kind,
        },
        now,
    )?;
    let new = NewAction {
        action,
        requested_by: operator.0.user.name.clone(),
        requested_at: now,
        hostname: host.info.hostname,
        process_name: target.name,
        process_user: target.user,
        reason: reason.to_owned(),
    };
    state.actions.insert_action(&new).await?;
    state.metrics.actions.requested(request.kind);
    tracing::info!(action = %new.action.id, process = %new.process_name, reason, "action asked");
    Ok((StatusCode::CREATED, Json(new.entry())))
}

/// The process the request names, from the host's newest snapshot (the
/// one in memory when it is that one, else the store's): a 409 saying what
/// the snapshot has instead when it has no such process.
async fn target(
    state: &AppState,
    request: &ActionRequest,
    newest_taken_at: DateTime<Utc>,
) -> Result<ProcessSample, ApiError> {
    let host_id = request.host_id.as_str();
    let kept_from = state.clock.now() - state.raw_retention;
    let live = state
        .live
        .existing(host_id)
        .and_then(|live| live.newest())
        .filter(|n| n.taken_at() == newest_taken_at && n.taken_at() >= kept_from);
    let found = match live {
        Some(newest) => find(&newest.snapshot.processes, request.pid).cloned(),
        None => match state.store.snapshot(host_id, None).await? {
            Some(stored) => find(&stored.processes, request.pid).cloned(),
            None => {
                return Err(ApiError::NoSuchProcess(format!(
                    "no snapshot of host {host_id:?} is kept any more, so none of its processes \
                     can be acted on"
                )))
            }
        },
    };
    match found {
        Some(process) if process.start_time == request.started_at => Ok(process),
        Some(process) => Err(ApiError::NoSuchProcess(format!(
            "pid {} on host {host_id:?} belongs to a process started at {}, not at {}: the \
             process asked for has ended and its pid went to another",
            request.pid,
            process.start_time.to_rfc3339(),
            request.started_at.to_rfc3339()
        ))),
        None => Err(ApiError::NoSuchProcess(format!(
            "host {host_id:?}'s newest snapshot has no process with pid {}: it has ended",
            request.pid
        ))),
    }
}

fn find(processes: &[ProcessSample], pid: u32) -> Option<&ProcessSample> {
    processes.iter().find(|p| p.pid == pid)
}

/// The audit log, newest first: who asked what of which process, when,
/// why, and how it ended. An action that expired before its agent
/// reported reads `failed`, code `unanswered`.
#[utoipa::path(
    get,
    path = "/api/actions/",
    operation_id = "list_actions",
    tag = "actions",
    security(("session" = [])),
    params(ActionQuery),
    responses(
        (status = 200, description = "The entries, newest first", body = Vec<ActionEntry>),
        (status = 400, description = "A query parameter is not valid", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _reader: Reader,
    query: Result<Query<ActionQuery>, QueryRejection>,
) -> Result<Json<Vec<ActionEntry>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(LISTED);
    if limit == 0 || limit > MAX_LISTED {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_LISTED}, not {limit}"
        )));
    }
    let host = query
        .host
        .as_deref()
        .map(super::params::host_id)
        .transpose()?;
    let now = state.clock.now();
    Ok(Json(state.actions.actions(host, limit, now).await?))
}

/// One entry of the audit log.
#[utoipa::path(
    get,
    path = "/api/actions/{id}",
    operation_id = "get_action",
    tag = "actions",
    security(("session" = [])),
    params(("id" = Uuid, Path, description = "The action's id")),
    responses(
        (status = 200, description = "The entry, as it stands now", body = ActionEntry),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "No such action", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _reader: Reader,
    Path(id): Path<String>,
) -> Result<Json<ActionEntry>, ApiError> {
    let unknown = || ApiError::UnknownAction(id.clone());
    let uuid = Uuid::parse_str(&id).map_err(|_| unknown())?;
    let entry = state.actions.action(uuid, state.clock.now()).await?;
    entry.map(Json).ok_or_else(unknown)
}

/// The actions waiting for the key's host, each handed out once (whichever
/// server of the database is asked): an agent fetches them when its
/// ingest answer says some wait (`pending_actions`), checks each
/// signature against the key it pinned, acts, and reports.
#[utoipa::path(
    get,
    path = "/api/agent/actions/",
    operation_id = "fetch_agent_actions",
    tag = "actions",
    security(("agent_key" = [])),
    responses(
        (status = 200, description = "The signed actions, oldest first (none: nothing waits)", body = Vec<SignedAction>),
        (status = 401, description = "Agent key missing, wrong or revoked", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(key = %agent.0.id))]
pub async fn agent_fetch(
    State(state): State<AppState>,
    agent: AgentAuth,
) -> Result<Json<Vec<SignedAction>>, ApiError> {
    // A key not yet bound to a host (before its first snapshot) has none
    // waiting.
    let Some(host_id) = agent.0.host_id.as_deref() else {
        return Ok(Json(Vec::new()));
    };
    Ok(Json(claim_for(&state, host_id).await?))
}

/// Reports how an action ended, once: the agent's key must be the
/// action's host's.
#[utoipa::path(
    post,
    path = "/api/agent/actions/{id}/result",
    operation_id = "report_action_result",
    tag = "actions",
    security(("agent_key" = [])),
    params(("id" = Uuid, Path, description = "The action's id, from the fetch")),
    request_body(content = ActionReport, content_type = "application/json"),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Agent key missing, wrong or revoked", body = ErrorBody),
        (status = 404, description = "No action with this id for the key's host", body = ErrorBody),
        (status = 409, description = "The action has a result already", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The message is longer than 1000 characters, the code is `unanswered` (the server's own), or a field is missing or of the wrong type", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(key = %agent.0.id, action = %id, code = ?report.code))]
pub async fn agent_report(
    State(state): State<AppState>,
    agent: AgentAuth,
    Path(id): Path<String>,
    JsonBody(report): JsonBody<ActionReport>,
) -> Result<StatusCode, ApiError> {
    let Some(host_id) = agent.0.host_id.as_deref() else {
        return Err(ApiError::UnknownAgentAction(id));
    };
    report_for(&state, host_id, &id, &report).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_report(report: &ActionReport) -> Result<(), ApiError> {
    if report.code == ActionResultCode::Unanswered {
        return Err(ApiError::InvalidActionReport(
            "code `unanswered` is the server's own, for an action no agent reported on; \
             an agent reports what it did, or `failed` with why"
                .into(),
        ));
    }
    let length = report.message.chars().count();
    if length > MAX_REPORT_CHARS {
        return Err(ApiError::InvalidActionReport(format!(
            "the message is {length} characters long; at most {MAX_REPORT_CHARS}"
        )));
    }
    Ok(())
}

/// Claims the actions waiting for `host_id`: what `GET
/// /api/agent/actions/` answers, and what the server's own agent fetches in
/// process.
pub async fn claim_for(state: &AppState, host_id: &str) -> Result<Vec<SignedAction>, ApiError> {
    let claimed = state
        .actions
        .claim_actions(host_id, state.clock.now(), MAX_CLAIMED)
        .await?;
    if !claimed.is_empty() {
        tracing::info!(
            host = host_id,
            count = claimed.len(),
            "actions fetched by their agent"
        );
    }
    Ok(claimed)
}

/// Records the result of `host_id`'s action `id` (text, as in the path):
/// what `POST /api/agent/actions/{id}/result` does after reading the body,
/// and what the server's own agent reports in process.
pub async fn report_for(
    state: &AppState,
    host_id: &str,
    id: &str,
    report: &ActionReport,
) -> Result<(), ApiError> {
    check_report(report)?;
    let unknown = || ApiError::UnknownAgentAction(id.to_owned());
    let uuid = Uuid::parse_str(id).map_err(|_| unknown())?;
    match state
        .actions
        .record_result(host_id, uuid, report, state.clock.now())
        .await?
    {
        ResultRecorded::Recorded => {
            state.metrics.actions.reported(report.code.outcome());
            tracing::info!(host = host_id, action = %uuid, code = ?report.code, message = %report.message, "action result");
            Ok(())
        }
        ResultRecorded::NotFound => Err(unknown()),
        ResultRecorded::AlreadyRecorded => Err(ApiError::ActionResultRecorded(uuid)),
    }
}

/// How many actions wait for `host_id`, for its ingest answer. A store
/// that cannot say answers 0 (and logs why): the delivery itself was
/// stored, and the agent hears of them with a later one.
pub async fn pending_for(state: &AppState, host_id: &str) -> u32 {
    match state
        .actions
        .pending_actions(host_id, state.clock.now())
        .await
    {
        Ok(count) => count,
        Err(e) => {
            tracing::warn!(host = host_id, error = %e, "cannot count the host's waiting actions");
            0
        }
    }
}
