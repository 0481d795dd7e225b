//! The whole API fuzzed from its own OpenAPI document with schemathesis,
//! against the real server: no 5xx, every response as documented (status,
//! content type, schema), and no schema-valid request refused. Meanwhile
//! health keeps answering within 100 ms, and data stored before the run is
//! intact after it.
//!
//! schemathesis is installed by scripts/install-test-deps into a venv under
//! the workspace's target/ directory; server/tests/fuzz/ holds its settings
//! and the hooks that give each operation its credentials.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use procmon_model::Snapshot;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::common::{
    installed_or_skip, sample_snapshot, spawn_app, TestApp, TEST_PASSWORD, TEST_USER,
};

/// Test cases per operation and phase, and the seed, so that a failure
/// seen once is seen again.
const MAX_EXAMPLES: u32 = 100;
const SEED: u64 = 20_240_611;
/// Sign-outs the run may make: the coverage phase's cases and the
/// fuzzing's, with room to spare.
const SPARE_SESSIONS: usize = 400;
/// The run is killed after this.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// How often health is asked, and how soon it must answer.
const HEALTH_EVERY: Duration = Duration::from_millis(50);
const HEALTH_WITHIN: Duration = Duration::from_millis(100);

/// The checks that must pass for every generated request.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,positive_data_acceptance";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate is in the workspace")
        .to_owned()
}

/// `st` from the test venv, if scripts/install-test-deps made it.
fn schemathesis() -> Option<PathBuf> {
    let st = workspace().join("target/test-venv/bin/st");
    installed_or_skip(st.is_file(), "schemathesis (target/test-venv)").then_some(st)
}

/// The admin's session cookie value, from a sign-in of its own: the
/// fuzzer signs out sessions of its own, never this one.
async fn session_cookie(address: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{address}/api/session/"))
        .header("x-procmon-csrf", "1")
        .json(&serde_json::json!({ "name": TEST_USER, "password": TEST_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let pair = cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// `count` more sessions of the admin's, for the fuzzer to sign out, made in
/// the store (signing in that often would take seconds of hashing), comma
/// separated.
async fn spare_sessions(app: &TestApp, count: usize) -> String {
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        let (token, hash) = procmon_server::accounts::new_token().unwrap();
        app.state
            .accounts
            .create_session(&hash, TEST_USER, chrono::Utc::now(), false)
            .await
            .unwrap();
        tokens.push(token.expose_secret().to_owned());
    }
    tokens.join(",")
}

/// What a person sees of each seeded snapshot: the listing as of the time
/// it was collected, less the host's summary, which later snapshots change.
/// (The fuzzer may send some for this host too: it reads the host id from
/// the host list and enrolls it, as an agent could.)
async fn seeded_view(app: &TestApp, seeded: &[Snapshot]) -> Vec<Value> {
    let mut views = Vec::new();
    for snapshot in seeded {
        let at = snapshot.collected_at.to_rfc3339();
        let response = app
            .get_with_query("/api/processes/", &[("host", "seeded"), ("at", &at)])
            .await;
        assert_eq!(response.status(), 200);
        let mut listing: Value = response.json().await.unwrap();
        listing.as_object_mut().unwrap().remove("host");
        assert_eq!(listing["snapshot_id"], snapshot.id.to_string());
        views.push(listing);
    }
    views
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_and_health_stays_quick() {
    let Some(st) = schemathesis() else { return };
    let app = spawn_app().await;
    let seeded: Vec<Snapshot> = (0..3).map(|_| sample_snapshot("seeded", 20)).collect();
    for snapshot in &seeded {
        assert_eq!(app.post_snapshot(snapshot).await.status(), 201);
    }
    let before = seeded_view(&app, &seeded).await;
    // The base of the fuzzer's change batches (see hooks.py).
    assert_eq!(
        app.post_snapshot(&sample_snapshot("batch-base", 5))
            .await
            .status(),
        201
    );
    let stored_before = app.stored_snapshots().await;
    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();

    // Health, asked every 50 ms on one kept-alive connection, as a load
    // balancer does, for as long as the fuzzer runs.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let health_url = format!("{}/api/health", app.address);
    let poller = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut answers = Vec::new();
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {}
            }
            let started = Instant::now();
            let status =
                match tokio::time::timeout(Duration::from_secs(5), client.get(&health_url).send())
                    .await
                {
                    Ok(Ok(response)) => response.status().as_u16(),
                    Ok(Err(_)) | Err(_) => 0,
                };
            answers.push((status, started.elapsed()));
        }
        answers
    });

    let fuzz = workspace().join("server/tests/fuzz");
    let started = Instant::now();
    // coreutils' timeout ends a hung run: a failure, not a stuck suite.
    let mut command = std::process::Command::new("timeout");
    command
        .arg(RUN_LIMIT.as_secs().to_string())
        .arg(&st)
        .arg("--config-file")
        .arg(fuzz.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/openapi.json", app.address))
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", &SEED.to_string()])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .env("PROCMON_FUZZ_HOOKS", fuzz.join("hooks.py"))
        .env("PROCMON_URL", &app.address)
        .env("PROCMON_SESSION", session_cookie(&app.address).await)
        .env("PROCMON_USER", TEST_USER)
        .env("PROCMON_PASSWORD", TEST_PASSWORD)
        .env(
            "PROCMON_SPARE_SESSIONS",
            spare_sessions(&app, SPARE_SESSIONS).await,
        )
        .env("PROCMON_ENROLL_SECRET", secret.expose_secret())
        // No .hypothesis/ or report left in the source tree.
        .current_dir(app.data_dir.path())
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("schemathesis starts");
    let took = started.elapsed();
    stop.send(()).unwrap();
    let answers = poller.await.unwrap();

    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let slowest = answers.iter().map(|(_, t)| *t).max().unwrap_or_default();
    let late: Vec<_> = answers
        .iter()
        .filter(|(status, t)| *status != 200 || *t > HEALTH_WITHIN)
        .collect();
    // schemathesis' own summary (requests made, phases), failing or not.
    if let Some(at) = report.find("=== SUMMARY ===") {
        eprintln!("{}", &report[at..]);
    }
    eprintln!(
        "schemathesis took {took:.1?}; health asked {} times, slowest {slowest:?}, {} late or not 200",
        answers.len(),
        late.len()
    );
    assert_ne!(
        output.status.code(),
        Some(124),
        "schemathesis ran longer than {RUN_LIMIT:?}:\n{report}"
    );
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}"
    );
    assert!(
        answers.len() as u128 >= took.as_millis() / HEALTH_EVERY.as_millis() / 2,
        "health was asked only {} times in {took:?}",
        answers.len()
    );
    assert!(
        late.is_empty(),
        "health answers not 200 within {HEALTH_WITHIN:?} (status, time): {late:?}"
    );

    // What was stored before is as it was.
    assert_eq!(seeded_view(&app, &seeded).await, before);
    assert!(app.stored_snapshots().await >= stored_before);
}
