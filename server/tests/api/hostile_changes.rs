//! `POST /api/changes/` held as hard as `POST /api/processes/`: a client
//! over its rate is refused before its body is read, and every part of a
//! batch out of its range (lists too long, strings too long or empty, deep
//! nesting, a load that is not a number, another host's snapshot as base)
//! is a 4xx naming it, with nothing already stored harmed.

use std::time::{Duration, Instant};

use procmon_model::changes::diff;
use procmon_model::{ChangeBatch, ErrorBody, HostLoad, ProcessListing, Snapshot};
use serde_json::{json, Value};

use crate::common::{sample_snapshot, spawn_app, spawn_app_with, too_many, TestApp};

/// `POST` of any body to `path` with `key`, as an agent (no session).
async fn post(app: &TestApp, path: &str, body: String, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .anonymous()
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("request sent")
}

/// The server's peak resident memory so far (it runs in this process), in
/// MiB, from `/proc/self/status`; `None` where there is no such file.
fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[tokio::test]
async fn over_its_rate_or_without_a_key_a_body_is_not_even_read() {
    let app = spawn_app_with(|s| {
        s.ingest_burst = 2;
        s.ingest_per_second = 1;
    })
    .await;
    let key = app.key_for("busy").await;
    let base = sample_snapshot("busy", 2);
    assert_eq!(app.post_snapshot(&base).await.status(), 201);
    let mut next = base.clone();
    next.id = uuid::Uuid::new_v4();
    let batch = serde_json::to_string(&diff(&base, &next)).unwrap();
    assert_eq!(
        post(&app, "/api/changes/", batch, Some(&key))
            .await
            .status(),
        201
    );

    // The rate is used up: not JSON at all, and still a 429, not a 400.
    for path in ["/api/changes/", "/api/processes/"] {
        let response = post(&app, path, "{not json".repeat(1000), Some(&key)).await;
        assert_eq!(response.status(), 429, "{path}");
        let (_, error) = too_many(response, "rate_limited", 1..=2).await;
        assert!(error.message.contains("\"busy\""), "{}", error.message);
    }
    // Without a key, the body is not read either.
    let response = post(&app, "/api/changes/", "{not json".into(), None).await;
    assert_eq!(response.status(), 401);
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "unauthorized");
    // Nothing was stored but the first two.
    assert_eq!(app.stored_snapshots().await, 2);
}

/// A base of three processes on host-a, and the batch that starts a fourth,
/// changes the second's CPU and sends the host's load.
fn base_and_batch() -> (Snapshot, ChangeBatch) {
    let base = sample_snapshot("host-a", 3);
    let mut next = base.clone();
    next.id = uuid::Uuid::new_v4();
    next.processes
        .push(procmon_model::fixtures::process(100, base.collected_at));
    next.processes[1].cpu_percent += 1.0;
    next.load = Some(HostLoad {
        cpu_per_core: vec![10.0, 20.0],
        memory_used_bytes: 1 << 30,
        memory_available_bytes: 1 << 30,
        swap_total_bytes: 0,
        swap_used_bytes: 0,
        load_average: Some([0.5, 0.5, 0.5]),
    });
    let batch = diff(&base, &next);
    assert_eq!((batch.started.len(), batch.changed.len()), (1, 1));
    (base, batch)
}

/// Each part of a batch set out of its range: the JSON pointer, the value,
/// the status, and how the refusal names it.
fn out_of_range(other_host: &Snapshot) -> Vec<(&'static str, Value, u16, String)> {
    let long = |n: usize| Value::String("x".repeat(n));
    vec![
        ("/id", json!(""), 422, "id".into()),
        ("/base_id", json!(""), 422, "base_id".into()),
        ("/host_id", json!(""), 422, "host_id is empty".into()),
        ("/host_id", json!(" host-a"), 422, "host_id".into()),
        ("/host_id", long(257), 422, "host_id".into()),
        ("/version", json!(2), 422, "version 2".into()),
        ("/interval_ms", json!(0), 422, "interval_ms".into()),
        (
            "/started/0/name",
            long(1025),
            422,
            "started[0] (pid 100).name".into(),
        ),
        (
            "/started/0/name",
            json!(null),
            422,
            "started[0].name".into(),
        ),
        (
            "/started/0/cmd",
            json!(["x".repeat(300_000)]),
            422,
            "started[0] (pid 100).cmd is 300000 bytes".into(),
        ),
        (
            "/started/0/cmd",
            Value::Array(vec![json!(""); 4097]),
            422,
            "started[0].cmd".into(),
        ),
        (
            "/started/0/cpu_percent",
            json!(-1),
            422,
            "started[0] (pid 100).cpu_percent".into(),
        ),
        (
            "/changed/0/cmd",
            json!(["x".repeat(300_000)]),
            422,
            "changed[0] (pid 2).cmd is 300000 bytes".into(),
        ),
        (
            "/changed/0/cmd",
            Value::Array(vec![json!(""); 4097]),
            422,
            "changed[0].cmd".into(),
        ),
        (
            "/changed/0/user",
            long(1025),
            422,
            "changed[0] (pid 2).user".into(),
        ),
        (
            "/changed/0/exe",
            long(4097),
            422,
            "changed[0] (pid 2).exe".into(),
        ),
        (
            "/changed/0/cpu_percent",
            json!(1e300),
            422,
            "changed[0] (pid 2).cpu_percent is inf".into(),
        ),
        (
            "/load/cpu_per_core/0",
            json!(-1),
            422,
            "load.cpu_per_core[0] is -1".into(),
        ),
        (
            "/load/cpu_per_core/1",
            json!(1e39),
            422,
            "load.cpu_per_core[1] is inf".into(),
        ),
        (
            "/load/cpu_per_core",
            Value::Array(vec![json!(1); 4097]),
            422,
            "more than the 4096 cores".into(),
        ),
        (
            "/load/load_average/2",
            json!(-0.5),
            422,
            "load.load_average[2] is -0.5".into(),
        ),
        (
            "/load/memory_used_bytes",
            json!(-1),
            422,
            "load.memory_used_bytes".into(),
        ),
        (
            "/exited",
            Value::Array(vec![json!(1); 200_001]),
            422,
            "more than the 200000 processes".into(),
        ),
        // Another host's snapshot is never this host's base, nor its id
        // this batch's.
        (
            "/base_id",
            json!(other_host.id),
            409,
            "send a full snapshot".into(),
        ),
        (
            "/id",
            json!(other_host.id),
            409,
            "already received from another host".into(),
        ),
    ]
}

/// Sets the field at `pointer`, adding it to its object if absent (an
/// update sends only the fields that changed).
fn set(body: &mut Value, pointer: &str, value: Value) {
    let (parent, field) = pointer.rsplit_once('/').unwrap();
    match body.pointer_mut(parent) {
        Some(Value::Object(object)) => {
            object.insert(field.to_owned(), value);
        }
        Some(Value::Array(array)) => array[field.parse::<usize>().unwrap()] = value,
        _ => panic!("no field {parent} in the batch"),
    }
}

/// Checks that what was stored before is still all there is: host-a's
/// base and host-b's snapshot, read back through the API.
async fn nothing_harmed(app: &TestApp, base: &Snapshot, other: &Snapshot) {
    assert_eq!(
        app.stored_snapshots().await,
        2,
        "a refused batch was stored"
    );
    for (host, snapshot) in [("host-a", base), ("host-b", other)] {
        let listing: ProcessListing = app.get_processes(host).await.json().await.unwrap();
        assert_eq!(listing.snapshot_id, snapshot.id, "{host}");
        assert_eq!(listing.processes.len(), snapshot.processes.len(), "{host}");
    }
}

#[tokio::test]
async fn every_part_of_a_batch_out_of_range_is_refused_naming_it_and_harms_nothing() {
    let app = spawn_app().await;
    let (base, batch) = base_and_batch();
    let other = sample_snapshot("host-b", 2);
    assert_eq!(app.post_snapshot(&base).await.status(), 201);
    assert_eq!(app.post_snapshot(&other).await.status(), 201);

    let cases = out_of_range(&other);
    for (pointer, value, status, named) in &cases {
        let mut body = serde_json::to_value(&batch).unwrap();
        set(&mut body, pointer, value.clone());
        let response = post(
            &app,
            "/api/changes/",
            body.to_string(),
            Some(&app.agent_key),
        )
        .await;
        let got = response.status().as_u16();
        let error: ErrorBody = response.json().await.unwrap();
        let mut shown = value.to_string();
        shown.truncate(60);
        assert_eq!(got, *status, "{pointer} = {shown}: {error:?}");
        assert!(
            error.message.contains(named.as_str()),
            "{pointer} = {shown}: {:?} does not name {named:?}",
            error.message
        );
    }
    eprintln!("{} out-of-range batches refused", cases.len());
    nothing_harmed(&app, &base, &other).await;
    // The base is still the base: the batch as it was applies.
    assert_eq!(app.post_changes(&batch).await.status(), 201);
}

/// Bodies of a few MB that would cost far more parsed, posted as batches.
fn costly_batches(batch: &str) -> Vec<(&'static str, String, u16)> {
    let replaced = |from: &str, to: String| {
        assert!(batch.contains(from), "{from} is not in the batch");
        batch.replacen(from, &to, 1)
    };
    let process = |pid: u32| {
        serde_json::to_string(&procmon_model::fixtures::process(pid, chrono::Utc::now())).unwrap()
    };
    let many = |n: usize| {
        let one = process(7);
        let mut list = String::with_capacity(n * (one.len() + 1));
        for i in 0..n {
            if i > 0 {
                list.push(',');
            }
            list.push_str(&one);
        }
        list
    };
    vec![
        (
            "deeply nested body",
            "[".repeat(1_000_000) + &"]".repeat(1_000_000),
            422,
        ),
        (
            "deeply nested command line",
            replaced(
                "\"changed\":[{",
                format!(
                    "\"changed\":[{{\"cmd\":{}{},",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                ),
            ),
            422,
        ),
        (
            "a million empty started processes",
            replaced(
                "\"started\":[",
                format!("\"started\":[{}", "{},".repeat(1_000_000)),
            ),
            422,
        ),
        (
            "200 001 started processes",
            replaced("\"started\":[", format!("\"started\":[{},", many(200_001))),
            422,
        ),
        (
            "a million empty updates",
            replaced(
                "\"changed\":[",
                format!("\"changed\":[{}", "{},".repeat(1_000_000)),
            ),
            422,
        ),
        (
            "a command line of escapes",
            replaced(
                "\"changed\":[{",
                format!(
                    "\"changed\":[{{\"cmd\":[\"{}\"],",
                    "\\u0000".repeat(1_000_000)
                ),
            ),
            422,
        ),
    ]
}

#[tokio::test]
async fn batches_small_in_bytes_and_large_when_parsed_are_refused_quickly() {
    // Room for 200 001 whole processes in one body.
    let app = spawn_app_with(|s| s.body_limit = 128 * 1024 * 1024).await;
    let (base, batch) = base_and_batch();
    let other = sample_snapshot("host-b", 2);
    assert_eq!(app.post_snapshot(&base).await.status(), 201);
    assert_eq!(app.post_snapshot(&other).await.status(), 201);
    let json = serde_json::to_string(&batch).unwrap();
    for (what, body, expected) in costly_batches(&json) {
        let bytes = body.len();
        let started = Instant::now();
        let response = post(&app, "/api/changes/", body, Some(&app.agent_key)).await;
        let took = started.elapsed();
        let status = response.status().as_u16();
        let error: ErrorBody = response.json().await.unwrap();
        assert_eq!(status, expected, "{what}: {error:?}");
        // Generous for an unoptimised build; a limit, not a timing.
        assert!(took < Duration::from_secs(30), "{what}: took {took:?}");
        let peak = peak_memory_mib().map_or("unknown".to_owned(), |m| format!("{m} MiB"));
        eprintln!(
            "{what} ({bytes} bytes): {status} in {took:?}, peak memory of the test process \
             (server inside) {peak}: {}",
            error.message
        );
    }
    nothing_harmed(&app, &base, &other).await;
    assert_eq!(app.post_changes(&batch).await.status(), 201);
}
