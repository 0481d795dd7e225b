//! The agent's pull of actions, end to end: an operator asks on a real
//! procmon server (in this process), the agent hears of it in an ingest
//! answer, fetches it, checks it against the key it saved at enrollment,
//! acts on a real process and reports; and, against a small server of the
//! test's own that fails on purpose, it rides out server errors without
//! holding up a snapshot.
#![cfg(target_os = "linux")]

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use procmon_agent::actions::{saved_key_file, ActionOptions, ActionSettings, PinnedKey, ServerKey};
use procmon_agent::{AgentConfig, AgentKey, Collector};
use procmon_model::actions::{
    ActionEntry, ActionKind, ActionOutcome, ActionReport, ActionRequest, ActionResultCode,
    SignedAction,
};
use procmon_model::ProcessListing;
use procmon_server::store::accounts::Role;

mod support;

/// A `sleep 60` this test started, killed and reaped when dropped.
struct Target(Child);

impl Target {
    fn start() -> Self {
        Self(Command::new("sleep").arg("60").spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits for it to end; the signal that ended it.
    async fn ended_by(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.signal();
            }
            assert!(Instant::now() < deadline, "the target did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The agent in this process with `config`, until the sender is sent to.
fn run_agent(
    config: AgentConfig,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(procmon_agent::run(config, async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

async fn wait_for<T>(what: &str, within: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = f().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client signed in as an operator: the session cookie and the CSRF
/// header, as the page sends them.
async fn operator(url: &str, server: &support::Server) -> reqwest::Client {
    procmon_server::accounts::add_user(
        server.state.accounts.as_ref(),
        "op",
        Role::Operator,
        Some("operator password".to_owned().into()),
        Utc::now(),
    )
    .await
    .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{url}/api/session/"))
        .header("x-procmon-csrf", "1")
        .json(&serde_json::json!({ "name": "op", "password": "operator password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let cookies: Vec<String> = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-procmon-csrf", "1".parse().unwrap());
    headers.insert(reqwest::header::COOKIE, cookies.join("; ").parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The start time the server's newest snapshot of `host` gives `pid`.
async fn started_at(url: &str, host: &str, pid: u32) -> Option<DateTime<Utc>> {
    let listing: ProcessListing = reqwest::get(format!("{url}/api/processes/?host={host}"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(listing.processes.iter().find(|p| p.pid == pid)?.start_time)
}

/// Asks for `kind` on `target` as the page does; the audit entry.
async fn ask(
    client: &reqwest::Client,
    url: &str,
    host: &str,
    target: &Target,
    kind: ActionKind,
) -> ActionEntry {
    let started_at = wait_for(
        "the target in a snapshot",
        Duration::from_secs(20),
        async || started_at(url, host, target.pid()).await,
    )
    .await;
    let response = client
        .post(format!("{url}/api/actions/"))
        .json(&ActionRequest {
            host_id: host.to_owned(),
            pid: target.pid(),
            started_at,
            kind,
            reason: "test".to_owned(),
        })
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until the agent has reported on action `entry`.
async fn reported(client: &reqwest::Client, url: &str, entry: &ActionEntry) -> ActionEntry {
    wait_for("the agent's report", Duration::from_secs(30), async || {
        let entry: ActionEntry = client
            .get(format!("{url}/api/actions/{}", entry.id))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        entry.code.is_some().then_some(entry)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_agent_carries_out_an_operators_action_and_reports_it() {
    let data = tempfile::tempdir().unwrap();
    let server = support::serve(data.path(), 0).await;
    let url = server.url();
    let secret = server
        .state
        .agent_keys
        .rotate_enroll_secret(Utc::now())
        .await
        .unwrap();
    let client = operator(&url, &server).await;

    let mut ends = Target::start();
    let stays = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("procmon-agent.key");
    let mut config = AgentConfig::new(url.clone(), "unused");
    config.key = AgentKey::Enroll {
        secret,
        key_file: key_file.clone(),
    };
    config.interval = Duration::from_millis(500);
    config.spool_dir = dir.path().join("spool");
    config.actions = ActionOptions {
        settings: ActionSettings {
            enabled: true,
            ..ActionSettings::default()
        },
        pinned: PinnedKey::new(None, Some(saved_key_file(&key_file))),
    };
    let (stop, agent) = run_agent(config);

    // Enrollment saved the server's key beside the agent's.
    let saved = wait_for(
        "the saved action key",
        Duration::from_secs(20),
        async || std::fs::read_to_string(saved_key_file(&key_file)).ok(),
    )
    .await;
    assert_eq!(saved.trim(), server.state.action_signer.public_key());
    let host = Collector::new().snapshot(Duration::from_secs(1)).host.id;

    let entry = ask(&client, &url, &host, &ends, ActionKind::Terminate).await;
    assert_eq!(entry.outcome, ActionOutcome::Pending);
    assert_eq!(
        ends.ended_by(Duration::from_secs(30)).await,
        Some(libc::SIGTERM)
    );
    let done = reported(&client, &url, &entry).await;
    assert_eq!(done.code, Some(ActionResultCode::Done), "{done:?}");
    assert_eq!(done.outcome, ActionOutcome::Done);
    assert!(
        done.message.as_deref().unwrap().contains("SIGTERM"),
        "{done:?}"
    );

    // What the agent's config does not allow is refused, saying why.
    let entry = ask(&client, &url, &host, &stays, ActionKind::LowerPriority).await;
    let refused = reported(&client, &url, &entry).await;
    assert_eq!(
        refused.code,
        Some(ActionResultCode::NotAllowed),
        "{refused:?}"
    );
    assert_eq!(refused.outcome, ActionOutcome::Refused);
    let nice = std::fs::read_to_string(format!("/proc/{}/stat", stays.pid())).unwrap();
    assert_eq!(
        nice.rsplit_once(") ").unwrap().1.split(' ').nth(16),
        Some("0")
    );

    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    server.stop().await;
}

/// The test's own server: ingest answers say how many actions wait; the
/// first fetch fails (500), the second is slow, the first report gets a
/// 503; everything is counted.
#[derive(Default)]
struct Peer {
    waiting: Mutex<Vec<SignedAction>>,
    ingests: Mutex<Vec<Instant>>,
    fetches: Mutex<Vec<Instant>>,
    reports: Mutex<Vec<(String, Result<ActionReport, ()>)>>,
}

async fn peer(peer: Arc<Peer>) -> String {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use axum::Json;

    async fn ingest(State(peer): State<Arc<Peer>>) -> (StatusCode, Json<serde_json::Value>) {
        peer.ingests.lock().unwrap().push(Instant::now());
        let pending = peer.waiting.lock().unwrap().len();
        let answer = serde_json::json!({
            "snapshot_id": uuid::Uuid::new_v4(), "stored": true, "pending_actions": pending,
        });
        (StatusCode::CREATED, Json(answer))
    }
    async fn fetch(State(peer): State<Arc<Peer>>) -> (StatusCode, Json<serde_json::Value>) {
        let tries = {
            let mut fetches = peer.fetches.lock().unwrap();
            fetches.push(Instant::now());
            fetches.len()
        };
        if tries == 1 {
            let error = serde_json::json!({ "error": "internal", "message": "the store broke" });
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(error));
        }
        // Slow, as a loaded server: snapshots go on meanwhile.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let handed: Vec<SignedAction> = std::mem::take(&mut *peer.waiting.lock().unwrap());
        (StatusCode::OK, Json(serde_json::to_value(handed).unwrap()))
    }
    async fn report(
        State(peer): State<Arc<Peer>>,
        UrlPath(id): UrlPath<String>,
        Json(report): Json<ActionReport>,
    ) -> StatusCode {
        let mut reports = peer.reports.lock().unwrap();
        if reports.is_empty() {
            reports.push((id, Err(())));
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        reports.push((id, Ok(report)));
        StatusCode::NO_CONTENT
    }

    let app = axum::Router::new()
        .route("/api/processes/", post(ingest))
        .route("/api/changes/", post(ingest))
        .route("/api/agent/actions/", get(fetch))
        .route("/api/agent/actions/{id}/result", post(report))
        .with_state(peer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// `action` signed by `key`, as the server signs.
fn signed(mut action: SignedAction, key: &ed25519_dalek::SigningKey) -> SignedAction {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let signature = key.sign(&action.signing_bytes());
    action.signature = base64::engine::general_purpose::STANDARD.encode(signature.to_bytes());
    action
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_server_delays_no_snapshot_and_the_action_still_goes_through() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let mut target = Target::start();
    let snapshot = Collector::new().snapshot(Duration::from_secs(1));
    let started_at = snapshot
        .processes
        .iter()
        .find(|p| p.pid == target.pid())
        .unwrap()
        .start_time;
    let state = Arc::new(Peer::default());
    let url = peer(Arc::clone(&state)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = AgentConfig::new(url, "pmk_test");
    config.interval = Duration::from_millis(500);
    config.spool_dir = dir.path().join("spool");
    config.actions = ActionOptions {
        settings: ActionSettings {
            enabled: true,
            ..ActionSettings::default()
        },
        pinned: PinnedKey::given(ServerKey::from_verifying_key(key.verifying_key())),
    };
    let (stop, agent) = run_agent(config);
    // Signed once the agent runs: it takes nothing signed before its start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = Utc::now();
    let action = signed(
        SignedAction {
            id: uuid::Uuid::new_v4(),
            host_id: snapshot.host.id.clone(),
            pid: target.pid(),
            started_at,
            kind: ActionKind::Kill,
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            issued_at: now,
            expires_at: now + chrono::Duration::seconds(60),
            signature: String::new(),
        },
        &key,
    );
    let id = action.id.to_string();
    state.waiting.lock().unwrap().push(action);

    assert_eq!(
        target.ended_by(Duration::from_secs(30)).await,
        Some(libc::SIGKILL)
    );
    // The report got a 503 first, and went again.
    let report = wait_for(
        "the report, sent again",
        Duration::from_secs(30),
        async || {
            let reports = state.reports.lock().unwrap();
            reports
                .iter()
                .find_map(|(rid, r)| r.clone().ok().filter(|_| *rid == id))
        },
    )
    .await;
    assert_eq!(report.code, ActionResultCode::Done, "{report:?}");
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    let fetches = state.fetches.lock().unwrap().clone();
    assert!(fetches.len() >= 2, "the failed fetch was tried again");
    let reports = state.reports.lock().unwrap();
    assert!(
        matches!(reports[0], (ref rid, Err(())) if *rid == id),
        "first report refused"
    );
    // While the slow fetch was answered (3 s), snapshots went on at their
    // pace (500 ms).
    let slow = fetches[1];
    let ingests = state.ingests.lock().unwrap();
    let during = ingests
        .iter()
        .filter(|&&at| at > slow && at < slow + Duration::from_secs(3))
        .count();
    assert!(during >= 4, "only {during} snapshots during the slow fetch");
}
