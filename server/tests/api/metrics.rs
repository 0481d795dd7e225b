//! `GET /metrics`: read with the metrics token or an admin's session and
//! nothing else, in a text format a Prometheus parser reads, with counters
//! that move by exactly what agents sent; the token is never printed.

use crate::common::error_of;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use procmon_model::{IngestResponse, Snapshot};
use procmon_server::clock::{Clock, ManualClock};
use procmon_server::store::accounts::Role;
use prometheus_parse::{Scrape, Value};
use secrecy::SecretString;

use crate::common::{sample_snapshot, spawn_app_with, spawn_app_with_clock, TestApp};

const TOKEN: &str = "metrics-token-for-tests-0123456789";

async fn spawn_with_token() -> TestApp {
    spawn_app_with(|settings| settings.metrics_token = Some(SecretString::from(TOKEN))).await
}

/// `GET /metrics` with `token` as the bearer token, from a client with no
/// session.
async fn get_with_token(app: &TestApp, token: &str) -> reqwest::Response {
    app.anonymous()
        .get(format!("{}/metrics", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

/// The metrics, read with the token and parsed.
async fn scrape(app: &TestApp) -> Metrics {
    let response = get_with_token(app, TOKEN).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Metrics::parse(&response.text().await.unwrap())
}

/// A scrape, by metric name and labels.
struct Metrics {
    scrape: Scrape,
    text: String,
}

impl Metrics {
    fn parse(text: &str) -> Self {
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|e| panic!("not the Prometheus text format ({e}):\n{text}"));
        Self {
            scrape,
            text: text.to_owned(),
        }
    }

    /// The value of the series `metric{labels}`, exactly those labels;
    /// `None` when there is no such series.
    fn get(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: HashMap<&str, &str> = labels.iter().copied().collect();
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .find(|s| {
                let mut names: Vec<&String> = s.labels.keys().collect();
                names.sort();
                let mut expected: Vec<&&str> = wanted.keys().collect();
                expected.sort();
                names.len() == expected.len()
                    && wanted.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                other => panic!("{metric} is {other:?}, not one number"),
            })
    }

    /// As [`Metrics::get`], a series that must be there.
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(metric, labels)
            .unwrap_or_else(|| panic!("no {metric}{labels:?} in\n{}", self.text))
    }

    /// A refusal counter: absent until the first refusal for its reason.
    fn rejected(&self, reason: &str) -> f64 {
        self.get("procmon_ingest_rejected_total", &[("reason", reason)])
            .unwrap_or(0.0)
    }

    /// The number on the line of `series` (a histogram's `_sum`,
    /// `_count`), exactly as written.
    fn line(&self, series: &str) -> f64 {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{}", self.text))
            .parse()
            .unwrap()
    }

    fn ingested(&self, kind: &str, outcome: &str) -> f64 {
        self.value(
            "procmon_snapshots_ingested_total",
            &[("kind", kind), ("outcome", outcome)],
        )
    }
}

/// A snapshot of host-a whose agent sends every minute, so that it counts
/// as connected for the whole test however slow the machine.
fn minutely(count: u32) -> Snapshot {
    let mut snapshot = sample_snapshot("host-a", count);
    snapshot.interval_ms = 60_000;
    snapshot
}

#[tokio::test]
async fn only_the_token_or_an_admin_reads_the_metrics() {
    let app = spawn_with_token().await;
    let url = format!("{}/metrics", app.address);

    let anonymous = app.anonymous().get(&url).send().await.unwrap();
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let error = error_of(anonymous, 401).await;
    assert_eq!(error.error, "unauthorized");
    assert!(error.message.contains("metrics_token"), "{}", error.message);
    assert!(error.message.contains("admin"), "{}", error.message);

    let wrong = error_of(
        get_with_token(&app, "metrics-token-for-tests-0123456780").await,
        401,
    )
    .await;
    assert_eq!(wrong.error, "unauthorized");
    let agent_key = error_of(get_with_token(&app, &app.agent_key).await, 401).await;
    assert_eq!(
        agent_key.error, "unauthorized",
        "an agent key is no metrics token"
    );

    scrape(&app).await;

    // The test client is signed in as an admin.
    let admin = app.client.get(&url).send().await.unwrap();
    assert_eq!(admin.status(), 200);
    Metrics::parse(&admin.text().await.unwrap());

    app.add_user("vera", Role::Viewer, "viewer-pass-1").await;
    let viewer = app.signed_in_client("vera", "viewer-pass-1").await;
    let refused = error_of(viewer.get(&url).send().await.unwrap(), 401).await;
    assert_eq!(refused.error, "unauthorized");
}

#[tokio::test]
async fn without_a_token_set_only_admins_read_them() {
    let app = spawn_app_with(|_| {}).await;
    let refused = error_of(get_with_token(&app, TOKEN).await, 401).await;
    assert_eq!(refused.error, "unauthorized");
    let admin = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
}

#[tokio::test]
async fn counters_move_by_exactly_what_agents_sent() {
    let app = spawn_with_token().await;
    let before = scrape(&app).await;
    assert_eq!(before.value("procmon_agents_connected", &[]), 0.0);

    // Stored, then the same again (a retry), then a batch against it.
    let first = minutely(5);
    let stored: IngestResponse = app.post_snapshot(&first).await.json().await.unwrap();
    assert!(stored.stored);
    let retry: IngestResponse = app.post_snapshot(&first).await.json().await.unwrap();
    assert!(!retry.stored);
    let mut next = first.clone();
    next.id = uuid::Uuid::new_v4();
    next.collected_at += chrono::Duration::seconds(60);
    next.processes[1].cpu_percent += 7.0;
    next.processes.pop();
    let batch = procmon_model::changes::diff(&first, &next);
    assert_eq!(app.post_changes(&batch).await.status(), 201);

    // Refused in ingest: a base the server does not hold, a pid twice.
    let mut stale = batch.clone();
    stale.id = uuid::Uuid::new_v4();
    stale.base_id = uuid::Uuid::new_v4();
    assert_eq!(
        error_of(app.post_changes(&stale).await, 409).await.error,
        "base_unknown"
    );
    let mut twice = minutely(3);
    twice.processes[2].pid = twice.processes[1].pid;
    assert_eq!(
        error_of(app.post_snapshot(&twice).await, 422).await.error,
        "invalid_snapshot"
    );
    // Refused before ingest: no key, and a body that is not JSON.
    let no_key = app
        .anonymous()
        .post(format!("{}/api/processes/", app.address))
        .json(&minutely(2))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(no_key, 401).await.error, "unauthorized");
    let not_json = app
        .post_raw(
            "{\"version\": ",
            Some("application/json"),
            Some(&app.agent_key),
        )
        .await;
    assert_eq!(error_of(not_json, 400).await.error, "invalid_json");

    let after = scrape(&app).await;
    let moved = |f: &dyn Fn(&Metrics) -> f64| f(&after) - f(&before);
    assert_eq!(moved(&|m| m.ingested("snapshot", "stored")), 1.0);
    assert_eq!(moved(&|m| m.ingested("snapshot", "already_stored")), 1.0);
    assert_eq!(moved(&|m| m.ingested("batch", "stored")), 1.0);
    assert_eq!(moved(&|m| m.ingested("batch", "already_stored")), 0.0);
    for reason in [
        "base_unknown",
        "invalid_snapshot",
        "unauthorized",
        "invalid_json",
    ] {
        assert_eq!(moved(&|m| m.rejected(reason)), 1.0, "{reason}");
    }
    assert_eq!(moved(&|m| m.rejected("snapshot_id_conflict")), 0.0);
    // Five deliveries reached ingest, four of them the store: the batch
    // with an unknown base too, since the store checks a batch's base.
    assert_eq!(
        moved(&|m| m.value("procmon_ingest_seconds_count", &[])),
        5.0
    );
    assert_eq!(
        moved(&|m| m.value("procmon_store_write_seconds_count", &[])),
        4.0
    );
    let slowest_bucket = |m: &Metrics| {
        m.scrape
            .samples
            .iter()
            .find(|s| s.metric == "procmon_store_write_seconds")
            .map(|s| match &s.value {
                Value::Histogram(buckets) => buckets.last().unwrap().count,
                other => panic!("not a histogram: {other:?}"),
            })
            .expect("the store write histogram")
    };
    assert_eq!(moved(&slowest_bucket), 4.0, "+Inf counts every write");
    assert!(after.value("procmon_store_write_seconds_sum", &[]) > 0.0);
    // Three answers of 2xx and four of 4xx, and the first scrape's 200.
    let class = |c: &'static str| {
        move |m: &Metrics| m.value("procmon_http_requests_total", &[("status_class", c)])
    };
    assert_eq!(moved(&class("2xx")), 4.0);
    assert_eq!(moved(&class("4xx")), 4.0);
    assert_eq!(moved(&class("5xx")), 0.0);
    assert_eq!(after.value("procmon_agents_connected", &[]), 1.0);
    assert_eq!(
        after.value("procmon_maintenance_runs_total", &[("outcome", "error")]),
        0.0
    );
}

#[tokio::test]
async fn open_live_streams_are_counted_until_they_close() {
    let app = spawn_with_token().await;
    assert_eq!(app.post_snapshot(&minutely(3)).await.status(), 201);
    let viewers = |m: Metrics| m.value("procmon_viewers_connected", &[]);
    assert_eq!(viewers(scrape(&app).await), 0.0);
    let open = || {
        app.client
            .get(format!("{}/api/live/", app.address))
            .query(&[("host", "host-a")])
            .send()
    };
    let (one, two) = (open().await.unwrap(), open().await.unwrap());
    assert_eq!(one.status(), 200);
    assert_eq!(two.status(), 200);
    assert_eq!(viewers(scrape(&app).await), 2.0);
    // A viewer that goes away without a word: its connection closes.
    drop(one);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = viewers(scrape(&app).await);
        if now == 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "still {now} viewers after 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(two);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_runs_and_dropped_blocks_are_counted() {
    let clock = Arc::new(ManualClock::new(Utc::now() - chrono::Duration::hours(5)));
    let app = spawn_app_with_clock(Some(clock.clone()), |s| {
        s.metrics_token = Some(SecretString::from(TOKEN));
        s.retention = Duration::from_secs(2 * 3600);
        s.maintenance_every = Duration::from_millis(100);
    })
    .await;
    let mut old = minutely(4);
    old.collected_at = clock.now();
    assert_eq!(app.post_snapshot(&old).await.status(), 201);
    clock.advance(chrono::Duration::hours(5));
    let mut new = minutely(4);
    new.collected_at = clock.now();
    assert_eq!(app.post_snapshot(&new).await.status(), 201);

    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = scrape(&app).await;
        if metrics.value("procmon_retention_blocks_dropped_total", &[]) >= 1.0 {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "no block dropped within 20 s:\n{}",
            metrics.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let runs = |outcome| metrics.value("procmon_maintenance_runs_total", &[("outcome", outcome)]);
    assert!(runs("ok") >= 1.0);
    assert_eq!(runs("error"), 0.0);
    // Every run is timed; the count and the time are recorded one after
    // the other, so a scrape may fall between them.
    let timed = metrics.value("procmon_maintenance_seconds_count", &[]);
    assert!((timed - runs("ok")).abs() <= 1.0, "{}", metrics.text);
}

/// The token given in the environment works, and is printed nowhere: not
/// on the console, not in the log at debug level, not in `--help`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_never_printed() {
    const BINARY: &str = env!("CARGO_BIN_EXE_procmon-server");
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut server = crate::common::KillOnDrop(
        Command::new(BINARY)
            .args(["--listen", "127.0.0.1:0", "--no-agent", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("PROCMON_METRICS_TOKEN", TOKEN)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("start procmon-server"),
    );
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("Ctrl-C") {
        assert!(stdout.read_line(&mut printed).unwrap() > 0, "{printed}");
    }
    let url = printed
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("procmon is running at "))
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let read = client
        .get(format!("{url}metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    Metrics::parse(&read.text().await.unwrap());
    let wrong = client
        .get(format!("{url}metrics"))
        .bearer_auth(format!("{TOKEN}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let stopped = Command::new("kill")
        .args(["-INT", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    stdout.read_to_string(&mut printed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("DEBUG"), "the log is at debug level: {log}");
    assert!(!printed.contains(TOKEN), "{printed}");
    assert!(!log.contains(TOKEN), "{log}");

    let help = Command::new(BINARY)
        .arg("--help")
        .env("PROCMON_METRICS_TOKEN", TOKEN)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("PROCMON_METRICS_TOKEN"), "{help}");
    assert!(!help.contains(TOKEN), "{help}");
}

/// What agents say their spools hold, in the headers of their deliveries,
/// fills the spool histograms; a malformed report is refused before the
/// body is read, saying which header, and stores nothing.
#[tokio::test]
async fn agents_spool_reports_are_counted_and_malformed_ones_refused() {
    let app = spawn_with_token().await;
    let first = minutely(4);
    let key = app.key_for(&first.host.id).await;
    let post = |snapshot: Snapshot, waiting: &'static str, bytes: &'static str| {
        app.anonymous()
            .post(format!("{}/api/processes/", app.address))
            .bearer_auth(key.clone())
            .header(procmon_model::SPOOL_WAITING_HEADER, waiting)
            .header(procmon_model::SPOOL_BYTES_HEADER, bytes)
            .json(&snapshot)
            .send()
    };
    assert_eq!(
        post(first.clone(), "7", "9000").await.unwrap().status(),
        201
    );
    let mut second = minutely(4);
    second.collected_at += chrono::Duration::seconds(60);
    assert_eq!(post(second.clone(), "0", "0").await.unwrap().status(), 201);

    let mut third = minutely(4);
    third.collected_at += chrono::Duration::seconds(120);
    let refused = error_of(post(third, "lots", "0").await.unwrap(), 400).await;
    assert_eq!(refused.error, "invalid_header");
    assert!(
        refused
            .message
            .contains(procmon_model::SPOOL_WAITING_HEADER)
            && refused.message.contains("lots"),
        "{}",
        refused.message
    );
    assert_eq!(app.stored_snapshots().await, 2);

    let metrics = scrape(&app).await;
    assert_eq!(metrics.line("procmon_agent_spool_waiting_count"), 2.0);
    assert_eq!(metrics.line("procmon_agent_spool_waiting_sum"), 7.0);
    assert_eq!(
        metrics.line("procmon_agent_spool_waiting_bucket{le=\"0\"}"),
        1.0
    );
    assert_eq!(metrics.line("procmon_agent_spool_bytes_sum"), 9000.0);
    assert_eq!(metrics.value("procmon_ingest_in_flight", &[]), 0.0);
}
