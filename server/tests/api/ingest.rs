//! `POST /api/processes/`: keys, bad bodies, limits, retries. Every refused
//! request must leave what is stored untouched.

use crate::common::error_of;
use procmon_model::{ErrorBody, IngestResponse, ProcessListing};
use serde_json::Value;

use crate::common::{sample_snapshot, spawn_app, spawn_app_with, TestApp};

/// Posts one good snapshot first, so each refusal can be checked to leave it
/// whole.
async fn app_with_one_snapshot() -> (TestApp, procmon_model::Snapshot) {
    let app = spawn_app().await;
    let snapshot = sample_snapshot("host-a", 5);
    assert_eq!(app.post_snapshot(&snapshot).await.status(), 201);
    (app, snapshot)
}

async fn assert_untouched(app: &TestApp, snapshot: &procmon_model::Snapshot) {
    assert_eq!(app.stored_snapshots().await, 1);
    let listing: ProcessListing = app.get_processes("host-a").await.json().await.unwrap();
    assert_eq!(listing.snapshot_id, snapshot.id);
}

#[tokio::test]
async fn a_snapshot_is_stored_with_201() {
    let app = spawn_app().await;
    let snapshot = sample_snapshot("host-a", 5);
    let response = app.post_snapshot(&snapshot).await;
    assert_eq!(response.status(), 201);
    let body: IngestResponse = response.json().await.unwrap();
    assert_eq!(
        body,
        IngestResponse {
            snapshot_id: snapshot.id,
            stored: true,
            pending_actions: 0,
        }
    );
}

#[tokio::test]
async fn a_repeated_snapshot_id_is_stored_once() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let again = app.post_snapshot(&snapshot).await;
    assert_eq!(again.status(), 201);
    let body: IngestResponse = again.json().await.unwrap();
    assert!(!body.stored, "the retry must say it was stored before");
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test]
async fn a_snapshot_id_taken_by_another_host_is_409() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let mut other = sample_snapshot("host-b", 3);
    other.id = snapshot.id;
    let error = error_of(app.post_snapshot(&other).await, 409).await;
    assert_eq!(error.error, "snapshot_id_conflict");
    assert_untouched(&app, &snapshot).await;
    assert_eq!(app.get_processes("host-b").await.status(), 404);
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_401() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let body = serde_json::to_vec(&sample_snapshot("host-a", 1)).unwrap();
    let response = app
        .post_raw(body, Some("application/json"), Some("not-the-key"))
        .await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let error = error_of(response, 401).await;
    assert_eq!(error.error, "unauthorized");
    assert!(
        error
            .message
            .contains("agent key is missing, wrong or revoked"),
        "{}",
        error.message
    );
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test]
async fn a_missing_key_is_refused_with_401_saying_so() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let body = serde_json::to_vec(&sample_snapshot("host-a", 1)).unwrap();
    let error = error_of(
        app.post_raw(body, Some("application/json"), None).await,
        401,
    )
    .await;
    assert!(
        error
            .message
            .contains("agent key is missing, wrong or revoked"),
        "{}",
        error.message
    );

    let malformed = app
        .client
        .post(format!("{}/api/processes/", app.address))
        .header("authorization", format!("Basic {}", app.agent_key))
        .json(&sample_snapshot("host-a", 1))
        .send()
        .await
        .unwrap();
    let error = error_of(malformed, 401).await;
    assert!(error.message.contains("Bearer"), "{}", error.message);
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test]
async fn a_session_does_not_let_anyone_send() {
    let (app, snapshot) = app_with_one_snapshot().await;
    // The test app's client is signed in (as an admin); without the agent
    // key its snapshot is refused all the same.
    let response = app
        .client
        .post(format!("{}/api/processes/", app.address))
        .json(&sample_snapshot("host-a", 1))
        .send()
        .await
        .unwrap();
    error_of(response, 401).await;
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test]
async fn malformed_json_is_400_with_where_it_broke() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let key = app.agent_key.clone();
    let response = app
        .post_raw(
            r#"{"version": 1, "id": "#,
            Some("application/json"),
            Some(&key),
        )
        .await;
    let error = error_of(response, 400).await;
    assert_eq!(error.error, "invalid_json");
    assert!(error.message.contains("line 1 column"), "{}", error.message);
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test]
async fn a_missing_field_is_422_naming_it() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let mut body: Value = serde_json::to_value(sample_snapshot("host-a", 3)).unwrap();
    body["processes"][2]
        .as_object_mut()
        .unwrap()
        .remove("start_time");
    let key = app.agent_key.clone();
    let response = app
        .post_raw(body.to_string(), Some("application/json"), Some(&key))
        .await;
    let error = error_of(response, 422).await;
    assert_eq!(error.error, "schema_mismatch");
    assert!(error.message.contains("processes[2]"), "{}", error.message);
    assert!(
        error.message.contains("missing field `start_time`"),
        "{}",
        error.message
    );
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test]
async fn a_wrong_type_is_422_naming_the_field() {
    let app = spawn_app().await;
    let mut body: Value = serde_json::to_value(sample_snapshot("host-a", 2)).unwrap();
    body["processes"][1]["pid"] = Value::String("twelve".into());
    let key = app.agent_key.clone();
    let response = app
        .post_raw(body.to_string(), Some("application/json"), Some(&key))
        .await;
    let error = error_of(response, 422).await;
    assert!(
        error.message.contains("processes[1].pid"),
        "{}",
        error.message
    );
    assert_eq!(app.stored_snapshots().await, 0);
}

#[tokio::test]
async fn an_oversized_body_is_413_and_says_the_limit() {
    let app = spawn_app_with(|s| s.body_limit = 4096).await;
    let small = sample_snapshot("host-a", 2);
    assert_eq!(app.post_snapshot(&small).await.status(), 201);
    let big = sample_snapshot("host-a", 200);
    assert!(serde_json::to_vec(&big).unwrap().len() > 4096);
    let error = error_of(app.post_snapshot(&big).await, 413).await;
    assert_eq!(error.error, "payload_too_large");
    assert!(error.message.contains("4096 bytes"), "{}", error.message);
    assert_eq!(app.stored_snapshots().await, 1);
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let body = serde_json::to_vec(&sample_snapshot("host-a", 1)).unwrap();
    let key = app.agent_key.clone();
    let error = error_of(
        app.post_raw(body, Some("text/plain"), Some(&key)).await,
        415,
    )
    .await;
    assert!(
        error.message.contains("application/json"),
        "{}",
        error.message
    );
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test]
async fn an_unknown_wire_version_is_422_saying_which_is_spoken() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let mut newer = sample_snapshot("host-a", 1);
    newer.version = procmon_model::WIRE_VERSION + 1;
    let error = error_of(app.post_snapshot(&newer).await, 422).await;
    assert_eq!(error.error, "invalid_snapshot");
    assert!(
        error.message.contains(&format!(
            "speaks snapshot version {}",
            procmon_model::WIRE_VERSION
        )),
        "{}",
        error.message
    );
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test]
async fn hostile_snapshots_are_422_and_store_nothing() {
    let (app, snapshot) = app_with_one_snapshot().await;

    let mut twice = sample_snapshot("host-a", 3);
    twice.processes[2].pid = twice.processes[0].pid;
    let error = error_of(app.post_snapshot(&twice).await, 422).await;
    assert!(error.message.contains("appears twice"), "{}", error.message);

    let mut no_id = sample_snapshot("", 1);
    no_id.host.id = "   ".into();
    let error = error_of(app.post_snapshot(&no_id).await, 422).await;
    assert!(error.message.contains("host.id"), "{}", error.message);

    let mut long = sample_snapshot("host-a", 2);
    long.processes[1].cmd = vec!["x".repeat(300 * 1024)];
    let error = error_of(app.post_snapshot(&long).await, 422).await;
    assert!(
        error.message.contains("processes[1] (pid 2).cmd"),
        "{}",
        error.message
    );

    let spaced = sample_snapshot(" host-a ", 1);
    let error = error_of(app.post_snapshot(&spaced).await, 422).await;
    assert!(
        error.message.contains("has spaces at its start or end"),
        "{}",
        error.message
    );

    let mut hot = sample_snapshot("host-a", 2);
    hot.processes[1].cpu_percent = 3e38;
    let error = error_of(app.post_snapshot(&hot).await, 422).await;
    assert!(
        error.message.contains("cpu_percent is 3") && error.message.contains("409600"),
        "{}",
        error.message
    );

    assert_untouched(&app, &snapshot).await;
}

/// The hostile client's find: 8 million empty arguments are a 24 MB body
/// (under the 32 MiB limit) that counts as a 0-byte command line, and cost
/// hundreds of MB to read. It is refused while being read.
#[tokio::test]
async fn millions_of_empty_arguments_are_refused_quickly() {
    let (app, snapshot) = app_with_one_snapshot().await;
    let mut body = serde_json::to_string(&sample_snapshot("host-a", 1)).unwrap();
    let args = format!("\"cmd\":[{}]", vec!["\"\""; 8_000_000].join(","));
    let start = body.find("\"cmd\":[").unwrap();
    let end = start + body[start..].find(']').unwrap() + 1;
    body.replace_range(start..end, &args);
    assert!(body.len() > 24_000_000);

    let started = std::time::Instant::now();
    let response = app
        .post_raw(body, Some("application/json"), Some(&app.agent_key))
        .await;
    let took = started.elapsed();
    let error = error_of(response, 422).await;
    assert!(
        error.message.contains("more than the 4096 arguments"),
        "{}",
        error.message
    );
    // Generous: reading the 24 MB takes a fraction of this even unoptimised.
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    eprintln!("8 million empty arguments refused in {took:?}");

    // Spread over processes, each under the per-process count, the total
    // is refused as well.
    let mut many = sample_snapshot("host-a", 300);
    for p in &mut many.processes {
        p.cmd = vec![String::new(); 4000];
    }
    let error = error_of(app.post_snapshot(&many).await, 422).await;
    assert!(
        error.message.contains("more than the 1000000 arguments"),
        "{}",
        error.message
    );
    assert_untouched(&app, &snapshot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_agents_sending_at_once_are_all_stored() {
    let app = std::sync::Arc::new(spawn_app().await);
    let sends = (0..24).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            let snapshot = sample_snapshot(&format!("host-{}", i % 6), 200);
            app.post_snapshot(&snapshot).await.status().as_u16()
        })
    });
    for send in sends.collect::<Vec<_>>() {
        assert_eq!(send.await.unwrap(), 201);
    }
    assert_eq!(app.stored_snapshots().await, 24);
    assert_eq!(app.stored_hosts().await, 6);
    let hosts: Vec<procmon_model::HostSummary> = app.get_hosts().await.json().await.unwrap();
    assert!(hosts.iter().all(|h| h.online && h.process_count == 200));
}

/// A snapshot compressed with zstd or gzip (`Content-Encoding`) is taken
/// as the plain one is; one that inflates past the body limit is refused
/// with 413 as soon as it passes it, without being inflated whole.
#[tokio::test]
async fn compressed_snapshots_are_taken_and_a_compressed_bomb_is_413() {
    use std::io::Write;

    let app = spawn_app_with(|s| s.body_limit = 1 << 20).await;
    let key = app.key_for("host-a").await;
    let post = |body: Vec<u8>, encoding: &'static str| {
        app.anonymous()
            .post(format!("{}/api/processes/", app.address))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
    };
    let snapshot = sample_snapshot("host-a", 300);
    let json = serde_json::to_vec(&snapshot).unwrap();
    let zstd = zstd::bulk::compress(&json, 3).unwrap();
    assert!(
        zstd.len() * 5 < json.len(),
        "{} of {}",
        zstd.len(),
        json.len()
    );
    assert_eq!(post(zstd, "zstd").await.unwrap().status(), 201);

    let mut second = sample_snapshot("host-a", 300);
    second.collected_at = snapshot.collected_at + chrono::Duration::seconds(2);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&serde_json::to_vec(&second).unwrap())
        .unwrap();
    assert_eq!(
        post(gzip.finish().unwrap(), "gzip").await.unwrap().status(),
        201
    );
    let listing: ProcessListing = app.get_processes("host-a").await.json().await.unwrap();
    assert_eq!(listing.snapshot_id, second.id);
    assert_eq!(listing.processes.len(), 300);

    // 1 GiB of spaces in about 40 KiB: refused at the 1 MiB limit.
    let mut bomb = zstd::stream::Encoder::new(Vec::new(), 19).unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..1024 {
        bomb.write_all(&spaces).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let response = post(bomb, "zstd").await.unwrap();
    assert_eq!(response.status(), 413);
    let error: ErrorBody = response.json().await.unwrap();
    assert!(error.message.contains("1048576 bytes"), "{}", error.message);

    // An encoding the server does not speak.
    let refused = post(json, "br").await.unwrap();
    assert_eq!(refused.status(), 415);
    let error: ErrorBody = refused.json().await.unwrap();
    assert_eq!(error.error, "unsupported_encoding");
    assert!(error.message.contains("zstd or gzip"), "{}", error.message);
    assert_eq!(app.stored_snapshots().await, 2);
}
