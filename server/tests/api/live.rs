//! `GET /api/live/?host=…`: a host's changes pushed as Server-Sent Events,
//! resumed after a reconnect, or a `reload` when they cannot be; and the
//! listing's `ETag` and `X-Procmon-Seq` that a viewer starts from.

use std::time::Duration;

use chrono::TimeDelta;
use procmon_model::Snapshot;
use serde_json::Value;

use crate::common::{sample_snapshot, spawn_app, TestApp};

/// One Server-Sent Event as read off the wire.
#[derive(Debug, Default)]
pub(super) struct SseEvent {
    pub(super) event: String,
    pub(super) id: Option<String>,
    pub(super) data: String,
}

impl SseEvent {
    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }
}

/// Reads events off an open `text/event-stream` response, gzipped.
pub(super) struct EventReader {
    response: reqwest::Response,
    gunzip: flate2::write::GzDecoder<Vec<u8>>,
    buffer: String,
}

impl EventReader {
    pub(super) async fn open(
        app: &TestApp,
        since: Option<&str>,
        last_event_id: Option<&str>,
    ) -> EventReader {
        let mut request = app
            .client
            .get(format!("{}/api/live/", app.address))
            .query(&[("host", "host-a")])
            .header("accept-encoding", "gzip");
        if let Some(since) = since {
            request = request.query(&[("since", since)]);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/event-stream");
        // Compressed, yet each event arrives whole (see `next`).
        assert_eq!(headers["content-encoding"], "gzip");
        EventReader {
            response,
            gunzip: flate2::write::GzDecoder::new(Vec::new()),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), waiting at most 10 s.
    pub(super) async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(Duration::from_secs(10), self.read())
            .await
            .expect("an event within 10 s")
    }

    async fn read(&mut self) -> SseEvent {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                for line in block.lines() {
                    match line.split_once(':') {
                        Some(("event", v)) => event.event = v.trim_start().to_owned(),
                        Some(("id", v)) => event.id = Some(v.trim_start().to_owned()),
                        Some(("data", v)) => event.data.push_str(v.trim_start()),
                        _ => {}
                    }
                }
                if !event.event.is_empty() || !event.data.is_empty() {
                    return event;
                }
            }
            let chunk = self
                .response
                .chunk()
                .await
                .expect("the stream reads")
                .expect("the stream stays open");
            use std::io::Write;
            self.gunzip.write_all(&chunk).unwrap();
            self.gunzip.flush().unwrap();
            let text = std::mem::take(self.gunzip.get_mut());
            self.buffer.push_str(std::str::from_utf8(&text).unwrap());
        }
    }
}

/// Posts `count` snapshots of host-a, each a second after the previous,
/// the last with one more process; returns the last.
pub(super) async fn post_more(app: &TestApp, after: &Snapshot, count: usize) -> Snapshot {
    let mut snapshot = after.clone();
    for _ in 0..count {
        let mut next = snapshot.clone();
        next.id = uuid::Uuid::new_v4();
        next.collected_at = snapshot.collected_at + TimeDelta::seconds(1);
        let mut started = next.processes[1].clone();
        started.pid = next.processes.iter().map(|p| p.pid).max().unwrap() + 1;
        next.processes.push(started);
        next.processes[0].cpu_percent += 1.0;
        assert_eq!(app.post_snapshot(&next).await.status(), 201);
        snapshot = next;
    }
    snapshot
}

async fn listing_seq(app: &TestApp) -> String {
    let response = app.get_processes("host-a").await;
    assert_eq!(response.status(), 200);
    response.headers()["x-procmon-seq"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_viewer_is_pushed_what_changed_after_the_listing_it_read() {
    let app = spawn_app().await;
    let first = sample_snapshot("host-a", 20);
    assert_eq!(app.post_snapshot(&first).await.status(), 201);
    let seq = listing_seq(&app).await;
    assert_eq!(seq, first.id.to_string());

    let mut events = EventReader::open(&app, Some(&seq), None).await;
    let latest = post_more(&app, &first, 1).await;
    let event = events.next().await;
    assert_eq!(event.event, "change");
    assert_eq!(event.id, Some(latest.id.to_string()));
    let body = event.json();
    assert_eq!(body["snapshot_id"], latest.id.to_string());
    let started = body["batch"]["started"].as_array().unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["pid"], latest.processes.last().unwrap().pid);
    assert_eq!(body["batch"]["changed"][0]["pid"], first.processes[0].pid);
    assert!(body["batch"].get("exited").is_none(), "nothing exited");
}

#[tokio::test]
async fn a_reconnecting_viewer_is_sent_what_it_missed() {
    let app = spawn_app().await;
    let first = sample_snapshot("host-a", 10);
    assert_eq!(app.post_snapshot(&first).await.status(), 201);
    let seq = listing_seq(&app).await;
    let mut ids = Vec::new();
    let mut last = first;
    for _ in 0..3 {
        last = post_more(&app, &last, 1).await;
        ids.push(last.id);
    }

    // Last-Event-ID (what EventSource sends) wins over ?since=.
    let mut events = EventReader::open(&app, Some("not an id"), Some(&seq)).await;
    for id in ids {
        let event = events.next().await;
        assert_eq!(event.event, "change");
        assert_eq!(event.id, Some(id.to_string()));
    }
}

#[tokio::test]
async fn a_viewer_behind_the_backlog_is_sent_one_change_from_the_stored_history() {
    let app = spawn_app().await;
    let first = sample_snapshot("host-a", 10);
    assert_eq!(app.post_snapshot(&first).await.status(), 201);
    let latest = post_more(&app, &first, 70).await;
    let mut events = EventReader::open(&app, Some(&first.id.to_string()), None).await;
    let event = events.next().await;
    assert_eq!(event.event, "change", "older than the backlog, yet stored");
    assert_eq!(event.id, Some(latest.id.to_string()));
    let batch = &event.json()["batch"];
    assert_eq!(batch["base_id"], first.id.to_string());
    assert_eq!(batch["started"].as_array().unwrap().len(), 70);
}

#[tokio::test]
async fn a_viewer_whose_snapshot_is_not_kept_reloads() {
    let app = spawn_app().await;
    let first = sample_snapshot("host-a", 10);
    assert_eq!(app.post_snapshot(&first).await.status(), 201);

    // An id of an earlier version of the server.
    let mut events = EventReader::open(&app, Some("0123456789ab-1"), None).await;
    assert_eq!(events.next().await.event, "reload");

    let mut events = EventReader::open(&app, None, Some("not an id")).await;
    assert_eq!(events.next().await.event, "reload");

    let never_stored = uuid::Uuid::new_v4().to_string();
    let mut events = EventReader::open(&app, Some(&never_stored), None).await;
    let event = events.next().await;
    assert_eq!(event.event, "reload", "a snapshot the store does not keep");
    assert_eq!(event.json()["snapshot_id"], first.id.to_string());
}

#[tokio::test]
async fn a_first_snapshot_since_the_server_started_asks_viewers_to_reload() {
    let app = spawn_app().await;
    // A host known to the store, whose first snapshot since this server
    // started has nothing to be diffed against.
    let mut events = {
        let first = sample_snapshot("host-a", 5);
        // The host must exist for the stream to be opened.
        assert_eq!(app.post_snapshot(&first).await.status(), 201);
        app.state.live.remove("host-a");
        EventReader::open(&app, None, None).await
    };
    let next = post_more(&app, &sample_snapshot("host-a", 5), 1).await;
    let event = events.next().await;
    assert_eq!(event.event, "reload");
    assert_eq!(
        event.id,
        Some(next.id.to_string()),
        "a reload of a first snapshot can be resumed after"
    );
    assert_eq!(listing_seq(&app).await, next.id.to_string());
}

#[tokio::test]
async fn the_listing_is_not_sent_again_when_it_did_not_change() {
    let app = spawn_app().await;
    let first = sample_snapshot("host-a", 10);
    assert_eq!(app.post_snapshot(&first).await.status(), 201);
    let response = app.get_processes("host-a").await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", first.id));
    assert_eq!(response.headers()["cache-control"], "no-cache");

    let again = |etag: String| {
        app.client
            .get(format!("{}/api/processes/", app.address))
            .query(&[("host", "host-a")])
            .header("if-none-match", etag)
            .send()
    };
    let response = again(etag.clone()).await.unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
    assert!(response.headers().contains_key("x-procmon-seq"));
    assert!(response.bytes().await.unwrap().is_empty());

    post_more(&app, &first, 1).await;
    let response = again(etag).await.unwrap();
    assert_eq!(response.status(), 200, "a new snapshot is sent in full");

    // A past listing never names a live event.
    let at = (first.collected_at + TimeDelta::milliseconds(500)).to_rfc3339();
    let response = app
        .get_with_query("/api/processes/", &[("host", "host-a"), ("at", &at)])
        .await;
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("x-procmon-seq"));
    assert!(!response.headers().contains_key("etag"));
}

#[tokio::test]
async fn the_stream_needs_a_session_and_a_known_host() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_snapshot(&sample_snapshot("host-a", 3))
            .await
            .status(),
        201
    );
    let response = app
        .anonymous()
        .get(format!("{}/api/live/?host=host-a", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .get_with_query("/api/live/", &[("host", "no-such-host")])
        .await;
    assert_eq!(response.status(), 404);
    let response = app.get("/api/live/").await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_stopping_server_ends_the_streams_without_waiting_out_its_grace() {
    use secrecy::ExposeSecret;
    let data = tempfile::tempdir().unwrap();
    let mut settings = procmon_server::config::Settings::with_data_dir(data.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    settings.no_login = true;
    let grace = settings.shutdown_grace;
    let application = procmon_server::startup::Application::build(settings)
        .await
        .unwrap();
    let address = application.local_url();
    let key = application
        .state()
        .agent_keys
        .create(Some("host-a"), "test", chrono::Utc::now())
        .await
        .unwrap()
        .key;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let posted = client
        .post(format!("{address}api/processes/"))
        .bearer_auth(key.expose_secret())
        .json(&sample_snapshot("host-a", 3))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let mut stream = client
        .get(format!("{address}api/live/?host=host-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let asked = std::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(grace, server)
        .await
        .expect("the server stopped within its grace")
        .unwrap()
        .unwrap();
    assert!(
        asked.elapsed() < grace / 2,
        "an open event stream held the shutdown for {:?}",
        asked.elapsed()
    );
    // The stream ended rather than hanging.
    while let Ok(Some(_)) = stream.chunk().await {}
}
