//! `POST /api/processes/` (a whole snapshot) and `POST /api/changes/` (a
//! change batch against the last snapshot the server acknowledged).
//!
//! Both go through [`deliver`], which is also how the server's own agent
//! hands over its snapshots, in process: one path checks, applies, stores
//! and commits, whoever sends.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use procmon_model::{
    ChangeBatch, ErrorBody, IngestResponse, Snapshot, SpoolReport, SPOOL_BYTES_HEADER,
    SPOOL_WAITING_HEADER,
};

use super::body::JsonBody;
use crate::agent_keys::KeyError;
use crate::auth::AgentAuth;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{ChangeOutcome, IngestOutcome};

/// Who delivers.
pub enum Source<'a> {
    /// An agent over HTTP, with its key, admitted by its rate limit; the
    /// key must be the host's.
    Agent(&'a Admitted),
    /// The server's own agent, in process: no key, no rate limit.
    Embedded,
}

/// An agent key in force whose ingest rate is not used up. Taken from the
/// request's head, before the body: a client over its rate, or without a
/// key, costs no inflating and no parsing.
pub struct Admitted(AgentAuth);

impl FromRequestParts<AppState> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let agent = AgentAuth::from_request_parts(parts, state).await?;
        let key = &agent.0;
        match state
            .ingest_limiter
            .check("ingest", rate_key(&agent), state.clock.now())
            .await?
        {
            Ok(()) => Ok(Self(agent)),
            // The body is not read, so the key's host names the sender.
            Err(retry_after) => Err(ApiError::RateLimited {
                key: key
                    .host_id
                    .clone()
                    .unwrap_or_else(|| format!("agent key {}", key.id)),
                retry_after,
            }),
        }
    }
}

/// What the sending agent's spool holds, from its request headers (see
/// [`procmon_model::SpoolReport`]); absent from agents without a spool and
/// from older agents. Read with the head, so a malformed one is refused
/// before the body is read.
pub struct SpoolHeaders(pub Option<SpoolReport>);

impl<S: Sync> FromRequestParts<S> for SpoolHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let number = |name: &str| -> Result<Option<u64>, ApiError> {
            let Some(value) = parts.headers.get(name) else {
                return Ok(None);
            };
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| {
                    ApiError::InvalidHeader(format!(
                        "{name} is {value:?}: it must be a whole number of 0 or more"
                    ))
                })
        };
        let waiting = number(SPOOL_WAITING_HEADER)?;
        let bytes = number(SPOOL_BYTES_HEADER)?;
        Ok(Self(match (waiting, bytes) {
            (None, None) => None,
            (waiting, bytes) => Some(SpoolReport {
                waiting: waiting.unwrap_or(0),
                bytes: bytes.unwrap_or(0),
            }),
        }))
    }
}

/// What is delivered.
pub enum Delivery {
    Snapshot(Snapshot),
    Batch(ChangeBatch),
}

impl Delivery {
    fn host_id(&self) -> &str {
        match self {
            Self::Snapshot(s) => &s.host.id,
            Self::Batch(b) => &b.host_id,
        }
    }

    fn id(&self) -> uuid::Uuid {
        match self {
            Self::Snapshot(s) => s.id,
            Self::Batch(b) => b.id,
        }
    }
}

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
    params(
        ("x-procmon-spool-waiting" = Option<u64>, Header, description = "Deliveries waiting in the agent's spool as it sends this one; counted in `procmon_agent_spool_waiting`"),
        ("x-procmon-spool-bytes" = Option<u64>, Header, description = "Bytes the agent's spool takes on disk; counted in `procmon_agent_spool_bytes`"),
    ),
    security(("agent_key" = [])),
    responses(
        (status = 201, description = "Accepted: stored now, or stored before (`stored` says which)", body = IngestResponse),
        (status = 400, description = "The body is not JSON, or a spool header is not a whole number", body = ErrorBody),
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
    agent: Admitted,
    SpoolHeaders(spool): SpoolHeaders,
    JsonBody(snapshot): JsonBody<Snapshot>,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    if let Some(spool) = spool {
        state.metrics.agent_spool(spool);
    }
    let span = tracing::Span::current();
    span.record("host", snapshot.host.id.as_str());
    span.record("snapshot", snapshot.id.to_string());
    span.record("processes", snapshot.processes.len());
    let answer = deliver(&state, Source::Agent(&agent), Delivery::Snapshot(snapshot)).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Stores the snapshot a change batch makes of the host's latest one.
///
/// The batch names its base (`base_id`): the last snapshot of this host the
/// server acknowledged. It is applied only to exactly that snapshot, which
/// must be the host's newest in the database (whichever server stored it,
/// and across restarts); otherwise (a batch was lost, came out of order, or
/// another snapshot of the host was stored since) the answer is 409
/// `base_unknown` and nothing is stored: send that snapshot in full to
/// `POST /api/processes/`, and batches against it after. A batch stored
/// before (a retry) is 201 with `stored: false`.
#[utoipa::path(
    post,
    path = "/api/changes/",
    operation_id = "ingest_changes",
    tag = "processes",
    request_body(content = ChangeBatch, content_type = "application/json"),
    params(
        ("x-procmon-spool-waiting" = Option<u64>, Header, description = "Deliveries waiting in the agent's spool as it sends this one; counted in `procmon_agent_spool_waiting`"),
        ("x-procmon-spool-bytes" = Option<u64>, Header, description = "Bytes the agent's spool takes on disk; counted in `procmon_agent_spool_bytes`"),
    ),
    security(("agent_key" = [])),
    responses(
        (status = 201, description = "Applied and stored, or stored before (`stored` says which)", body = IngestResponse),
        (status = 400, description = "The body is not JSON, or a spool header is not a whole number", body = ErrorBody),
        (status = 401, description = "Agent key missing, wrong or revoked", body = ErrorBody),
        (status = 403, description = "The agent key belongs to another host", body = ErrorBody),
        (status = 409, description = "`base_unknown`: the server does not hold the batch's base as the host's latest snapshot; send the snapshot in full. Or `snapshot_id_conflict`: the id was already used by another host", body = ErrorBody),
        (status = 413, description = "The body is larger than the server's limit (inflated, when compressed)", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json, or its Content-Encoding is not zstd, gzip or none", body = ErrorBody),
        (status = 408, description = "The body stopped arriving", body = ErrorBody),
        (status = 422, description = "The JSON is not a valid batch, it does not fit its base (a pid that is not there, or starts twice), or the snapshot it makes is not valid", body = ErrorBody),
        (status = 429, description = "This host sent too many snapshots; `Retry-After` says how many seconds to wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before sending again"))),
        (status = 503, description = "Nothing was stored: the store cannot write now, the server is at its connection limit, or it did not answer in time; retry later", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(host, snapshot, base))]
pub async fn ingest_changes(
    State(state): State<AppState>,
    agent: Admitted,
    SpoolHeaders(spool): SpoolHeaders,
    JsonBody(batch): JsonBody<ChangeBatch>,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    if let Some(spool) = spool {
        state.metrics.agent_spool(spool);
    }
    let span = tracing::Span::current();
    span.record("host", batch.host_id.as_str());
    span.record("snapshot", batch.id.to_string());
    span.record("base", batch.base_id.to_string());
    let answer = deliver(&state, Source::Agent(&agent), Delivery::Batch(batch)).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Everything a delivery goes through, over HTTP or in process: the key's
/// host (agents only, already admitted by their rate limit), validation, then under the
/// host's live lock the store (which, for a batch, checks its base in the
/// same transaction as the write) and the commit to viewers. Timed and
/// counted in the server's metrics.
pub async fn deliver(
    state: &AppState,
    from: Source<'_>,
    delivery: Delivery,
) -> Result<IngestResponse, ApiError> {
    let timer = state.metrics.ingest_started(&from, &delivery);
    let result = deliver_unmetered(state, from, delivery).await;
    timer.done(&result);
    result
}

async fn deliver_unmetered(
    state: &AppState,
    from: Source<'_>,
    delivery: Delivery,
) -> Result<IngestResponse, ApiError> {
    let host_id = delivery.host_id().to_owned();
    match &delivery {
        Delivery::Snapshot(snapshot) => {
            super::validate::validate(snapshot).map_err(ApiError::InvalidSnapshot)?
        }
        // Before the key is bound to the host it names.
        Delivery::Batch(batch) => {
            super::validate::validate_batch(batch).map_err(ApiError::InvalidSnapshot)?
        }
    }
    if let Source::Agent(Admitted(agent)) = from {
        match state.agent_keys.authorize_host(&agent.0, &host_id).await {
            Ok(()) => {}
            Err(KeyError::OtherHost(key_host)) => {
                return Err(ApiError::KeyForOtherHost {
                    key_host,
                    sent: host_id,
                })
            }
            Err(KeyError::Refused) => return Err(ApiError::AgentKeyRefused),
            Err(KeyError::Store(e)) => return Err(e.into()),
        }
        state.embedded.warn_if_also(&host_id);
    }

    let started = std::time::Instant::now();
    let snapshot_id = delivery.id();
    let host = state.live.host(&host_id);
    // Held until what the store took is committed here, so that viewers
    // see this server's snapshots of the host in the order stored. The
    // store, not this lock, decides which base a batch may extend.
    let mut live = host.lock().await;
    let received_at = state.clock.now();
    let stored = match delivery {
        Delivery::Snapshot(snapshot) => {
            let snapshot = std::sync::Arc::new(snapshot);
            match state
                .metrics
                .store_write(
                    state
                        .store
                        .ingest(std::sync::Arc::clone(&snapshot), received_at),
                )
                .await?
            {
                IngestOutcome::Stored => {
                    evaluate_alerts(state, &snapshot, None, received_at);
                    live.commit(snapshot, received_at, None);
                    true
                }
                IngestOutcome::AlreadyStored => false,
                IngestOutcome::IdTakenByOtherHost => {
                    return Err(ApiError::SnapshotIdConflict(snapshot_id))
                }
            }
        }
        Delivery::Batch(batch) => {
            let batch = std::sync::Arc::new(batch);
            match state
                .metrics
                .store_write(state.store.ingest_changes(
                    std::sync::Arc::clone(&batch),
                    received_at,
                    super::validate::validate,
                ))
                .await?
            {
                ChangeOutcome::Stored(snapshot) => {
                    evaluate_alerts(state, &snapshot, Some(&batch), received_at);
                    live.commit(snapshot, received_at, Some(&batch));
                    true
                }
                ChangeOutcome::AlreadyStored => false,
                ChangeOutcome::IdTakenByOtherHost => {
                    return Err(ApiError::SnapshotIdConflict(snapshot_id))
                }
                ChangeOutcome::BaseUnknown => return Err(base_unknown(&batch)),
                ChangeOutcome::DoesNotFit(why) => return Err(ApiError::BatchDoesNotFit(why)),
                ChangeOutcome::Invalid(why) => return Err(ApiError::InvalidSnapshot(why)),
            }
        }
    };
    // Counting the host's waiting actions needs no turn of its own.
    drop(live);
    tracing::debug!(
        stored,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "snapshot received"
    );
    Ok(IngestResponse {
        snapshot_id,
        stored,
        pending_actions: super::actions::pending_for(state, &host_id).await,
    })
}

/// Checks a snapshot just stored against the alert rules, beside the
/// answer to its agent rather than before it: a slow rule or store never
/// holds ingest up, and what it finds is in the store for every server.
/// Observations that arrive out of order are sorted out by the store (an
/// older one is not applied).
fn evaluate_alerts(
    state: &AppState,
    snapshot: &std::sync::Arc<Snapshot>,
    batch: Option<&std::sync::Arc<ChangeBatch>>,
    received_at: chrono::DateTime<chrono::Utc>,
) {
    if state.alerts.rules().rules.is_empty() {
        return;
    }
    let evaluating = state.alerts.evaluating();
    let snapshot = std::sync::Arc::clone(snapshot);
    let batch = batch.map(std::sync::Arc::clone);
    let now = state.clock.now();
    let metrics = std::sync::Arc::clone(&state.metrics);
    tokio::spawn(async move {
        let taken_at = snapshot.collected_at.min(received_at);
        let alerts = evaluating.alerts();
        let started = std::time::Instant::now();
        let evaluated = alerts
            .observe(&snapshot, batch.as_deref(), taken_at, now)
            .await;
        metrics
            .alerts
            .evaluated(evaluated.is_ok(), started.elapsed());
        if let Err(e) = evaluated {
            tracing::warn!(host = snapshot.host.id, error = %e, "cannot evaluate the alert rules for a snapshot");
        }
    });
}

fn base_unknown(batch: &ChangeBatch) -> ApiError {
    ApiError::BaseUnknown {
        host: batch.host_id.clone(),
        base: batch.base_id,
    }
}

/// Whose budget a snapshot counts against: its key's, so a client cannot
/// spread its load over made-up host ids.
fn rate_key(agent: &AgentAuth) -> &str {
    &agent.0.id
}

/// The host the server's own agent reports, once it has reported: another
/// agent sending for the same host is a mistake worth one warning (two
/// agents fight over one host's snapshots and its change batches).
#[derive(Default)]
pub struct EmbeddedHost {
    host_id: std::sync::OnceLock<String>,
    warned: AtomicBool,
}

impl EmbeddedHost {
    /// The embedded agent reports `host_id`.
    pub fn set(&self, host_id: &str) {
        let _ = self.host_id.set(host_id.to_owned());
    }

    /// The embedded agent's host id, once it has reported.
    pub fn get(&self) -> Option<&str> {
        self.host_id.get().map(String::as_str)
    }

    /// Warns, the first time only, when an agent over HTTP reports the
    /// embedded agent's host; whether it warned now.
    fn warn_if_also(&self, host_id: &str) -> bool {
        let warn = self.get() == Some(host_id) && !self.warned.swap(true, Ordering::Relaxed);
        if warn {
            tracing::warn!(
                host = host_id,
                "two agents report host {host_id}: the server's embedded agent and another; \
                 stop one (--no-agent on the server)"
            );
        }
        warn
    }
}

#[cfg(test)]
mod tests {
    use super::EmbeddedHost;

    #[test]
    fn a_second_agent_for_the_embedded_host_is_warned_about_once() {
        let embedded = EmbeddedHost::default();
        assert!(
            !embedded.warn_if_also("h"),
            "the embedded agent has not reported"
        );
        embedded.set("h");
        assert!(!embedded.warn_if_also("other"));
        assert!(embedded.warn_if_also("h"));
        assert!(!embedded.warn_if_also("h"), "once");
    }
}
