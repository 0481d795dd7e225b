//! `GET /api/processes/?host=…[&at=…]`: one snapshot of one host's
//! processes, the newest or the newest at or before a time.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use procmon_model::{ErrorBody, ProcessListing};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Reader;
use crate::error::ApiError;
use crate::startup::AppState;

/// Which host, and optionally which moment.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProcessQuery {
    /// The host's stable id (`host.id` in `GET /api/hosts/`).
    pub host: String,
    /// Show the newest snapshot collected at or before this time (RFC 3339,
    /// e.g. `2024-05-01T12:00:00Z`) instead of the newest one. A snapshot
    /// whose agent clock ran ahead counts as collected when it arrived.
    pub at: Option<String>,
}

/// Names the live event a listing corresponds to, `<epoch>-<seq>`: give it
/// as `since` to `GET /api/live/` and no change is missed.
pub const SEQ_HEADER: &str = "x-procmon-seq";

/// The processes of one host, flat, each with its parent pid.
///
/// The newest listing (no `at`) carries an `ETag` (its snapshot id), and a
/// request with `If-None-Match` naming it is answered `304 Not Modified`;
/// and an `X-Procmon-Seq` header when the server holds the host's live
/// state (see `GET /api/live/`).
#[utoipa::path(
    get,
    path = "/api/processes/",
    operation_id = "list_processes",
    tag = "processes",
    params(ProcessQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The snapshot asked for", body = ProcessListing, headers(
            ("ETag" = String, description = "The snapshot's id, quoted (newest listing only)"),
            ("X-Procmon-Seq" = String, description = "The live event this listing is at, `<epoch>-<seq>`: `since` for `GET /api/live/` (newest listing only, when the server holds the host's live state)"),
        )),
        (status = 304, description = "`If-None-Match` names the newest snapshot: nothing new"),
        (status = 400, description = "`host` missing, empty or with spaces around it, or `at` not an RFC 3339 time between the years 1677 and 2262", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "Unknown host, or no snapshot of it at or before `at`", body = ErrorBody),
        (status = 503, description = "The store cannot be read now, the server is at its connection limit, or it did not answer in time", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(host, at))]
pub async fn list(
    State(state): State<AppState>,
    _reader: Reader,
    headers: HeaderMap,
    query: Result<Query<ProcessQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| match ApiError::from(e) {
        ApiError::InvalidQuery(m) if m.contains("`host`") => {
            ApiError::InvalidQuery(format!("{m}: give the host's id as ?host=<id>"))
        }
        other => other,
    })?;
    let host_id = super::params::host_id(&query.host)?;
    let at = super::params::parse_optional("at", query.at.as_deref())?;
    tracing::Span::current().record("host", host_id);

    let summary = super::hosts::summary_of(&state, host_id).await?;
    let live = at.is_none().then(|| state.live.existing(host_id)).flatten();
    let known = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    // The page revalidates every listing it holds: answered from memory
    // when nothing changed, without reading the store.
    if let (Some(live), Some(known)) = (&live, known) {
        if let (seq, Some(latest)) = live.latest() {
            if etag_matches(known, &latest.id) {
                return Ok(not_modified(&state, latest.id, seq));
            }
        }
    }
    let snapshot = state.store.snapshot(host_id, at).await?.ok_or_else(|| {
        ApiError::NoSnapshot(match at {
            Some(at) => format!(
                "no snapshot of host {host_id:?} was collected at or before {}",
                at.to_rfc3339()
            ),
            None => format!("no snapshot of host {host_id:?} is kept any more"),
        })
    })?;
    if at.is_some() {
        return Ok(Json(listing(summary, snapshot)).into_response());
    }
    // The live state moves after the store (commit follows the write), so
    // it is read after it: the sequence is given only when both name the
    // same snapshot.
    let seq = live
        .or_else(|| state.live.existing(host_id))
        .map(|live| live.latest())
        .and_then(|(seq, latest)| latest.is_some_and(|l| l.id == snapshot.id).then_some(seq));
    let id = snapshot.id;
    if known.is_some_and(|known| etag_matches(known, &id)) {
        return Ok(not_modified(&state, id, seq.unwrap_or(0)));
    }
    let mut response = Json(listing(summary, snapshot)).into_response();
    add_validators(&state, response.headers_mut(), id, seq);
    Ok(response)
}

fn listing(
    summary: procmon_model::HostSummary,
    snapshot: crate::store::StoredSnapshot,
) -> ProcessListing {
    ProcessListing {
        host: summary,
        snapshot_id: snapshot.id,
        collected_at: snapshot.collected_at,
        received_at: snapshot.received_at,
        processes: snapshot.processes,
    }
}

fn etag_matches(if_none_match: &str, id: &uuid::Uuid) -> bool {
    let id = id.to_string();
    if_none_match
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|tag| tag == id || tag == "*")
}

fn not_modified(state: &AppState, id: uuid::Uuid, seq: u64) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    add_validators(state, response.headers_mut(), id, (seq > 0).then_some(seq));
    response
}

fn add_validators(state: &AppState, headers: &mut HeaderMap, id: uuid::Uuid, seq: Option<u64>) {
    headers.insert(
        ETAG,
        HeaderValue::from_str(&format!("\"{id}\"")).expect("a uuid is ASCII"),
    );
    // Kept, but asked about again every time: the newest listing moves.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(seq) = seq {
        let value = format!("{}-{seq}", state.live.epoch());
        headers.insert(
            SEQ_HEADER,
            HeaderValue::from_str(&value).expect("epoch and seq are ASCII"),
        );
    }
}
