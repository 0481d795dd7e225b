//! History: a process's numbers over time, a host's totals over time, what
//! changed on a host between two times, and fleet-wide search.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use procmon_model::{ErrorBody, HostChanges, SearchHit, SearchResults, Series};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::params::{host_id, parse_optional, parse_time};
use crate::auth::Reader;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{SearchField, SearchQuery, TimeRange};

/// Points a series has unless asked otherwise.
const DEFAULT_POINTS: usize = 1000;
/// Most points a series may be asked for.
const MAX_POINTS: usize = 10_000;
/// Changes answered unless asked otherwise, and at most.
const DEFAULT_CHANGES: usize = 1000;
const MAX_CHANGES: usize = 10_000;
/// Search hits answered unless asked otherwise, and at most.
const DEFAULT_HITS: usize = 200;
const MAX_HITS: usize = 5000;

/// A host and a span of time.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostRangeQuery {
    /// The host's stable id.
    pub host: String,
    /// Start (RFC 3339), not after `to` [default: one hour before `to`].
    pub from: Option<String>,
    /// End (RFC 3339) [default: now].
    pub to: Option<String>,
    /// Most points in the answer, 1 to 10000 [default: 1000].
    #[param(minimum = 1, maximum = 10000)]
    pub points: Option<usize>,
}

/// One process (host, pid, start time) and a span of time.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProcessRangeQuery {
    /// The host's stable id.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// When the process started (RFC 3339, as in its listing): with `pid`,
    /// its identity.
    pub start_time: String,
    /// Start (RFC 3339), not after `to` [default: one hour before `to`].
    pub from: Option<String>,
    /// End (RFC 3339) [default: now].
    pub to: Option<String>,
    /// Most points in the answer, 1 to 10000 [default: 1000].
    #[param(minimum = 1, maximum = 10000)]
    pub points: Option<usize>,
}

/// A host and a span of time for its changes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The host's stable id.
    pub host: String,
    /// Start, exclusive (RFC 3339), not after `to` [default: one hour
    /// before `to`].
    pub from: Option<String>,
    /// End, inclusive (RFC 3339) [default: now].
    pub to: Option<String>,
    /// Most changes in the answer, 1 to 10000 [default: 1000].
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// What to look for across the fleet.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Text to find, ignoring case.
    #[param(min_length = 1)]
    pub q: String,
    /// Where to look [default: any].
    // Inline: a query parameter's type is not added to the document's
    // schemas, so a reference to it would point nowhere.
    #[param(inline)]
    pub field: Option<SearchIn>,
    /// Search each host's newest snapshot at or before this time (RFC
    /// 3339) [default: the newest].
    pub at: Option<String>,
    /// Most hits, 1 to 5000 [default: 200].
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
}

/// Which facts a search looks at.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchIn {
    /// Name (and executable), user or command line.
    Any,
    /// Name or executable path.
    Name,
    /// Owner.
    User,
    /// Command line.
    Cmd,
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(ApiError::from)
}

/// The range of `from`/`to`, defaulting to the last hour.
fn range(state: &AppState, from: Option<&str>, to: Option<&str>) -> Result<TimeRange, ApiError> {
    let to = parse_optional("to", to)?.unwrap_or_else(|| state.clock.now());
    let from = match from {
        Some(text) => parse_time("from", text)?,
        None => to - Duration::hours(1),
    };
    if from > to {
        return Err(ApiError::InvalidQuery(format!(
            "`from` ({}) is after `to` ({})",
            from.to_rfc3339(),
            to.to_rfc3339()
        )));
    }
    Ok(TimeRange { from, to })
}

fn bounded(
    name: &str,
    value: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match value.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(ApiError::InvalidQuery(format!(
            "`{name}` is {n}: it must be between 1 and {max}"
        ))),
    }
}

async fn known_host(state: &AppState, host: &str) -> Result<String, ApiError> {
    let host = host_id(host)?;
    state
        .store
        .host(host)
        .await?
        .map(|h| h.info.id)
        .ok_or_else(|| ApiError::UnknownHost(host.to_owned()))
}

/// One process's CPU, memory, threads, handles and disk I/O over time.
/// Short ranges come from every sample; long ones from one-minute or
/// one-hour roll-ups (average, minimum and maximum per step).
#[utoipa::path(
    get,
    path = "/api/history/process/",
    operation_id = "process_series",
    tag = "history",
    params(ProcessRangeQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The series; steps with no sample are left out", body = Series),
        (status = 400, description = "A parameter is missing or out of range", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn process_series(
    State(state): State<AppState>,
    _reader: Reader,
    params: Result<Query<ProcessRangeQuery>, QueryRejection>,
) -> Result<Json<Series>, ApiError> {
    let q = query(params)?;
    let host = known_host(&state, &q.host).await?;
    let start_time = parse_time("start_time", &q.start_time)?;
    let range = range(&state, q.from.as_deref(), q.to.as_deref())?;
    let points = bounded("points", q.points, DEFAULT_POINTS, MAX_POINTS)?;
    Ok(Json(
        state
            .store
            .process_series(&host, q.pid, start_time, range, points)
            .await?,
    ))
}

/// A host's process count, total CPU and total resident memory over time,
/// and its own meters where its agent sends them: CPU as a share of the
/// whole machine (the cores' average), memory used and available, swap,
/// and the one-minute load average (absent on Windows).
#[utoipa::path(
    get,
    path = "/api/history/host/",
    operation_id = "host_series",
    tag = "history",
    params(HostRangeQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The series: metrics process_count, cpu_percent (sum over processes, 100 = one core), memory_rss_bytes, cpu_machine_percent (100 = every core busy), memory_used_bytes, memory_available_bytes, swap_used_bytes, swap_total_bytes, load_1m; a metric is null in steps where the agent sent no value", body = Series),
        (status = 400, description = "A parameter is missing or out of range", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn host_series(
    State(state): State<AppState>,
    _reader: Reader,
    params: Result<Query<HostRangeQuery>, QueryRejection>,
) -> Result<Json<Series>, ApiError> {
    let q = query(params)?;
    let host = known_host(&state, &q.host).await?;
    let range = range(&state, q.from.as_deref(), q.to.as_deref())?;
    let points = bounded("points", q.points, DEFAULT_POINTS, MAX_POINTS)?;
    Ok(Json(state.store.host_series(&host, range, points).await?))
}

/// What changed on a host after `from` up to `to`: processes started and
/// exited (with their facts) and processes whose facts changed. Kept as
/// long as raw history.
#[utoipa::path(
    get,
    path = "/api/history/changes/",
    operation_id = "host_changes",
    tag = "history",
    params(ChangesQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The changes, each list in time order", body = HostChanges),
        (status = 400, description = "A parameter is missing or out of range", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn changes(
    State(state): State<AppState>,
    _reader: Reader,
    params: Result<Query<ChangesQuery>, QueryRejection>,
) -> Result<Json<HostChanges>, ApiError> {
    let q = query(params)?;
    let host = known_host(&state, &q.host).await?;
    let range = range(&state, q.from.as_deref(), q.to.as_deref())?;
    let limit = bounded("limit", q.limit, DEFAULT_CHANGES, MAX_CHANGES)?;
    Ok(Json(state.store.changes(&host, range, limit).await?))
}

/// Which hosts run what: processes whose name, user or command line holds
/// `q`, on every host, now or at a past time.
#[utoipa::path(
    get,
    path = "/api/search/",
    operation_id = "search_processes",
    tag = "history",
    params(SearchParams),
    security(("session" = [])),
    responses(
        (status = 200, description = "The processes found, by host then pid", body = SearchResults),
        (status = 400, description = "`q` missing or empty, or another parameter out of range", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 503, description = "The store cannot be read now", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn search(
    State(state): State<AppState>,
    _reader: Reader,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResults>, ApiError> {
    let q = query(params)?;
    let text = q.q.trim();
    if text.is_empty() {
        return Err(ApiError::InvalidQuery(
            "`q` is empty: say what to look for, e.g. ?q=nginx".into(),
        ));
    }
    let at: Option<DateTime<Utc>> = parse_optional("at", q.at.as_deref())?;
    let limit = bounded("limit", q.limit, DEFAULT_HITS, MAX_HITS)?;
    let field = match q.field.unwrap_or(SearchIn::Any) {
        SearchIn::Any => SearchField::Any,
        SearchIn::Name => SearchField::Name,
        SearchIn::User => SearchField::User,
        SearchIn::Cmd => SearchField::Cmd,
    };
    let search = SearchQuery {
        text: text.to_owned(),
        field,
    };
    let (found, truncated) = state.store.search(&search, at, limit).await?;
    let records = state.store.hosts().await?;
    let names = super::hosts::display_names(
        records
            .iter()
            .map(|r| (r.info.id.as_str(), r.info.hostname.as_str())),
    );
    Ok(Json(SearchResults {
        at,
        hits: found
            .into_iter()
            .map(|f| SearchHit {
                display_name: names
                    .get(&f.host_id)
                    .cloned()
                    .unwrap_or_else(|| f.host_id.clone()),
                host_id: f.host_id,
                taken_at: f.taken_at,
                process: f.process,
            })
            .collect(),
        truncated,
    }))
}
