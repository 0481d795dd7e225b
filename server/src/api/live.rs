//! `GET /api/live/?host=…`: a host's changes as they happen, pushed as
//! Server-Sent Events, so the page applies what changed instead of fetching
//! the whole listing every interval.
//!
//! Each event's id is `<epoch>-<seq>` (see [`crate::live`]). A browser that
//! reconnects sends the last one it saw as `Last-Event-ID` (or the page
//! gives it as `?since=`), and is sent what it missed from the host's
//! backlog. When that cannot be done (another run of the server, too far
//! behind, a receiver that lagged, or a first snapshot with nothing to diff
//! against) it is sent `event: reload`, and the page fetches the listing
//! again.

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
    /// The last event seen, `<epoch>-<seq>` (the `X-Procmon-Seq` header of
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
    /// For `change`, a `LiveEvent` as JSON; for `reload`, `{"epoch", "seq"}`:
    /// where the listing to fetch stands.
    data: String,
    /// `<epoch>-<seq>`; absent on a reload outside the host's sequence.
    id: Option<String>,
    /// Milliseconds to wait before reconnecting; on the first event only.
    retry: Option<u64>,
}

/// The host's changes as Server-Sent Events (`text/event-stream`).
///
/// Events: `change`, whose data is a `LiveEvent` (a sequence number and the
/// `ChangeBatch` since the previous event) and whose id is `<epoch>-<seq>`;
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
    let epoch = state.live.epoch().to_owned();
    let since = last_seen.map(|id| {
        parse_event_id(id)
            .filter(|(e, _)| *e == epoch)
            .map(|(_, seq)| seq)
    });
    let host = state.live.host(host_id);
    let subscription = host.subscribe(since.flatten());

    let mut first = VecDeque::new();
    match (since, subscription.missed) {
        // Watching from now on.
        (None, _) => {}
        (Some(Some(_)), Some(missed)) => {
            first.extend(missed.iter().map(|event| to_sse(&epoch, event)));
        }
        // Another run of the server, a malformed id, or too far behind.
        (Some(_), _) => first.push_back(reload(&epoch, subscription.seq)),
    }
    let feed = Feed {
        epoch,
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
    epoch: String,
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
            Ok(event) => {
                let event = to_sse(&self.epoch, &event);
                Some((event, self))
            }
            Err(RecvError::Lagged(_)) => {
                // Events were dropped for this viewer: it must reload, and
                // it reconnects once it has (this stream ends here).
                self.receiver = None;
                Some((reload(&self.epoch, 0), self))
            }
            // The host was removed: nothing more will come.
            Err(RecvError::Closed) => None,
        }
    }
}

/// A `change` event, or a `reload` for a first snapshot (nothing to diff
/// against), with the id `<epoch>-<seq>` either way: the viewer resumes
/// after it.
fn to_sse(epoch: &str, event: &LiveEvent) -> Event {
    let id = format!("{epoch}-{}", event.seq);
    if event.batch.is_none() {
        return Event::default()
            .event("reload")
            .id(id)
            .data(reload_data(epoch, event.seq));
    }
    Event::default().event("change").id(id).data(event.json())
}

/// A `reload` event without an id: the viewer fetches the listing, whose
/// `X-Procmon-Seq` says where to resume.
fn reload(epoch: &str, seq: u64) -> Event {
    Event::default()
        .event("reload")
        .data(reload_data(epoch, seq))
}

fn reload_data(epoch: &str, seq: u64) -> String {
    serde_json::json!({ "epoch": epoch, "seq": seq }).to_string()
}

/// Reads `<epoch>-<seq>`.
pub fn parse_event_id(id: &str) -> Option<(String, u64)> {
    let (epoch, seq) = id.rsplit_once('-')?;
    Some((epoch.to_owned(), seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_read_back() {
        assert_eq!(parse_event_id("abc123-42"), Some(("abc123".to_owned(), 42)));
        assert_eq!(parse_event_id("abc123"), None);
        assert_eq!(parse_event_id("abc-x"), None);
    }
}
