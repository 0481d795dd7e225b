//! `GET /api/live/?host=…`: a host's changes as they happen, pushed as
//! Server-Sent Events, so the page applies what changed instead of fetching
//! the whole listing every interval.
//!
//! Each event's id is the id of the snapshot it brings the viewer to (see
//! [`crate::live`]), the same on every server of a database and across
//! restarts. A browser that reconnects sends the last one it saw as
//! `Last-Event-ID` (or the page gives it as `?since=`), perhaps to another
//! server than the one it watched, and is sent what it missed: from the
//! host's backlog here, else as one change from the snapshot it had (read
//! from the store's history) to the host's newest. When that cannot be
//! done (a snapshot the store no longer keeps, a receiver that lagged, or
//! a first snapshot with nothing to diff against) it is sent
//! `event: reload`, and the page fetches the listing again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use futures_util::stream::StreamExt;
use procmon_model::ErrorBody;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::IntoParams;

use crate::auth::Reader;
use crate::error::ApiError;
use crate::live::LiveEvent;
use crate::startup::AppState;

/// A comment this often keeps proxies and browsers from closing a quiet
/// stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How soon a browser reconnects after the stream ends (its default is
/// about 3 s): a restart or a removed host is noticed quickly.
const RECONNECT: Duration = Duration::from_secs(1);

/// Which host, and where the viewer stands.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// The host's stable id (`host.id` in `GET /api/hosts/`).
    pub host: String,
    /// The last event seen: a snapshot id (the `X-Procmon-Seq` header of
    /// `GET /api/processes/`, or an event's id). A `Last-Event-ID` header
    /// wins over it. Without either, events start from now.
    pub since: Option<String>,
}

/// One Server-Sent Event of `GET /api/live/`, as the OpenAPI document
/// describes the stream: each event's fields, the data being JSON.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only described: events are written by `to_sse` and `reload`.
pub struct StreamEvent {
    /// `change` or `reload`.
    event: String,
    /// For `change`, a `LiveEvent` as JSON; for `reload`, `{"snapshot_id"}`:
    /// the snapshot the host stands at here, if any.
    data: String,
    /// The id of the snapshot the event brings the viewer to; absent on a
    /// reload that brings it nowhere.
    id: Option<String>,
    /// Milliseconds to wait before reconnecting; on the first event only.
    retry: Option<u64>,
}

/// The host's changes as Server-Sent Events (`text/event-stream`).
///
/// Events: `change`, whose data is a `LiveEvent` (a snapshot id and the
/// `ChangeBatch` that makes it of the previous event's) and whose id is
/// that snapshot id;
/// `reload`, which asks the viewer to fetch `GET /api/processes/?host=`
/// again and subscribe anew from its `X-Procmon-Seq`. A comment line every
/// 15 s keeps a quiet stream open.
#[utoipa::path(
    get,
    path = "/api/live/",
    operation_id = "live_changes",
    tag = "processes",
    params(
        LiveQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event seen (browsers send it when they reconnect)"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "A stream of `change` and `reload` events; each `change` event's data is a LiveEvent", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, description = "`host` missing, empty or with spaces around it", body = ErrorBody),
        (status = 401, description = "Not signed in, or the session has ended", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
        (status = 503, description = "The store cannot be read now, or the server is at its connection limit", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(host))]
pub async fn changes(
    State(state): State<AppState>,
    _reader: Reader,
    headers: HeaderMap,
    query: Result<Query<LiveQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let host_id = super::params::host_id(&query.host)?;
    tracing::Span::current().record("host", host_id);
    // An unknown host is a 404 here, as for the listing, not an empty stream.
    super::hosts::summary_of(&state, host_id).await?;

    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(query.since.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let since = last_seen.map(|id| uuid::Uuid::parse_str(id).ok());
    let host = state.live.host(host_id);
    if let Some(Some(since)) = since {
        if host
            .newest()
            .is_none_or(|newest| newest.snapshot.id != since)
        {
            // Another server's viewer, or this server's after a gap: the
            // host's newest snapshot may be one this server never saw.
            crate::relay::catch_up(&state, host_id).await?;
        }
    }
    let subscription = host.subscribe(since.flatten());

    let mut first = VecDeque::new();
    match (since, subscription.missed, &subscription.newest) {
        // Watching from now on.
        (None, _, _) => {}
        (Some(Some(_)), Some(missed), _) => first.extend(missed.iter().map(|e| to_sse(e))),
        (Some(Some(since)), None, Some(newest)) => {
            match crate::relay::resume(&state, host_id, since, newest).await? {
                Some(event) => first.push_back(to_sse(&event)),
                None => first.push_back(reload(Some(newest.id))),
            }
        }
        // A malformed id, or nothing of the host to resume to.
        (Some(_), _, newest) => first.push_back(reload(newest.as_ref().map(|n| n.id))),
    }
    let feed = Feed {
        first,
        told_retry: false,
        receiver: Some(subscription.receiver),
        stopping: state.live.stopping(),
        _viewer: state.metrics.viewer_connected(),
    };
    let sse = Sse::new(futures_util::stream::unfold(feed, Feed::next))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    Ok(if crate::gzip::accepted(&headers) {
        gzip_each_event(sse)
    } else {
        sse
    })
}

/// Compresses the stream as it goes, flushed after every event so none is
/// held back: the general compression layer would buffer (and skips event
/// streams for that reason). One gzip stream for the whole connection, so
/// the field names repeated in every event cost next to nothing; about a
/// quarter of the bytes.
fn gzip_each_event(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(axum::BoxError::from)?;
        encoder.write_all(&chunk)?;
        // A sync flush: everything so far can be decompressed now.
        encoder.flush()?;
        Ok::<_, axum::BoxError>(Bytes::from(std::mem::take(encoder.get_mut())))
    });
    crate::gzip::mark(&mut parts.headers);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// What one viewer's stream still has to send.
struct Feed {
    /// Events owed before live ones: missed ones, or a reload.
    first: VecDeque<Event>,
    /// Whether the reconnection delay went out yet. It rides on the first
    /// event rather than alone: an event without data is one that clients
    /// (and schema checkers) may still hand on, empty.
    told_retry: bool,
    /// Live events; `None` once the stream must end.
    receiver: Option<broadcast::Receiver<Arc<LiveEvent>>>,
    /// The server stopping ends the stream.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Counts the stream as open until it ends or its connection closes
    /// (the feed is dropped either way).
    _viewer: crate::metrics::ViewerGuard,
}

impl Feed {
    async fn next(self) -> Option<(Result<Event, std::convert::Infallible>, Self)> {
        let (event, mut feed) = self.next_event().await?;
        if !feed.told_retry {
            feed.told_retry = true;
            return Some((Ok(event.retry(RECONNECT)), feed));
        }
        Some((Ok(event), feed))
    }

    async fn next_event(mut self) -> Option<(Event, Self)> {
        if let Some(event) = self.first.pop_front() {
            return Some((event, self));
        }
        let receiver = self.receiver.as_mut()?;
        let received = tokio::select! {
            received = receiver.recv() => received,
            _ = self.stopping.wait_for(|&stopping| stopping) => return None,
        };
        match received {
            Ok(event) => Some((to_sse(&event), self)),
            Err(RecvError::Lagged(_)) => {
                // Events were dropped for this viewer: it must reload, and
                // it reconnects once it has (this stream ends here).
                self.receiver = None;
                Some((reload(None), self))
            }
            // The host was removed: nothing more will come.
            Err(RecvError::Closed) => None,
        }
    }
}

/// A `change` event, or a `reload` for a first snapshot (nothing to diff
/// against), with its snapshot's id either way: the viewer resumes after
/// it.
fn to_sse(event: &LiveEvent) -> Event {
    let id = event.snapshot_id.to_string();
    if event.batch.is_none() {
        return reload(Some(event.snapshot_id)).id(id);
    }
    Event::default().event("change").id(id).data(event.json())
}

/// A `reload` event without an id: the viewer fetches the listing, whose
/// `X-Procmon-Seq` says where to resume. `newest` is where the host stands
/// here, if anywhere.
fn reload(newest: Option<uuid::Uuid>) -> Event {
    Event::default()
        .event("reload")
        .data(serde_json::json!({ "snapshot_id": newest }).to_string())
}
