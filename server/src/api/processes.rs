//! `GET /api/processes/?host=…[&at=…]`: one snapshot of one host's
//! processes, the newest or the newest at or before a time.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
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

/// The processes of one host, flat, each with its parent pid.
#[utoipa::path(
    get,
    path = "/api/processes/",
    operation_id = "list_processes",
    tag = "processes",
    params(ProcessQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The snapshot asked for", body = ProcessListing),
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
    query: Result<Query<ProcessQuery>, QueryRejection>,
) -> Result<Json<ProcessListing>, ApiError> {
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
    let snapshot = state.store.snapshot(host_id, at).await?.ok_or_else(|| {
        ApiError::NoSnapshot(match at {
            Some(at) => format!(
                "no snapshot of host {host_id:?} was collected at or before {}",
                at.to_rfc3339()
            ),
            None => format!("no snapshot of host {host_id:?} is kept any more"),
        })
    })?;
    Ok(Json(ProcessListing {
        host: summary,
        snapshot_id: snapshot.id,
        collected_at: snapshot.collected_at,
        received_at: snapshot.received_at,
        processes: snapshot.processes,
    }))
}
