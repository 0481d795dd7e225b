//! Helpers shared by the server's test binaries: a real server on a free
//! port with a fresh SQLite file, typed requests against it, sample data,
//! and `require` for tests that need a program installed.
#![allow(dead_code)]

use std::path::Path;

use std::sync::Arc;

use procmon_model::Snapshot;
use procmon_server::clock::ManualClock;
use procmon_server::config::Settings;
use procmon_server::startup::{AppState, Application};
use secrecy::ExposeSecret;
use tempfile::TempDir;

/// A running server with its own data directory, deleted when dropped.
pub struct TestApp {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`
    /// (`https://` when the settings give a certificate).
    pub address: String,
    /// The port the server listens on.
    pub port: u16,
    /// The agent key the server accepts.
    pub agent_key: String,
    /// The viewer key (needed only when listening beyond loopback).
    pub viewer_key: String,
    /// What the handlers share, to reach the store directly.
    pub state: AppState,
    /// Where the database and key files are.
    pub data_dir: TempDir,
    /// A client for the requests.
    pub client: reqwest::Client,
}

/// A server on 127.0.0.1, port 0, fresh database, embedded agent off.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// As [`spawn_app`], with `configure` changing the settings first (the
/// data directory is already a fresh temporary one).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_clock(None, configure).await
}

/// As [`spawn_app_with`], with the server's "now" taken from `clock`.
pub async fn spawn_app_with_clock(
    clock: Option<Arc<ManualClock>>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::with_data_dir(data_dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    // Tests post snapshots back to back from one host; only the tests of
    // the rate limit itself set one.
    settings.ingest_burst = 100_000;
    configure(&mut settings);
    let mut application = Application::build(settings).await.expect("server builds");
    if let Some(clock) = clock {
        application.set_clock(clock);
    }
    let port = application.port();
    let state = application.state().clone();
    // Dropped with the test's runtime; no Ctrl-C handler in tests.
    tokio::spawn(application.run_until(std::future::pending()));
    let scheme = if state.tls { "https" } else { "http" };
    TestApp {
        address: format!("{scheme}://127.0.0.1:{port}"),
        port,
        agent_key: state.keys.agent.expose_secret().to_owned(),
        viewer_key: state.keys.viewer.expose_secret().to_owned(),
        state,
        data_dir,
        client: reqwest::Client::new(),
    }
}

/// As [`spawn_app_with`] for a server whose settings give a certificate
/// (`tls_cert`, `tls_key`): its `client` trusts the CA certificates in the
/// PEM `ca`.
pub async fn spawn_https_app_with(ca: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut app = spawn_app_with(configure).await;
    assert!(app.state.tls, "the settings give no certificate");
    let mut client = reqwest::Client::builder();
    for certificate in reqwest::Certificate::from_pem_bundle(ca.as_bytes()).expect("CA PEM") {
        client = client.add_root_certificate(certificate);
    }
    app.client = client.build().expect("HTTPS client");
    app
}

impl TestApp {
    /// `POST /api/processes/` with the agent key.
    pub async fn post_snapshot(&self, snapshot: &Snapshot) -> reqwest::Response {
        self.client
            .post(format!("{}/api/processes/", self.address))
            .bearer_auth(&self.agent_key)
            .json(snapshot)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /api/processes/` with any body, content type and key.
    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/api/processes/", self.address))
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("request sent")
    }

    /// `GET /api/processes/?host=…`.
    pub async fn get_processes(&self, host: &str) -> reqwest::Response {
        self.get_with_query("/api/processes/", &[("host", host)])
            .await
    }

    /// `GET /api/hosts/`.
    pub async fn get_hosts(&self) -> reqwest::Response {
        self.get("/api/hosts/").await
    }

    /// `GET` of a path (starting with `/`), no key.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_with_query(path, &[]).await
    }

    /// A separate connection to the server's database file, to check
    /// what was stored.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data_dir.path().join("procmon.db"))
            .expect("open the test database")
    }

    /// How many snapshots are stored, in every raw history block.
    pub fn stored_snapshots(&self) -> i64 {
        let db = self.db();
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'raw\\_%' ESCAPE '\\'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables
            .iter()
            .map(|t| {
                db.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap()
            })
            .sum()
    }

    /// How many hosts are stored.
    pub fn stored_hosts(&self) -> i64 {
        self.db()
            .query_row("SELECT count(*) FROM host", [], |r| r.get(0))
            .unwrap()
    }

    /// `GET` of a path with query parameters, no key.
    pub async fn get_with_query(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .query(query)
            .send()
            .await
            .expect("request sent")
    }
}

/// A plausible snapshot of a host with `count` processes: pid 1 is the
/// root, every other process a child of pid 1.
pub fn sample_snapshot(host_id: &str, count: u32) -> Snapshot {
    procmon_model::fixtures::snapshot(host_id, count)
}

/// A child process that is killed when the test ends, even by a panic.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the program `dep` is installed. When it is not: under `CI=true`
/// this panics (CI must run every test); elsewhere it prints why the test
/// is skipped and returns false.
pub fn require(dep: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(dep))))
        .unwrap_or(false);
    installed_or_skip(found, dep)
}

/// `installed`, and when it is false what [`require`] does: panic under
/// `CI=true`, else say the test is skipped because `what` (e.g. "wine")
/// is not installed.
pub fn installed_or_skip(installed: bool, what: &str) -> bool {
    if installed {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is not installed, and CI must run this test: run scripts/install-test-deps");
    }
    eprintln!("skipped: {what} is not installed (scripts/install-test-deps installs it)");
    false
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file() || path.with_extension("exe").is_file()
    }
}
