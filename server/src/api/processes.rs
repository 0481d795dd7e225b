//! `GET /api/processes/?host=…[&at=…]`: one snapshot of one host's
//! processes, the newest or the newest at or before a time.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use procmon_model::{ErrorBody, HostSummary, ProcessListing, ProcessSample};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::auth::Reader;
use crate::error::ApiError;
use crate::live::{EncodedListing, HostLive, Newest};
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

/// Names the live event a listing corresponds to (its snapshot's id): give
/// it as `since` to `GET /api/live/`, of any server of the database, and
/// no change is missed.
pub const SEQ_HEADER: &str = "x-procmon-seq";

/// The processes of one host, flat, each with its parent pid.
///
/// The newest listing (no `at`) carries an `ETag` (its snapshot id), and a
/// request with `If-None-Match` naming it is answered `304 Not Modified`;
/// and an `X-Procmon-Seq` header, where `GET /api/live/` resumes from.
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
            ("X-Procmon-Seq" = String, description = "The live event this listing is at (its snapshot's id): `since` for `GET /api/live/` (newest listing only)"),
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

    let (summary, newest_taken_at) = super::hosts::summary_and_taken(&state, host_id).await?;
    let known = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if at.is_none() {
        // The newest listing, from memory when the live state holds the
        // snapshot the store names as newest (it does unless the server
        // restarted since, or the host fell silent beyond retention).
        let kept_from = state.clock.now() - state.raw_retention;
        if let Some((live, newest)) = state.live.existing(host_id).and_then(|live| {
            let newest = live.newest()?;
            (newest.taken_at() == newest_taken_at && newest.taken_at() >= kept_from)
                .then_some((live, newest))
        }) {
            let id = newest.snapshot.id;
            if known.is_some_and(|known| etag_matches(known, &id)) {
                return Ok(not_modified(id));
            }
            let mut response = newest_listing(&live, &newest, &summary, &headers).await?;
            add_validators(response.headers_mut(), id);
            return Ok(response);
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
    let id = snapshot.id;
    if known.is_some_and(|known| etag_matches(known, &id)) {
        return Ok(not_modified(id));
    }
    let mut response = Json(listing(summary, snapshot)).into_response();
    add_validators(response.headers_mut(), id);
    Ok(response)
}

/// The newest listing of a host from its live state. Gzipped once per
/// snapshot and kept, so every viewer who opens the host after the first
/// gets the same bytes: a 10,000-process host's listing is 4 MB of JSON,
/// about 40 ms to serialize and compress, on the path that opens the page.
/// The first viewer is sent it as it is made.
async fn newest_listing(
    live: &Arc<HostLive>,
    newest: &Newest,
    summary: &HostSummary,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let gzip = crate::gzip::accepted(headers);
    let summary_json = serde_json::to_vec(summary)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot write the host's summary: {e}")))?;
    let kept = live
        .encoded(newest.snapshot.id)
        .filter(|kept| gzip && kept.summary == summary_json);
    let listing = {
        let snapshot = Arc::clone(&newest.snapshot);
        let received_at = newest.received_at;
        let summary = summary.clone();
        move |out: &mut dyn std::io::Write| {
            serde_json::to_writer(
                out,
                &ListingOf {
                    host: &summary,
                    snapshot_id: snapshot.id,
                    collected_at: snapshot.collected_at,
                    received_at,
                    processes: &snapshot.processes,
                },
            )
            .map_err(std::io::Error::from)
        }
    };
    let body = match kept {
        Some(kept) => Body::from(kept.gzip.clone()),
        None if gzip => {
            let live = Arc::clone(live);
            let snapshot_id = newest.snapshot.id;
            crate::gzip::streamed(LISTING_GZIP_LEVEL, listing, move |whole| {
                live.keep_encoded(Arc::new(EncodedListing {
                    snapshot_id,
                    summary: summary_json,
                    gzip: whole,
                }))
            })
        }
        // Clients that take no gzip are rare (scripts): made for each.
        None => {
            let json = tokio::task::spawn_blocking(move || {
                let mut json = Vec::new();
                listing(&mut json).map(|()| json)
            })
            .await
            .map_err(std::io::Error::other)
            .flatten()
            .map_err(|e| {
                ApiError::Internal(anyhow::anyhow!("the listing could not be made: {e}"))
            })?;
            Body::from(json)
        }
    };
    let mut response = (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response();
    if gzip {
        crate::gzip::mark(response.headers_mut());
    } else {
        crate::gzip::vary(response.headers_mut());
    }
    Ok(response)
}

/// gzip's level for listings, compressed while the first viewer waits. On
/// a 10,000-process listing (3.9 MB of JSON): level 1 takes 10 ms for
/// 677 KB, 4 takes 29 ms for 491 KB, the default (6) 65 ms for 465 KB.
/// Level 4 is most of the default's gain at under half its time.
const LISTING_GZIP_LEVEL: u32 = 4;

/// A `ProcessListing` that borrows its processes from the live state
/// instead of copying them: the same fields in the same order, so the
/// same JSON (a test holds them together).
#[derive(Serialize)]
struct ListingOf<'a> {
    host: &'a HostSummary,
    snapshot_id: uuid::Uuid,
    collected_at: chrono::DateTime<chrono::Utc>,
    received_at: chrono::DateTime<chrono::Utc>,
    processes: &'a [ProcessSample],
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

fn not_modified(id: uuid::Uuid) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    add_validators(response.headers_mut(), id);
    response
}

/// The snapshot's id as the listing's `ETag`, and as where its viewer's
/// live events start.
fn add_validators(headers: &mut HeaderMap, id: uuid::Uuid) {
    headers.insert(
        ETAG,
        HeaderValue::from_str(&format!("\"{id}\"")).expect("a uuid is ASCII"),
    );
    // Kept, but asked about again every time: the newest listing moves.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        SEQ_HEADER,
        HeaderValue::from_str(&id.to_string()).expect("a uuid is ASCII"),
    );
}
