//! `/api/alerts/channels/` and `/api/alerts/deliveries/`: where alerts
//! are sent, and how each notification's delivery went. Admins make,
//! change, delete and test channels; anyone who may read sees them and
//! the deliveries.
//!
//! A channel's secret is never answered, and a Slack, Discord, ntfy or
//! webhook URL (whose path can be the credential) is shown whole only to
//! admins: others see its scheme and host.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use procmon_model::channels::{
    Channel, ChannelKind, ChannelSpec, ChannelTestResult, Delivery, DeliveryStatus,
};
use procmon_model::ErrorBody;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::IntoParams;

use super::body::JsonBody;
use crate::auth::{Admin, Reader, SignedIn};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::accounts::Role;
use crate::store::channels::{ChannelRecord, DeliveryFilter, SecretChange};

/// Deliveries listed when `limit` is not given, and at most.
const DEFAULT_DELIVERIES: usize = 100;
const MAX_DELIVERIES: usize = 1000;

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only this channel's (its id).
    pub channel: Option<String>,
    /// Only these, comma-separated: `pending`, `failing`, `delivered`,
    /// `given_up`.
    #[param(
        pattern = r"^(pending|failing|delivered|given_up)(,(pending|failing|delivered|given_up))*$"
    )]
    pub status: Option<String>,
    /// Most deliveries in the answer, newest first, 1 to 1000 [default: 100].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Whether the caller is an admin; a reader without a session (the
/// `no_login` setting) is not.
fn is_admin(state: &AppState, who: Result<SignedIn, ApiError>) -> Result<bool, ApiError> {
    match who {
        Ok(signed_in) => Ok(signed_in.user.role == Role::Admin),
        Err(_) if state.no_login => Ok(false),
        Err(e) => Err(e),
    }
}

/// `channel` as a non-admin sees it: URLs cut to their scheme and host.
fn for_reader(mut channel: Channel) -> Channel {
    match &mut channel.kind {
        ChannelKind::Webhook { url }
        | ChannelKind::Slack { url }
        | ChannelKind::Discord { url }
        | ChannelKind::Ntfy { url } => {
            *url = match reqwest::Url::parse(url) {
                Ok(parsed) => format!("{}/", parsed.origin().ascii_serialization()),
                Err(_) => "http://invalid/".to_owned(),
            };
        }
        ChannelKind::Email { .. } => {}
    }
    channel
}

/// Checks a spec, with the error the API answers.
fn checked(spec: &ChannelSpec) -> Result<(), ApiError> {
    crate::notify::check::spec(spec).map_err(ApiError::InvalidChannel)
}

/// Every channel, by name, with how its deliveries have gone.
#[utoipa::path(
    get,
    path = "/api/alerts/channels/",
    operation_id = "list_channels",
    tag = "channels",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every channel, by name (URLs whole for admins only)", body = Vec<Channel>),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    who: Result<SignedIn, ApiError>,
) -> Result<Json<Vec<Channel>>, ApiError> {
    let admin = is_admin(&state, who)?;
    let channels = state.channels.channels().await?;
    Ok(Json(if admin {
        channels
    } else {
        channels.into_iter().map(for_reader).collect()
    }))
}

/// Makes a channel.
#[utoipa::path(
    post,
    path = "/api/alerts/channels/",
    operation_id = "create_channel",
    tag = "channels",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    request_body(content = ChannelSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "Made", body = Channel),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The channel is not valid (a URL, an address, a missing field)", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name))]
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(spec): JsonBody<ChannelSpec>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    checked(&spec)?;
    let now = state.clock.now();
    let record = ChannelRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: spec.name.trim().to_owned(),
        kind: spec.kind,
        secret: spec.secret.filter(|s| !s.expose_secret().is_empty()),
        created_at: now,
        updated_at: now,
    };
    state.channels.create_channel(&record).await?;
    tracing::info!(channel = %record.id, kind = record.kind.name(), "channel made");
    let channel = state
        .channels
        .channel(&record.id)
        .await?
        .ok_or_else(|| ApiError::UnknownChannel(record.id.clone()))?;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// Changes a channel. Leaving `secret` out keeps the one set; an empty
/// one removes it.
#[utoipa::path(
    put,
    path = "/api/alerts/channels/{id}",
    operation_id = "update_channel",
    tag = "channels",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "The channel's id"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    request_body(content = ChannelSpec, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed", body = Channel),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The channel is not valid", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, channel = %id))]
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(spec): JsonBody<ChannelSpec>,
) -> Result<Json<Channel>, ApiError> {
    checked(&spec)?;
    let secret = match spec.secret {
        None => SecretChange::Keep,
        Some(s) if s.expose_secret().is_empty() => SecretChange::Remove,
        Some(s) => SecretChange::Set(s),
    };
    let changed = state
        .channels
        .update_channel(&id, spec.name.trim(), &spec.kind, secret, state.clock.now())
        .await?;
    if !changed {
        return Err(ApiError::UnknownChannel(id));
    }
    tracing::info!("channel changed");
    let channel = state
        .channels
        .channel(&id)
        .await?
        .ok_or(ApiError::UnknownChannel(id))?;
    Ok(Json(channel))
}

/// Deletes a channel. Its deliveries stay listed; those not yet sent are
/// given up.
#[utoipa::path(
    delete,
    path = "/api/alerts/channels/{id}",
    operation_id = "delete_channel",
    tag = "channels",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "The channel's id"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, channel = %id))]
pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.channels.delete_channel(&id).await? {
        return Err(ApiError::UnknownChannel(id));
    }
    tracing::info!("channel deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test notification to a channel now and says how it went: 200
/// either way, with `ok` false and the error when it did not arrive.
#[utoipa::path(
    post,
    path = "/api/alerts/channels/{id}/test",
    operation_id = "test_channel",
    tag = "channels",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "The channel's id"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    responses(
        (status = 200, description = "Sent, or the reason it was not", body = ChannelTestResult),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, channel = %id))]
pub async fn test(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ChannelTestResult>, ApiError> {
    let (channel, secret): (Channel, Option<SecretString>) = state
        .channels
        .channel_secret(&id)
        .await?
        .ok_or_else(|| ApiError::UnknownChannel(id.clone()))?;
    let link = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| format!("{}://{host}/", if state.tls { "https" } else { "http" }))
        .unwrap_or_default();
    let notification = crate::notify::test_notification(&channel.name, &link);
    let body = serde_json::to_string(&notification)
        .map_err(|e| anyhow::anyhow!("cannot encode the test notification: {e}"))?;
    let started = std::time::Instant::now();
    let sent = state
        .notifier
        .send(&channel.kind, secret.as_ref(), &notification, &body)
        .await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match &sent {
        Ok(()) => tracing::info!(elapsed_ms, "test notification delivered"),
        Err(error) => tracing::info!(elapsed_ms, error = %error, "test notification failed"),
    }
    Ok(Json(ChannelTestResult {
        ok: sent.is_ok(),
        error: sent.err(),
        notification_id: notification.id,
        elapsed_ms,
    }))
}

/// Notifications on their way to channels, and those sent or given up,
/// newest first.
#[utoipa::path(
    get,
    path = "/api/alerts/deliveries/",
    operation_id = "list_deliveries",
    tag = "channels",
    params(DeliveriesQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The deliveries, newest first", body = Vec<Delivery>),
        (status = 400, description = "A parameter is out of range", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    _reader: Reader,
    params: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let Query(q) = params?;
    let limit = q.limit.unwrap_or(DEFAULT_DELIVERIES);
    if !(1..=MAX_DELIVERIES).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "`limit` is {limit}: give 1 to {MAX_DELIVERIES}"
        )));
    }
    let mut statuses = Vec::new();
    for word in q.status.iter().flat_map(|s| s.split(',')) {
        // `?status=` (nothing chosen) lists every status.
        if !word.trim().is_empty() {
            statuses.push(status(word.trim())?);
        }
    }
    let filter = DeliveryFilter {
        channel_id: q.channel.filter(|c| !c.is_empty()),
        statuses,
        limit,
    };
    Ok(Json(state.channels.deliveries(&filter).await?))
}

fn status(word: &str) -> Result<DeliveryStatus, ApiError> {
    use DeliveryStatus::*;
    [Pending, Failing, Delivered, GivenUp]
        .into_iter()
        .find(|s| s.as_str() == word)
        .ok_or_else(|| {
            ApiError::InvalidQuery(format!(
                "`status` {word:?} is not one of pending, failing, delivered, given_up"
            ))
        })
}
