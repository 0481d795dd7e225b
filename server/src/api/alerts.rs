//! `/api/alerts/…`: the alerts raised across the fleet, the rules that
//! raise them (admins make and change them; every change is a new version,
//! named by the version it replaces), a preview of a rule before it is
//! saved, and silences.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use procmon_model::alerts::{
    Alert, AlertPreview, AlertRule, AlertRuleChange, AlertRuleSpec, AlertState, Silence,
    SilenceSpec,
};
use procmon_model::ErrorBody;
use serde::Deserialize;
use utoipa::IntoParams;

use super::body::JsonBody;
use crate::alerts::preview::PreviewError;
use crate::alerts::rules::{self, MAX_RULES};
use crate::auth::{Admin, Reader};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::alerts::{AlertFilter, RuleRefused};

/// Alerts listed at most, and by default.
const MAX_LISTED: usize = 5000;
const LISTED: usize = 500;
/// Silences in force at once, at most.
const MAX_SILENCES: usize = 10_000;

/// Which alerts `GET /api/alerts/` lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// `open` (pending and firing, the default), `firing`, `pending`,
    /// `resolved` or `all`; several joined by commas.
    #[param(
        pattern = "^(open|firing|pending|resolved|all)(,(open|firing|pending|resolved|all))*$"
    )]
    pub state: Option<String>,
    /// Only this host's (its id).
    pub host: Option<String>,
    /// Only this rule's.
    pub rule: Option<String>,
    /// At most this many, newest first (default 500, at most 5000).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
}

fn states(text: Option<&str>) -> Result<Vec<AlertState>, ApiError> {
    let mut states = Vec::new();
    for word in text.unwrap_or("open").split(',').map(str::trim) {
        match word {
            "open" => states.extend([AlertState::Pending, AlertState::Firing]),
            "all" => return Ok(Vec::new()),
            other => states.push(AlertState::parse(other).ok_or_else(|| {
                ApiError::InvalidQuery(format!(
                    "state {other:?} is not one of open, firing, pending, resolved, all"
                ))
            })?),
        }
    }
    Ok(states)
}

/// Alerts across the fleet, newest first.
#[utoipa::path(
    get,
    path = "/api/alerts/",
    operation_id = "list_alerts",
    tag = "alerts",
    security(("session" = [])),
    params(AlertQuery),
    responses(
        (status = 200, description = "The alerts, newest first", body = Vec<Alert>),
        (status = 400, description = "A query parameter is not valid", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _reader: Reader,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(LISTED);
    if limit == 0 || limit > MAX_LISTED {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_LISTED}, not {limit}"
        )));
    }
    let filter = AlertFilter {
        states: states(query.state.as_deref())?,
        host_id: query.host,
        rule_id: query.rule,
        limit,
    };
    let found = state.alerts.store().alerts(&filter).await?;
    let alerts = found.into_iter().map(|r| r.alert).collect();
    Ok(Json(silenced_now(&state, alerts).await?))
}

/// The alerts with `silenced_until` as the silences in force now say (a
/// silence made or ended after an alert last changed counts at once).
async fn silenced_now(state: &AppState, mut alerts: Vec<Alert>) -> Result<Vec<Alert>, ApiError> {
    let now = state.clock.now();
    let silences = state.alerts.store().silences(now).await?;
    for alert in &mut alerts {
        alert.silenced_until = match alert.state {
            AlertState::Resolved => None,
            _ => silences
                .iter()
                .filter(|s| s.covers(&alert.rule_id, &alert.host_id, now))
                .map(|s| s.until)
                .max(),
        };
    }
    Ok(alerts)
}

/// One alert.
#[utoipa::path(
    get,
    path = "/api/alerts/{id}",
    operation_id = "get_alert",
    tag = "alerts",
    security(("session" = [])),
    params(("id" = String, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "The alert", body = Alert),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "No such alert (or it was resolved long enough ago to be forgotten)", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _reader: Reader,
    Path(id): Path<String>,
) -> Result<Json<Alert>, ApiError> {
    match state.alerts.store().alert(&id).await? {
        Some(record) => Ok(Json(
            silenced_now(&state, vec![record.alert]).await?.remove(0),
        )),
        None => Err(ApiError::UnknownAlert(id)),
    }
}

/// Every rule, by name.
#[utoipa::path(
    get,
    path = "/api/alerts/rules/",
    operation_id = "list_alert_rules",
    tag = "alerts",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every rule, by name", body = Vec<AlertRule>),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn rules(
    State(state): State<AppState>,
    _reader: Reader,
) -> Result<Json<Vec<AlertRule>>, ApiError> {
    Ok(Json(state.alerts.store().rules().await?))
}

/// Makes a rule; it is evaluated from the next snapshot on, on every
/// server within a second.
#[utoipa::path(
    post,
    path = "/api/alerts/rules/",
    operation_id = "create_alert_rule",
    tag = "alerts",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    request_body(content = AlertRuleSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "Made (version 1)", body = AlertRule),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 422, description = "The rule is not valid (the message says what is wrong), or there are too many rules", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name))]
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(spec): JsonBody<AlertRuleSpec>,
) -> Result<(StatusCode, Json<AlertRule>), ApiError> {
    rules::check(&spec).map_err(ApiError::InvalidRule)?;
    let store = state.alerts.store();
    if store.rules().await?.len() >= MAX_RULES {
        return Err(ApiError::InvalidRule(format!(
            "there are {MAX_RULES} rules already, the most a server evaluates; delete some first"
        )));
    }
    let now = state.clock.now();
    let rule = AlertRule {
        id: uuid::Uuid::new_v4().to_string(),
        version: 1,
        created_at: now,
        updated_at: now,
        updated_by: admin.0.user.name.clone(),
        spec,
    };
    store.create_rule(&rule).await?;
    state.alerts.reload(now).await?;
    tracing::info!(rule = rule.id, name = rule.spec.name, "alert rule made");
    Ok((StatusCode::CREATED, Json(rule)))
}

/// One rule, newest version.
#[utoipa::path(
    get,
    path = "/api/alerts/rules/{id}",
    operation_id = "get_alert_rule",
    tag = "alerts",
    security(("session" = [])),
    params(("id" = String, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule", body = AlertRule),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn rule(
    State(state): State<AppState>,
    _reader: Reader,
    Path(id): Path<String>,
) -> Result<Json<AlertRule>, ApiError> {
    match state.alerts.store().rule_versions(&id).await?.pop() {
        Some(rule) => Ok(Json(rule)),
        None => Err(ApiError::UnknownRule(id)),
    }
}

/// Every version of one rule, oldest first: who changed what, when.
#[utoipa::path(
    get,
    path = "/api/alerts/rules/{id}/versions",
    operation_id = "alert_rule_versions",
    tag = "alerts",
    security(("session" = [])),
    params(("id" = String, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "Its versions, oldest first", body = Vec<AlertRule>),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn versions(
    State(state): State<AppState>,
    _reader: Reader,
    Path(id): Path<String>,
) -> Result<Json<Vec<AlertRule>>, ApiError> {
    let versions = state.alerts.store().rule_versions(&id).await?;
    if versions.is_empty() {
        return Err(ApiError::UnknownRule(id));
    }
    Ok(Json(versions))
}

/// Changes a rule: the body names the version it changes, and is refused
/// (409) if someone changed the rule since.
#[utoipa::path(
    put,
    path = "/api/alerts/rules/{id}",
    operation_id = "update_alert_rule",
    tag = "alerts",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "The rule's id"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    request_body(content = AlertRuleChange, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed: the new version", body = AlertRule),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 409, description = "The rule was changed since the version named", body = ErrorBody),
        (status = 422, description = "The rule is not valid", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, rule = %id))]
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(change): JsonBody<AlertRuleChange>,
) -> Result<Json<AlertRule>, ApiError> {
    rules::check(&change.rule).map_err(ApiError::InvalidRule)?;
    let store = state.alerts.store();
    let Some(current) = store.rule_versions(&id).await?.pop() else {
        return Err(ApiError::UnknownRule(id));
    };
    if current.version != change.version {
        return Err(ApiError::RuleChanged {
            id,
            sent: change.version,
            now: current.version,
        });
    }
    let now = state.clock.now();
    let rule = AlertRule {
        id: id.clone(),
        version: change.version + 1,
        created_at: current.created_at,
        updated_at: now,
        updated_by: admin.0.user.name.clone(),
        spec: change.rule,
    };
    match store.update_rule(&rule).await? {
        Ok(()) => {}
        Err(RuleRefused::NotFound) => return Err(ApiError::UnknownRule(id)),
        Err(RuleRefused::VersionMoved { now }) => {
            return Err(ApiError::RuleChanged {
                id,
                sent: change.version,
                now,
            })
        }
    }
    state.alerts.reload(now).await?;
    Ok(Json(rule))
}

/// Deletes a rule; its open alerts go with it (nobody is told), its
/// resolved ones stay as history.
#[utoipa::path(
    delete,
    path = "/api/alerts/rules/{id}",
    operation_id = "delete_alert_rule",
    tag = "alerts",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "The rule's id"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, rule = %id))]
pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.alerts.store().delete_rule(&id).await? {
        return Err(ApiError::UnknownRule(id));
    }
    state.alerts.reload(state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a rule (not yet saved) matches on each host now, and when it
/// would have fired over the last 24 hours of history.
#[utoipa::path(
    post,
    path = "/api/alerts/preview/",
    operation_id = "preview_alert_rule",
    tag = "alerts",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    request_body(content = AlertRuleSpec, content_type = "application/json"),
    responses(
        (status = 200, description = "What the rule matches now and would have fired", body = AlertPreview),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "The X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 422, description = "The rule is not valid", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn preview(
    State(state): State<AppState>,
    _admin: Admin,
    JsonBody(spec): JsonBody<AlertRuleSpec>,
) -> Result<Json<AlertPreview>, ApiError> {
    crate::alerts::preview::preview(state.store.as_ref(), spec, state.clock.now())
        .await
        .map(Json)
        .map_err(|e| match e {
            PreviewError::Invalid(why) => ApiError::InvalidRule(why),
            PreviewError::Store(e) => e.into(),
        })
}

/// The silences not yet over.
#[utoipa::path(
    get,
    path = "/api/alerts/silences/",
    operation_id = "list_silences",
    tag = "alerts",
    security(("session" = [])),
    responses(
        (status = 200, description = "Silences in force or to come, by start", body = Vec<Silence>),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
pub async fn silences(
    State(state): State<AppState>,
    _reader: Reader,
) -> Result<Json<Vec<Silence>>, ApiError> {
    Ok(Json(
        state.alerts.store().silences(state.clock.now()).await?,
    ))
}

/// Silences alerts until a time: by rule, by host, or both (neither: every
/// alert). Alerts are still raised and shown; nobody is told until it
/// ends, and one still firing then is told of once. A start in the future
/// makes a maintenance window.
#[utoipa::path(
    post,
    path = "/api/alerts/silences/",
    operation_id = "create_silence",
    tag = "alerts",
    security(("session" = [])),
    params(("X-Procmon-Csrf" = String, Header, description = "Must be `1`")),
    request_body(content = SilenceSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "In force (or to come)", body = Silence),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such rule or host", body = ErrorBody),
        (status = 422, description = "The silence is not valid (it ends before it starts, or has no reason)", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name))]
pub async fn silence(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(spec): JsonBody<SilenceSpec>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let now = state.clock.now();
    let starts_at = spec.starts_at.unwrap_or(now);
    let reason = spec.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::InvalidSilence(
            "reason must say why, in 1 to 500 characters".into(),
        ));
    }
    if spec.until <= starts_at.max(now) {
        return Err(ApiError::InvalidSilence(format!(
            "until ({}) must be after the start and after now",
            spec.until.to_rfc3339()
        )));
    }
    let store = state.alerts.store();
    if let Some(rule) = &spec.rule_id {
        if store.rule_versions(rule).await?.is_empty() {
            return Err(ApiError::UnknownRule(rule.clone()));
        }
    }
    let host_id = match &spec.host {
        None => None,
        Some(host) => Some(host_named(&state, host).await?),
    };
    if store.silences(now).await?.len() >= MAX_SILENCES {
        return Err(ApiError::InvalidSilence(format!(
            "{MAX_SILENCES} silences are in force already; end some first"
        )));
    }
    let silence = Silence {
        id: uuid::Uuid::new_v4().to_string(),
        rule_id: spec.rule_id,
        host_id,
        starts_at,
        until: spec.until,
        reason: reason.to_owned(),
        created_by: admin.0.user.name.clone(),
        created_at: now,
    };
    store.create_silence(&silence).await?;
    state.alerts.reload(now).await?;
    Ok((StatusCode::CREATED, Json(silence)))
}

/// The id of the host `text` names: its id, or its one hostname.
async fn host_named(state: &AppState, text: &str) -> Result<String, ApiError> {
    if state.store.host(text).await?.is_some() {
        return Ok(text.to_owned());
    }
    let mut named = state.store.hosts_named(text).await?;
    match named.len() {
        1 => Ok(named.remove(0)),
        0 => Err(ApiError::UnknownHost(text.to_owned())),
        n => Err(ApiError::InvalidSilence(format!(
            "{n} hosts are named {text:?}: name the host by its id"
        ))),
    }
}

/// Ends a silence now.
#[utoipa::path(
    delete,
    path = "/api/alerts/silences/{id}",
    operation_id = "delete_silence",
    tag = "alerts",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "The silence's id"),
        ("X-Procmon-Csrf" = String, Header, description = "Must be `1`"),
    ),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 403, description = "Not an admin, or the X-Procmon-Csrf header is missing", body = ErrorBody),
        (status = 404, description = "No such silence", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.user.name, silence = %id))]
pub async fn end_silence(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.alerts.store().delete_silence(&id).await? {
        return Err(ApiError::UnknownSilence(id));
    }
    state.alerts.reload(state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
