//! Helpers shared by the server's test binaries: a real server on a free
//! port with a fresh SQLite file, typed requests against it, sample data,
//! and `require` for tests that need a program installed.
#![allow(dead_code)]

use std::path::Path;

use chrono::{Duration, Utc};
use procmon_model::{HostInfo, ProcessSample, ProcessStatus, Snapshot, WIRE_VERSION};
use procmon_server::config::Settings;
use procmon_server::startup::{AppState, Application};
use secrecy::ExposeSecret;
use tempfile::TempDir;
use uuid::Uuid;

/// A running server with its own data directory, deleted when dropped.
pub struct TestApp {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`.
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
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::with_data_dir(data_dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    // Tests post snapshots back to back from one host; only the tests of
    // the rate limit itself set one.
    settings.ingest_burst = 100_000;
    configure(&mut settings);
    let application = Application::build(settings).await.expect("server builds");
    let port = application.port();
    let state = application.state().clone();
    // Dropped with the test's runtime; no Ctrl-C handler in tests.
    tokio::spawn(application.run_until(std::future::pending()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        agent_key: state.keys.agent.expose_secret().to_owned(),
        viewer_key: state.keys.viewer.expose_secret().to_owned(),
        state,
        data_dir,
        client: reqwest::Client::new(),
    }
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

    /// A separate connection to the server's database file, to check what
    /// was stored (or to plant old rows).
    pub async fn db(&self) -> sqlx::SqlitePool {
        let path = self.data_dir.path().join("procmon.db");
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path))
            .await
            .expect("open the test database")
    }

    /// `SELECT count(*)` of a table in the server's database.
    pub async fn count(&self, table: &str) -> i64 {
        let db = self.db().await;
        let count = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&db)
            .await
            .expect("count rows");
        db.close().await;
        count
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
    let now = Utc::now();
    Snapshot {
        version: WIRE_VERSION,
        id: Uuid::new_v4(),
        collected_at: now,
        interval_ms: 2000,
        host: HostInfo {
            id: host_id.to_owned(),
            hostname: format!("{host_id}-name"),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            kernel: "6.1.0".into(),
            arch: "x86_64".into(),
            cpu_count: 4,
            memory_total_bytes: 8 << 30,
            boot_time: now - Duration::hours(5),
            agent_version: "0.1.0".into(),
        },
        processes: (1..=count)
            .map(|pid| ProcessSample {
                pid,
                parent_pid: (pid != 1).then_some(1),
                name: format!("proc-{pid}"),
                exe: Some(format!("/usr/bin/proc-{pid}")),
                cmd: vec![
                    format!("/usr/bin/proc-{pid}"),
                    "--flag".into(),
                    format!("arg {pid}"),
                ],
                user: Some("root".into()),
                start_time: now - Duration::minutes(i64::from(pid)),
                status: ProcessStatus::Sleeping,
                cpu_percent: 0.5,
                memory_rss_bytes: 1_000_000 + u64::from(pid),
                memory_virtual_bytes: 10_000_000,
                memory_private_bytes: Some(500_000),
                threads: Some(2),
                handles: Some(10),
                disk_read_bytes: 4096,
                disk_written_bytes: 512,
            })
            .collect(),
    }
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
