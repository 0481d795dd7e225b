//! `GET /api/health`: whether the server can reach its database.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use procmon_model::HealthStatus;

use crate::startup::AppState;

/// How long the database may take to answer before the server counts as
/// unhealthy; load balancers poll this and must get an answer quickly.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// 200 when the database can be read and written, 503 when it cannot.
#[utoipa::path(
    get,
    path = "/api/health",
    operation_id = "health",
    tag = "server",
    responses(
        (status = 200, description = "The database can be read and written", body = HealthStatus),
        (status = 503, description = "The database cannot be read or written now (or a snapshot write failed in the last 30 s)", body = HealthStatus),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthStatus>) {
    let answered = match tokio::time::timeout(PING_TIMEOUT, state.store.check()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = format!("{e:#}"), "health check failed");
            false
        }
        Err(_) => {
            tracing::warn!("health check: the database took longer than {PING_TIMEOUT:?}");
            false
        }
    };
    let (status, word) = if answered {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(HealthStatus {
            status: word.to_owned(),
            database: answered,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }),
    )
}
