//! `GET /metrics`: the server's metrics in the Prometheus text format, for
//! a Prometheus server to scrape.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use procmon_model::ErrorBody;

use super::access::Scraper;
use crate::api::hosts::is_online;
use crate::error::ApiError;
use crate::startup::AppState;

/// The server's metrics (Prometheus text format 0.0.4).
///
/// Needs the server's `metrics_token` as `Authorization: Bearer <token>`,
/// or an admin's session. Counters count from the server's start; no
/// series names a host or a process.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "server",
    security(("metrics_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The metrics, in the Prometheus text format", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "Neither the metrics token nor an admin's session", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 503, description = "The store cannot say whether the session is an admin's now which hosts are online or which alerts are open, or the server is at its connection limit", body = ErrorBody),
    ),
)]
pub async fn scrape(
    State(state): State<AppState>,
    _scraper: Scraper,
) -> Result<impl IntoResponse, ApiError> {
    let now = state.clock.now();
    let online = state
        .store
        .hosts()
        .await?
        .iter()
        .filter(|host| is_online(host, now))
        .count();
    let open = state.alerts.store().open_alerts(None).await?;
    let open: Vec<_> = open.into_iter().map(|record| record.alert).collect();
    state.metrics.alerts.set_open(&open);
    let text = state.metrics.encode(online);
    Ok((
        [(
            CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    ))
}
