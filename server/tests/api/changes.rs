//! `POST /api/changes/`: a change batch against the last acknowledged
//! snapshot stores exactly what the whole snapshot would have; a batch
//! whose base the server does not hold is 409 `base_unknown` and stores
//! nothing, so a tree is never built on the wrong base.

use crate::common::error_of;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use procmon_agent::{Delivery, SendError, Sender};
use procmon_model::changes::diff;
use procmon_model::fixtures::SimHost;
use procmon_model::{HostLoad, IngestResponse, ProcessListing, Snapshot};
use procmon_server::config::Settings;
use procmon_server::startup::Application;
use secrecy::SecretString;

use crate::common::{spawn_app, spawn_app_with, TestApp};

fn sim(host: &str, processes: usize, seed: u64) -> SimHost {
    // Recent, so that no retention setting ever takes it away mid-test.
    let start = Utc::now() - chrono::Duration::hours(1);
    let start = Utc.timestamp_opt(start.timestamp(), 0).unwrap();
    SimHost::new(host, processes, seed, start)
}

fn load(i: u64) -> HostLoad {
    HostLoad {
        cpu_per_core: vec![i as f32 % 100.0, 3.5],
        memory_used_bytes: 1 << 30,
        memory_available_bytes: (2 << 30) + i,
        swap_total_bytes: 0,
        swap_used_bytes: 0,
        load_average: Some([0.5, 0.25, 0.125]),
    }
}

async fn sender_for(app: &TestApp, host: &str) -> Sender {
    Sender::new(&app.address, SecretString::from(app.key_for(host).await)).unwrap()
}

async fn latest_id(app: &TestApp, host: &str) -> uuid::Uuid {
    let listing: ProcessListing = app.get_processes(host).await.json().await.unwrap();
    listing.snapshot_id
}

#[tokio::test]
async fn batches_store_exactly_what_whole_snapshots_store() {
    let (whole, changes) = tokio::join!(spawn_app(), spawn_app());
    let mut host = sim("host-sim", 300, 11);
    // Busier than a real host, so every kind of change comes up: starts,
    // exits, reused pids, exec, argv rewrites, and moving numbers.
    host.churn.turnover = 0.03;
    host.churn.exec = 0.9;
    let snapshots: Vec<Snapshot> = (0..40)
        .map(|i| {
            if i == 20 {
                host.host.hostname = "renamed".into();
            }
            let mut s = host.next();
            if i % 3 != 0 {
                s.load = Some(load(i));
            }
            s
        })
        .collect();
    for s in &snapshots {
        assert_eq!(whole.post_snapshot(s).await.status(), 201);
    }
    // Over HTTP as the agent sends: zstd bodies, whole first.
    let sender = sender_for(&changes, "host-sim").await;
    sender.send(&snapshots[0]).await.unwrap();
    for pair in snapshots.windows(2) {
        let batch = diff(&pair[0], &pair[1]);
        let answer = sender.deliver(Delivery::Batch(&batch)).await.unwrap();
        assert_eq!(
            answer,
            IngestResponse {
                snapshot_id: pair[1].id,
                stored: true,
                pending_actions: 0,
            }
        );
    }
    for s in &snapshots {
        let expected = whole.listing_at("host-sim", s.collected_at).await;
        assert_eq!(expected["snapshot_id"], s.id.to_string());
        assert_eq!(
            changes.listing_at("host-sim", s.collected_at).await,
            expected,
            "snapshot at {}",
            s.collected_at
        );
    }
    // The host's own facts and meters came through the batches too.
    let hosts: serde_json::Value = changes.get_hosts().await.json().await.unwrap();
    assert_eq!(hosts[0]["host"]["hostname"], "renamed");
    assert_eq!(
        changes.stored_snapshots().await,
        whole.stored_snapshots().await
    );
}

#[tokio::test]
async fn a_lost_or_reordered_batch_is_409_and_the_next_whole_snapshot_mends_it() {
    let app = spawn_app().await;
    let mut host = sim("host-a", 50, 3);
    let s: Vec<Snapshot> = (0..5).map(|_| host.next()).collect();
    assert_eq!(app.post_snapshot(&s[0]).await.status(), 201);
    assert_eq!(app.post_changes(&diff(&s[0], &s[1])).await.status(), 201);

    // Lost: the batch 1 -> 2 never arrived, so 2 -> 3 names a base the
    // server never had.
    let error = error_of(app.post_changes(&diff(&s[2], &s[3])).await, 409).await;
    assert_eq!(error.error, "base_unknown");
    assert!(
        error.message.contains("send a full snapshot"),
        "{}",
        error.message
    );
    assert_eq!(latest_id(&app, "host-a").await, s[1].id, "nothing stored");

    // Reordered: a batch against an older snapshot than the latest.
    let error = error_of(app.post_changes(&diff(&s[0], &s[2])).await, 409).await;
    assert_eq!(error.error, "base_unknown");
    assert_eq!(latest_id(&app, "host-a").await, s[1].id, "nothing stored");

    // The agent sends in full, and batches go on from there.
    assert_eq!(app.post_snapshot(&s[3]).await.status(), 201);
    assert_eq!(app.post_changes(&diff(&s[3], &s[4])).await.status(), 201);
    for (i, snapshot) in s.iter().enumerate() {
        let listing = app.listing_at("host-a", snapshot.collected_at).await;
        // s[2] was never stored: as of its time the host had s[1].
        let shown = if i == 2 { &s[1] } else { snapshot };
        let mut pids: Vec<u64> = listing["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pid"].as_u64().unwrap())
            .collect();
        let mut expected: Vec<u64> = shown.processes.iter().map(|p| p.pid.into()).collect();
        pids.sort_unstable();
        expected.sort_unstable();
        assert_eq!(listing["snapshot_id"], shown.id.to_string());
        assert_eq!(pids, expected);
    }
    assert_eq!(app.stored_snapshots().await, 4);
}

#[tokio::test]
async fn a_batch_for_a_host_never_seen_is_409() {
    let app = spawn_app().await;
    let mut host = sim("host-a", 5, 1);
    let (a, b) = (host.next(), host.next());
    let error = error_of(app.post_changes(&diff(&a, &b)).await, 409).await;
    assert_eq!(error.error, "base_unknown");
    assert_eq!(app.stored_snapshots().await, 0);
}

#[tokio::test]
async fn a_retried_batch_is_201_and_stored_once() {
    let app = spawn_app().await;
    let mut host = sim("host-a", 20, 2);
    let (a, b) = (host.next(), host.next());
    assert_eq!(app.post_snapshot(&a).await.status(), 201);
    let batch = diff(&a, &b);
    for stored in [true, false] {
        let response = app.post_changes(&batch).await;
        assert_eq!(response.status(), 201);
        let answer: IngestResponse = response.json().await.unwrap();
        assert_eq!(answer.stored, stored);
    }
    assert_eq!(app.stored_snapshots().await, 2);
}

#[tokio::test]
async fn a_batch_that_does_not_fit_its_base_is_422_and_stores_nothing() {
    let app = spawn_app().await;
    let mut host = sim("host-a", 20, 4);
    let (a, b) = (host.next(), host.next());
    assert_eq!(app.post_snapshot(&a).await.status(), 201);

    let mut unknown = diff(&a, &b);
    unknown.exited.push(999_999);
    let error = error_of(app.post_changes(&unknown).await, 422).await;
    assert_eq!(error.error, "batch_does_not_fit");
    assert!(error.message.contains("pid 999999"), "{}", error.message);

    let mut twice = diff(&a, &b);
    twice.started.push(a.processes[0].clone());
    let error = error_of(app.post_changes(&twice).await, 422).await;
    assert!(
        error.message.contains("already running"),
        "{}",
        error.message
    );

    let mut too_long = diff(&a, &b);
    too_long.changed.push(procmon_model::ProcessUpdate {
        pid: a.processes[1].pid,
        name: Some("x".repeat(100_000)),
        ..Default::default()
    });
    let error = error_of(app.post_changes(&too_long).await, 422).await;
    assert_eq!(error.error, "invalid_snapshot");
    assert!(error.message.contains(".name"), "{}", error.message);

    let mut other_host = diff(&a, &b);
    other_host.host = Some(procmon_model::fixtures::host("host-b", a.collected_at));
    let error = error_of(app.post_changes(&other_host).await, 422).await;
    assert!(error.message.contains("never changes"), "{}", error.message);

    assert_eq!(app.stored_snapshots().await, 1);
    // And the base is still the base: the right batch applies.
    assert_eq!(app.post_changes(&diff(&a, &b)).await.status(), 201);
}

#[tokio::test]
async fn a_key_of_another_host_cannot_send_its_batches() {
    let app = spawn_app().await;
    let mut host = sim("host-b", 5, 5);
    let (a, b) = (host.next(), host.next());
    assert_eq!(app.post_snapshot(&a).await.status(), 201);
    let response = app
        .anonymous()
        .post(format!("{}/api/changes/", app.address))
        .bearer_auth(&app.agent_key)
        .json(&diff(&a, &b))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response, 403).await.error, "key_for_other_host");
    let response = app
        .anonymous()
        .post(format!("{}/api/changes/", app.address))
        .json(&diff(&a, &b))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response, 401).await.error, "unauthorized");
}

/// A new agent key for host-a.
async fn key_for_host_a(state: &procmon_server::startup::AppState) -> SecretString {
    state
        .agent_keys
        .create(Some("host-a"), "test", Utc::now())
        .await
        .unwrap()
        .key
}

/// A server on `port` (0: any) with its database in `dir`; stops when
/// `stop` is sent and the task ends.
async fn serve_in(
    dir: &std::path::Path,
    port: u16,
) -> (
    procmon_server::startup::AppState,
    u16,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut settings = Settings::with_data_dir(dir);
    settings.listen = format!("127.0.0.1:{port}").parse().unwrap();
    settings.embedded_agent = false;
    settings.ingest_burst = 100_000;
    // Reads without signing in, for the tests that list what is stored.
    settings.no_login = true;
    let application = Application::build(settings).await.expect("server builds");
    let (state, port) = (application.state().clone(), application.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    (state, port, stop, task)
}

#[tokio::test]
async fn a_restarted_server_applies_the_first_batch_to_the_stored_base() {
    let dir = tempfile::tempdir().unwrap();
    let (state, port, stop, task) = serve_in(dir.path(), 0).await;
    let key = key_for_host_a(&state).await;
    let url = format!("http://127.0.0.1:{port}");
    let sender = Sender::new(&url, key.clone()).unwrap();
    let mut host = sim("host-a", 30, 6);
    let s: Vec<Snapshot> = (0..4).map(|_| host.next()).collect();
    sender.send(&s[0]).await.unwrap();
    sender
        .deliver(Delivery::Batch(&diff(&s[0], &s[1])))
        .await
        .unwrap();
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    // The same database, a new server: s[1] is the host's newest there, so
    // a batch against it is applied, with no full resend.
    let (state, port, _stop, _task) = serve_in(dir.path(), 0).await;
    let sender = Sender::new(&format!("http://127.0.0.1:{port}"), key).unwrap();
    assert!(
        sender
            .deliver(Delivery::Batch(&diff(&s[1], &s[2])))
            .await
            .unwrap()
            .stored
    );
    let stored = state.store.snapshot("host-a", None).await.unwrap().unwrap();
    assert_eq!(stored.id, s[2].id);
    let sorted = |mut p: Vec<procmon_model::ProcessSample>| {
        p.sort_by_key(|p| p.pid);
        p
    };
    assert_eq!(sorted(stored.processes), sorted(s[2].processes.clone()));
    // A batch against a base that is no longer the newest is refused.
    let error = sender
        .deliver(Delivery::Batch(&diff(&s[1], &s[3])))
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::BaseUnknown { .. }), "{error:?}");
    assert!(
        sender
            .deliver(Delivery::Batch(&diff(&s[2], &s[3])))
            .await
            .unwrap()
            .stored
    );
}

/// After a restart the live state starts empty, and the first snapshot to
/// arrive may be a late one (an agent's spool emptying): the newest listing
/// is still the store's newest, never that late one held in memory.
#[tokio::test]
async fn after_a_restart_a_late_snapshot_is_not_listed_as_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (state, port, stop, task) = serve_in(dir.path(), 0).await;
    let key = key_for_host_a(&state).await;
    let mut host = sim("host-a", 30, 7);
    let s: Vec<Snapshot> = (0..3).map(|_| host.next()).collect();
    let sender = Sender::new(&format!("http://127.0.0.1:{port}"), key.clone()).unwrap();
    sender.send(&s[0]).await.unwrap();
    sender.send(&s[2]).await.unwrap();
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    let (_state, port, _stop, _task) = serve_in(dir.path(), 0).await;
    let url = format!("http://127.0.0.1:{port}");
    let sender = Sender::new(&url, key).unwrap();
    assert!(sender.send(&s[1]).await.unwrap().stored);
    let newest: ProcessListing = reqwest::get(format!("{url}/api/processes/?host=host-a"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(newest.snapshot_id, s[2].id);
}

/// The embedded agent hands its snapshots over in process: the server has
/// no key for it at all (an HTTP request would be refused), yet its host
/// and snapshots are stored.
#[tokio::test]
async fn the_embedded_agent_stores_its_snapshots_without_http() {
    let app = spawn_app_with(|s| {
        s.embedded_agent = true;
        s.embedded_agent_interval = Duration::from_millis(500);
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let host_id = loop {
        if let Some(id) = app.state.embedded.get() {
            if app.get_processes(id).await.status() == 200 && app.stored_snapshots().await >= 3 {
                break id.to_owned();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the embedded agent stored nothing in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The only keys are the test's own (for host-a): none for the agent.
    let keys: serde_json::Value = app.get("/api/keys/").await.json().await.unwrap();
    let keys = keys.as_array().unwrap();
    assert!(
        keys.iter().all(|k| k["host_id"] != host_id.as_str()),
        "{keys:?}"
    );
    assert!(
        keys.iter().all(|k| k["label"] != "embedded agent"),
        "{keys:?}"
    );
}
