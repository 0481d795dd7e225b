//! Helpers shared by the server's test binaries: a real server on a free
//! port with a fresh SQLite file, typed requests against it, sample data,
//! `require` for tests that need a program installed, and fresh PostgreSQL
//! databases (`postgres`).
#![allow(dead_code)]

pub mod postgres;

use std::path::Path;

use std::sync::Arc;

use procmon_model::{ChangeBatch, ErrorBody, Snapshot};
use procmon_server::clock::ManualClock;
use procmon_server::config::Settings;
use procmon_server::startup::{AppState, Application};
use procmon_server::store::accounts::Role;
use secrecy::ExposeSecret;
use serde_json::Value;
use tempfile::TempDir;

/// A running server with its own data directory, deleted when dropped.
pub struct TestApp {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`
    /// (`https://` when the settings give a certificate).
    pub address: String,
    /// The port the server listens on.
    pub port: u16,
    /// The CA certificates (PEM) its clients trust, for an HTTPS server.
    ca: Option<String>,
    /// An agent key for host "host-a" (the host of most tests' snapshots).
    pub agent_key: String,
    /// Keys made so far, by host, for [`TestApp::post_snapshot`].
    keys: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// What the handlers share, to reach the store directly.
    pub state: AppState,
    /// Where the database and key files are.
    pub data_dir: TempDir,
    /// A client signed in as [`TEST_USER`] (an admin): it keeps the
    /// session cookie and sends the CSRF header, as the page does.
    pub client: reqwest::Client,
}

/// The admin every test server has, signed in by `TestApp::client`.
pub const TEST_USER: &str = "tester";
/// Their password.
pub const TEST_PASSWORD: &str = "test-password-1";

/// A server on 127.0.0.1, port 0, fresh database, embedded agent off.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// As [`spawn_app`], with `configure` changing the settings first (the
/// data directory is already a fresh temporary one).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_clock(None, configure).await
}

/// As [`spawn_app_with`], on the database at `url` (e.g. a new one from
/// [`postgres::fresh_database`]) instead of a new SQLite file. Servers
/// started on one URL share it, as servers behind a balancer do: the
/// second finds [`TEST_USER`] there and signs in as them.
pub async fn spawn_app_on(url: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = url.parse().expect("a database URL");
    spawn_app_with(|settings| {
        settings.database = database;
        configure(settings);
    })
    .await
}

/// As [`spawn_app_with`], with the server's "now" taken from `clock`.
pub async fn spawn_app_with_clock(
    clock: Option<Arc<ManualClock>>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn(clock, None, configure).await
}

/// A server as the settings say; its clients trust the CA certificates in
/// the PEM `ca` when given (for HTTPS).
async fn spawn(
    clock: Option<Arc<ManualClock>>,
    ca: Option<&str>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::with_data_dir(data_dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    // Tests post snapshots back to back from one host; only the tests of
    // the rate limit itself set one.
    settings.ingest_burst = 100_000;
    if let Some(url) = postgres::database_for_api_tests().await {
        settings.database = url.parse().expect("a PostgreSQL URL");
    }
    configure(&mut settings);
    let mut application = Application::build(settings).await.expect("server builds");
    if let Some(clock) = clock {
        application.set_clock(clock);
    }
    let port = application.port();
    let state = application.state().clone();
    // Dropped with the test's runtime; no Ctrl-C handler in tests.
    tokio::spawn(application.run_until(std::future::pending()));
    let agent_key = state
        .agent_keys
        .create(Some("host-a"), "test", chrono::Utc::now())
        .await
        .expect("a key for host-a")
        .key
        .expose_secret()
        .to_owned();
    let scheme = if state.tls { "https" } else { "http" };
    let mut app = TestApp {
        address: format!("{scheme}://127.0.0.1:{port}"),
        ca: ca.map(str::to_owned),
        port,
        keys: std::sync::Mutex::new([("host-a".to_owned(), agent_key.clone())].into()),
        agent_key,
        state,
        data_dir,
        client: reqwest::Client::new(),
    };
    // A server on a database another test server made finds its user.
    let known = app.state.accounts.find_user(TEST_USER).await;
    if known.expect("the users can be read").is_none() {
        app.add_user(TEST_USER, Role::Admin, TEST_PASSWORD).await;
    }
    let client = browser_like_client_trusting(app.ca.as_deref());
    match client
        .post(format!("{}/api/session/", app.address))
        .json(&serde_json::json!({ "name": TEST_USER, "password": TEST_PASSWORD }))
        .send()
        .await
    {
        Ok(response) => {
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
            app.client = client;
        }
        // An HTTPS server whose certificate the given CA does not vouch for
        // (the certificate tests make such servers on purpose): its client
        // stays without a session.
        Err(_) if app.state.tls => {}
        Err(e) => panic!("cannot sign in to the test server: {e}"),
    }
    app
}

/// A client that keeps cookies and sends the CSRF header, as the page.
pub fn browser_like_client() -> reqwest::Client {
    browser_like_client_trusting(None)
}

fn browser_like_client_trusting(ca: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-procmon-csrf",
        reqwest::header::HeaderValue::from_static("1"),
    );
    client_builder(ca)
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// As [`spawn_app_with`] for a server whose settings give a certificate
/// (`tls_cert`, `tls_key`): its `client` trusts the CA certificates in the
/// PEM `ca`.
pub async fn spawn_https_app_with(ca: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn(None, Some(ca), configure).await;
    assert!(app.state.tls, "the settings give no certificate");
    app
}

/// A client builder that trusts the CA certificates in the PEM `ca`.
fn client_builder(ca: Option<&str>) -> reqwest::ClientBuilder {
    let mut client = reqwest::Client::builder();
    if let Some(ca) = ca {
        for certificate in reqwest::Certificate::from_pem_bundle(ca.as_bytes()).expect("CA PEM") {
            client = client.add_root_certificate(certificate);
        }
    }
    client
}

impl TestApp {
    /// Adds a user through the store, as `procmon-server users add` does.
    pub async fn add_user(&self, name: &str, role: Role, password: &str) {
        procmon_server::accounts::add_user(
            self.state.accounts.as_ref(),
            name,
            role,
            Some(password.to_owned().into()),
            chrono::Utc::now(),
        )
        .await
        .expect("the user is added");
    }

    /// `POST /api/session/` with a name and password from `client`.
    pub async fn sign_in_with(
        &self,
        client: &reqwest::Client,
        name: &str,
        password: &str,
    ) -> reqwest::Response {
        client
            .post(format!("{}/api/session/", self.address))
            .json(&serde_json::json!({ "name": name, "password": password }))
            .send()
            .await
            .expect("request sent")
    }

    /// A new client signed in as `name`.
    pub async fn signed_in_client(&self, name: &str, password: &str) -> reqwest::Client {
        let client = browser_like_client_trusting(self.ca.as_deref());
        let response = self.sign_in_with(&client, name, password).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        client
    }

    /// A client with no session (and no cookie store).
    pub fn anonymous(&self) -> reqwest::Client {
        client_builder(self.ca.as_deref())
            .build()
            .expect("a client")
    }

    /// A key bound to `host_id`, made on first use.
    pub async fn key_for(&self, host_id: &str) -> String {
        if let Some(key) = self.keys.lock().unwrap().get(host_id) {
            return key.clone();
        }
        let key = self
            .state
            .agent_keys
            .create(Some(host_id), "test", chrono::Utc::now())
            .await
            .expect("a key")
            .key
            .expose_secret()
            .to_owned();
        self.keys
            .lock()
            .unwrap()
            .insert(host_id.to_owned(), key.clone());
        key
    }

    /// A new key bound to no host yet: its first snapshot binds it, as for
    /// a real agent whose host id the test does not know.
    pub async fn unbound_key(&self) -> String {
        self.state
            .agent_keys
            .create(None, "test agent", chrono::Utc::now())
            .await
            .expect("a key")
            .key
            .expose_secret()
            .to_owned()
    }

    /// `POST /api/processes/` with the key of the snapshot's host, from a
    /// client with no session (agents have none).
    pub async fn post_snapshot(&self, snapshot: &Snapshot) -> reqwest::Response {
        let key = self.key_for(&snapshot.host.id).await;
        self.anonymous()
            .post(format!("{}/api/processes/", self.address))
            .bearer_auth(key)
            .json(snapshot)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /api/changes/` with the key of the batch's host, as JSON.
    pub async fn post_changes(&self, batch: &ChangeBatch) -> reqwest::Response {
        let key = self.key_for(&batch.host_id).await;
        self.anonymous()
            .post(format!("{}/api/changes/", self.address))
            .bearer_auth(key)
            .json(batch)
            .send()
            .await
            .expect("request sent")
    }

    /// The stored listing of `host` as of `at`, less what later snapshots
    /// or the time of arrival change (the host's summary, `received_at`).
    pub async fn listing_at(&self, host: &str, at: chrono::DateTime<chrono::Utc>) -> Value {
        let at = at.to_rfc3339();
        let response = self
            .get_with_query("/api/processes/", &[("host", host), ("at", &at)])
            .await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let mut listing: Value = response.json().await.unwrap();
        let object = listing.as_object_mut().unwrap();
        object.remove("host");
        object.remove("received_at");
        // In the order a person sees them, whatever order they came in.
        object["processes"]
            .as_array_mut()
            .unwrap()
            .sort_by_key(|p| p["pid"].as_u64());
        listing
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

    /// How many snapshots are stored, read through the store's trait
    /// (so on either backend).
    pub async fn stored_snapshots(&self) -> i64 {
        let count = self
            .state
            .store
            .count_snapshots()
            .await
            .expect("the store counts");
        i64::try_from(count).unwrap()
    }

    /// How many hosts are stored.
    pub async fn stored_hosts(&self) -> i64 {
        let hosts = self
            .state
            .store
            .hosts()
            .await
            .expect("the store lists hosts");
        i64::try_from(hosts.len()).unwrap()
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

/// The error body of `response`, once its status is checked to be
/// `status`.
pub async fn error_of(response: reqwest::Response, status: u16) -> ErrorBody {
    let got = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).expect("an ErrorBody")
}

/// The value of the series `series` (name and labels, as written) in the
/// admin's scrape of `GET /metrics`.
pub async fn metric(app: &TestApp, series: &str) -> f64 {
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
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

/// A 429 with error `code`: its `Retry-After` in seconds, which must lie
/// in `expected`, and its error body.
pub async fn too_many(
    response: reqwest::Response,
    code: &str,
    expected: std::ops::RangeInclusive<u64>,
) -> (u64, ErrorBody) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expected.contains(&retry_after), "{retry_after}");
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, code);
    (retry_after, error)
}
