//! `GET /api/live/load/?host=…`: a host's load over the last hour, from
//! the store (every server of a database answers the same), for the page's
//! meters and their sparklines.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use procmon_model::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Reader;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::load::{LoadPoint, LOAD_KEPT};

/// Which host.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoadQuery {
    /// The host's stable id (`host.id` in `GET /api/hosts/`).
    pub host: String,
}

/// A host's recent load.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostLoadPoints {
    /// The host's stable id.
    pub host_id: String,
    /// The server's time of the answer.
    pub now: DateTime<Utc>,
    /// Load points of the last hour, oldest first; older ones are in
    /// `GET /api/history/host/`.
    pub points: Vec<LoadPoint>,
}

/// The host's load over the last hour: CPU, memory and process count of
/// each snapshot, with the host's own meters (CPU per core, memory, swap,
/// load average) when its agent sends them.
#[utoipa::path(
    get,
    path = "/api/live/load/",
    operation_id = "host_load",
    tag = "hosts",
    params(LoadQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The load points, oldest first", body = HostLoadPoints),
        (status = 400, description = "`host` missing, empty or with spaces around it", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn host_load(
    State(state): State<AppState>,
    _reader: Reader,
    query: Result<Query<LoadQuery>, QueryRejection>,
) -> Result<Json<HostLoadPoints>, ApiError> {
    let Query(query) = query.map_err(ApiError::from)?;
    let host_id = super::params::host_id(&query.host)?;
    // A removed or never-seen host is a 404, as for every other read.
    if state.store.host(host_id).await?.is_none() {
        return Err(ApiError::UnknownHost(host_id.to_owned()));
    }
    let now = state.clock.now();
    let points = state.store.load_points(host_id, now - LOAD_KEPT).await?;
    Ok(Json(HostLoadPoints {
        host_id: host_id.to_owned(),
        now,
        points,
    }))
}
