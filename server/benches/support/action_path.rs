//! What the actions bench runs against: a real server on a fresh SQLite
//! file with no agent of its own, a real HTTP agent for this machine run in
//! this process (every [`INTERVAL`], actions enabled for terminate, suspend
//! and resume, the server's action key pinned, an unbound agent key), and
//! an operator signed in as the page signs in (session cookie, CSRF header).

use std::time::Duration;

use chrono::{DateTime, Utc};
use procmon_agent::actions::{ActionOptions, ActionSettings, PinnedKey, ServerKey};
use procmon_agent::{AgentConfig, Collector};
use procmon_model::actions::{ActionEntry, ActionKind, ActionRequest};
use procmon_model::{ProcessListing, Snapshot};
use procmon_server::config::Settings;
use procmon_server::startup::{AppState, Application};
use procmon_server::store::accounts::Role;
use secrecy::ExposeSecret;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The agent's interval: the target is p99 under it plus 1 s.
pub const INTERVAL: Duration = Duration::from_secs(1);

const OPERATOR: &str = "bench-operator";
const PASSWORD: &str = "bench operator password";

/// A task run until its sender is sent to.
type Running = (oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>);

pub struct ActionPath {
    /// Base URL, no trailing slash.
    pub url: String,
    /// This machine's host id, as its agent sends it.
    pub host: String,
    /// A client signed in as an operator.
    pub operator: reqwest::Client,
    pub state: AppState,
    /// One snapshot of this machine, for the ingest baseline.
    pub snapshot: Snapshot,
    server: Running,
    agent: Running,
    _dirs: (TempDir, TempDir),
}

impl ActionPath {
    pub async fn start() -> Self {
        let data = tempfile::tempdir().expect("a temp dir");
        let mut settings = Settings::with_data_dir(data.path());
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.embedded_agent = false;
        // The ingest baseline posts snapshots back to back.
        settings.ingest_burst = 100_000;
        let application = Application::build(settings)
            .await
            .expect("the server builds");
        let state = application.state().clone();
        let url = application.local_url().trim_end_matches('/').to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));

        let operator = operator(&url, &state).await;
        let key = state
            .agent_keys
            .create(None, "bench agent", Utc::now())
            .await
            .expect("an agent key");
        let pinned = ServerKey::parse(state.action_signer.public_key()).expect("the server's key");
        let agent_dir = tempfile::tempdir().expect("a temp dir");
        let mut config = AgentConfig::new(url.clone(), key.key.expose_secret().to_owned());
        config.interval = INTERVAL;
        config.spool_dir = agent_dir.path().join("spool");
        config.actions = ActionOptions {
            settings: ActionSettings {
                enabled: true,
                allow: vec![
                    ActionKind::Terminate,
                    ActionKind::Suspend,
                    ActionKind::Resume,
                ],
            },
            pinned: PinnedKey::given(pinned),
        };
        let (stop_agent, agent_stopped) = oneshot::channel::<()>();
        let agent = tokio::spawn(procmon_agent::run(config, async move {
            let _ = agent_stopped.await;
        }));
        let snapshot = tokio::task::spawn_blocking(|| Collector::new().snapshot(INTERVAL))
            .await
            .expect("a snapshot of this machine");
        Self {
            url,
            host: snapshot.host.id.clone(),
            operator,
            state,
            snapshot,
            server: (stop, server),
            agent: (stop_agent, agent),
            _dirs: (data, agent_dir),
        }
    }

    /// The start time the host's newest snapshot on the server gives `pid`.
    pub async fn started_at(&self, pid: u32) -> Option<DateTime<Utc>> {
        let response = self
            .operator
            .get(format!("{}/api/processes/", self.url))
            .query(&[("host", &self.host)])
            .send()
            .await
            .ok()?;
        let listing: ProcessListing = response.json().await.ok()?;
        Some(listing.processes.iter().find(|p| p.pid == pid)?.start_time)
    }

    /// Waits until the server's newest snapshot has `pid`; its start time.
    pub async fn seen(&self, pid: u32) -> DateTime<Utc> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.started_at(pid).await {
                return at;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pid {pid} is in no snapshot of {} after 20 s",
                self.host
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /api/actions/` as the page sends it; the audit entry.
    pub async fn ask(&self, pid: u32, started_at: DateTime<Utc>, kind: ActionKind) -> ActionEntry {
        let response = self
            .operator
            .post(format!("{}/api/actions/", self.url))
            .json(&ActionRequest {
                host_id: self.host.clone(),
                pid,
                started_at,
                kind,
                reason: "actions bench".to_owned(),
            })
            .send()
            .await
            .expect("the action is sent");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 201, "{kind} on pid {pid} was not asked: {body}");
        serde_json::from_str(&body).expect("an audit entry")
    }

    /// `GET /api/actions/{id}`.
    pub async fn entry(&self, entry: &ActionEntry) -> ActionEntry {
        let response = self
            .operator
            .get(format!("{}/api/actions/{}", self.url, entry.id))
            .send()
            .await
            .expect("the entry is read");
        assert_eq!(response.status(), 200, "action {}", entry.id);
        response.json().await.expect("an audit entry")
    }

    /// Stops the agent, then the server, and waits for both.
    pub async fn stop(self) {
        let (stop, agent) = self.agent;
        let _ = stop.send(());
        agent
            .await
            .expect("the agent task")
            .expect("the agent stops");
        let (stop, server) = self.server;
        let _ = stop.send(());
        server
            .await
            .expect("the server task")
            .expect("the server stops");
    }
}

/// A client signed in as an operator, added through the store as
/// `procmon-server users add` adds one.
async fn operator(url: &str, state: &AppState) -> reqwest::Client {
    procmon_server::accounts::add_user(
        state.accounts.as_ref(),
        OPERATOR,
        Role::Operator,
        Some(PASSWORD.to_owned().into()),
        Utc::now(),
    )
    .await
    .expect("the operator is added");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-procmon-csrf",
        reqwest::header::HeaderValue::from_static("1"),
    );
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .expect("a client");
    let response = client
        .post(format!("{url}/api/session/"))
        .json(&serde_json::json!({ "name": OPERATOR, "password": PASSWORD }))
        .send()
        .await
        .expect("the sign-in is sent");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "the operator cannot sign in: {body}");
    client
}
