//! What the fault tests share: a server that can be stopped and started
//! again on the same data directory, a tmpfs to fill or take away, and
//! snapshots that do not compress.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use procmon_model::{ErrorBody, ProcessListing, Snapshot};
use procmon_server::config::Settings;
use procmon_server::startup::{AppState, Application};
use secrecy::ExposeSecret;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::common::installed_or_skip;

/// A server on 127.0.0.1 serving `dir`, stopped cleanly by [`Server::stop`]
/// so that another can be started on the same directory.
pub struct Server {
    pub address: String,
    /// A key per host, made on first use.
    keys: std::sync::Mutex<std::collections::HashMap<String, String>>,
    pub state: AppState,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// What the server answered to a snapshot.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The error body, for anything but 201.
    pub error: Option<ErrorBody>,
    pub elapsed: Duration,
}

impl Answer {
    /// Panics unless this is 201, or a 503 `store_unavailable` whose
    /// message contains every one of `words` (ignoring case).
    pub fn created_or_unavailable(&self, words: &[&str]) -> bool {
        match (self.status, &self.error) {
            (201, _) => true,
            (503, Some(e)) if e.error == "store_unavailable" => {
                let message = e.message.to_lowercase();
                assert!(
                    words.iter().all(|w| message.contains(w)),
                    "the 503 should name {words:?}: {e:?}"
                );
                false
            }
            _ => panic!("expected 201 or 503 store_unavailable, got {self:?}"),
        }
    }
}

/// A client that lets a connection go after 5 s unused: the server closes
/// one idle for its `header_timeout` (10 s), and a request sent on it at
/// that very moment is lost in flight (hyper's "IncompleteMessage").
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("a client")
}

impl Server {
    /// Builds and runs a server whose data directory is `dir` (embedded
    /// agent off, no rate limit to speak of).
    pub async fn start(dir: &Path) -> Self {
        let mut settings = Settings::with_data_dir(dir);
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.embedded_agent = false;
        // These tests are about the store, not about signing in: reads go
        // without a session, as the loopback-only setting allows.
        settings.no_login = true;
        settings.ingest_burst = 100_000;
        let application = Application::build(settings)
            .await
            .expect("the server builds");
        let state = application.state().clone();
        let port = application.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            address: format!("http://127.0.0.1:{port}"),
            keys: Default::default(),
            state,
            client: client(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has closed the database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the server stops within 30 s")
                .expect("the server task")
                .expect("the server stops cleanly");
        }
    }

    /// `POST /api/processes/`.
    pub async fn post(&self, snapshot: &Snapshot) -> Answer {
        let key = self.key_for(&snapshot.host.id).await;
        post(&self.client, &self.address, &key, snapshot).await
    }

    /// A key bound to `host`, made on first use.
    pub async fn key_for(&self, host: &str) -> String {
        if let Some(key) = self.keys.lock().unwrap().get(host) {
            return key.clone();
        }
        let made = self
            .state
            .agent_keys
            .create(Some(host), "test", Utc::now())
            .await
            .expect("a key");
        let key = made.key.expose_secret().to_owned();
        self.keys
            .lock()
            .unwrap()
            .insert(host.to_owned(), key.clone());
        key
    }

    /// The status of `GET /api/health`.
    pub async fn health(&self) -> u16 {
        self.client
            .get(format!("{}/api/health", self.address))
            .send()
            .await
            .expect("health answered")
            .status()
            .as_u16()
    }

    /// The id of the snapshot `GET /api/processes/?host=&at=` shows.
    pub async fn shown_at(&self, host: &str, at: DateTime<Utc>) -> Option<Uuid> {
        shown_at(&self.client, &self.address, host, at).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// `POST /api/processes/` to the server at `address`.
pub async fn post(
    client: &reqwest::Client,
    address: &str,
    key: &str,
    snapshot: &Snapshot,
) -> Answer {
    let started = Instant::now();
    let response = client
        .post(format!("{address}/api/processes/"))
        .bearer_auth(key)
        .json(snapshot)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let error = if status == 201 {
        None
    } else {
        Some(
            response
                .json::<ErrorBody>()
                .await
                .unwrap_or_else(|e| panic!("a {status} must have a JSON error body: {e}")),
        )
    };
    Answer {
        status,
        error,
        elapsed: started.elapsed(),
    }
}

/// The id of the snapshot the server at `address` shows for `host` at `at`
/// (None on 404).
pub async fn shown_at(
    client: &reqwest::Client,
    address: &str,
    host: &str,
    at: DateTime<Utc>,
) -> Option<Uuid> {
    let response = client
        .get(format!("{address}/api/processes/"))
        .query(&[("host", host), ("at", &rfc3339(at))])
        .send()
        .await
        .expect("request sent");
    match response.status().as_u16() {
        200 => Some(response.json::<ProcessListing>().await.unwrap().snapshot_id),
        404 => None,
        status => panic!(
            "GET processes at {at}: {status} {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

/// A time as the API takes it, to the nanosecond.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A snapshot of `count` processes taken now, each with a long command
/// line of random text, so that it neither compresses nor deltas away.
pub fn bulky_snapshot(host: &str, count: u32) -> Snapshot {
    let mut snapshot = procmon_model::fixtures::snapshot(host, count);
    for p in &mut snapshot.processes {
        p.cmd.push(
            (0..6)
                .map(|_| Uuid::new_v4().simple().to_string())
                .collect(),
        );
    }
    snapshot
}

/// Checks, on a server started anew, that every acknowledged snapshot is
/// shown at its time and no refused one is.
pub async fn check_stored(server: &Server, host: &str, acked: &[Snapshot], refused: &[Snapshot]) {
    for s in acked {
        assert_eq!(
            server.shown_at(host, s.collected_at).await,
            Some(s.id),
            "snapshot {} was acknowledged with 201 but is not stored",
            s.id
        );
    }
    for s in refused {
        assert_ne!(
            server.shown_at(host, s.collected_at).await,
            Some(s.id),
            "snapshot {} was refused with 503 but is stored",
            s.id
        );
    }
}

/// How many snapshots the database at `path` holds, across its raw blocks.
pub fn count_stored(path: &Path) -> i64 {
    let db = rusqlite::Connection::open(path).expect("open the database");
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

/// Whether this process may mount (root); when not, what
/// [`installed_or_skip`] does (a failure under `CI=true`).
pub fn can_mount() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    installed_or_skip(root, "root (for mount)")
}

/// A tmpfs mounted on a fresh temporary directory, unmounted when dropped.
pub struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options` (e.g. `size=2m`).
    pub fn mount(options: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        mount(&["-t", "tmpfs", "-o", options, "tmpfs"], dir.path()).expect("mount a tmpfs");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `mount -o remount,<options>`.
    pub fn remount(&self, options: &str) -> Result<(), String> {
        mount(&["-o", &format!("remount,{options}")], self.path())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, and again while anything is stacked on it.
        while umount(self.path()) {}
    }
}

/// Runs `mount <args> <dir>`; its complaint when it fails.
pub fn mount(args: &[&str], dir: &Path) -> Result<(), String> {
    let output = Command::new("mount")
        .args(args)
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// `umount -l <dir>`; whether something was unmounted.
pub fn umount(dir: &Path) -> bool {
    Command::new("umount")
        .arg("-l")
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The database file in a data directory, and its two companions.
pub fn database_files(dir: &Path) -> [PathBuf; 3] {
    let db = dir.join("procmon.db");
    [
        db.clone(),
        dir.join("procmon.db-wal"),
        dir.join("procmon.db-shm"),
    ]
}
