//! Delivering one snapshot to the server: `POST /api/processes/`.

use std::time::Duration;

use procmon_model::{ErrorBody, IngestResponse, Snapshot};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

/// A server that takes longer than this to answer is treated as down, so one
/// stuck send cannot hold up the snapshots behind it for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a snapshot was not delivered. Each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(
        "{server_url:?} is not a usable server URL ({reason}); set server_url to e.g. \
         http://127.0.0.1:8000"
    )]
    BadUrl { server_url: String, reason: String },
    #[error(
        "cannot reach the procmon server at {url}: {cause}. Is the server running, and is \
         server_url right?"
    )]
    Unreachable {
        /// The full URL that was tried.
        url: String,
        /// What went wrong underneath (connection refused, timeout, ...).
        cause: String,
    },
    #[error(
        "the server refused this machine's key (wrong, revoked, or for another host): set \
         api_key to a key made for this host with `procmon-server keys create`, or set \
         enroll_secret to the server's enrollment secret to enroll again"
    )]
    KeyRefused,
    #[error(
        "the server refused the enrollment secret: set enroll_secret to the one the server \
         printed at its first start, or make a new one with `procmon-server enroll-secret rotate`"
    )]
    EnrollRefused,
    #[error("cannot keep the key the server gave in {path}: {cause}")]
    KeyFile { path: String, cause: String },
    #[error("the server rejected the snapshot ({status}): {message}")]
    Rejected {
        /// The HTTP status the server answered with.
        status: StatusCode,
        /// The server's own explanation, from its error body when it sent one.
        message: String,
    },
}

/// Sends snapshots to one server with one key; reuses its connections.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    ingest_url: Url,
    api_key: SecretString,
}

impl Sender {
    /// A sender for the server at `server_url` (e.g. `http://127.0.0.1:8000`).
    /// Fails only when the URL cannot be used; nothing is contacted yet.
    pub fn new(server_url: &str, api_key: SecretString) -> Result<Sender, SendError> {
        let bad_url = |reason: String| SendError::BadUrl {
            server_url: server_url.to_owned(),
            reason,
        };
        let base = parse_server_url(server_url).map_err(bad_url)?;
        // Keep any path prefix (a server behind a reverse proxy at /procmon/).
        let ingest_url = endpoint(&base, "api/processes/");
        let client = http_client().map_err(bad_url)?;
        Ok(Sender {
            client,
            ingest_url,
            api_key,
        })
    }

    /// The URL snapshots are posted to.
    pub fn ingest_url(&self) -> &Url {
        &self.ingest_url
    }

    /// Posts `snapshot`; the server's answer on success. Safe to retry with
    /// the same snapshot: the server stores each snapshot id once.
    pub async fn send(&self, snapshot: &Snapshot) -> Result<IngestResponse, SendError> {
        let unreachable = |error: reqwest::Error| SendError::Unreachable {
            url: self.ingest_url.to_string(),
            cause: describe(&error),
        };
        let response = self
            .client
            .post(self.ingest_url.clone())
            .bearer_auth(self.api_key.expose_secret())
            .json(snapshot)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(SendError::KeyRefused);
        }
        let body = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let mut message = server_message(&body);
            if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
                message.push_str(&format!(
                    " (nothing takes snapshots at {}: is server_url the procmon server's address?)",
                    self.ingest_url
                ));
            }
            return Err(SendError::Rejected { status, message });
        }
        serde_json::from_slice(&body).map_err(|e| SendError::Rejected {
            status,
            message: format!("the server's answer is not an IngestResponse ({e}); is server_url a procmon server?"),
        })
    }
}

/// The HTTP client every request of the agent goes through.
pub(crate) fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("procmon-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// `base` with `path` (e.g. "api/enroll/") after its own path, which
/// may be a reverse proxy's prefix.
pub(crate) fn endpoint(base: &Url, path: &str) -> Url {
    let prefix = base.path().trim_end_matches('/').to_owned();
    let mut url = base.clone();
    url.set_path(&format!("{prefix}/{path}"));
    url
}

/// `text` as the base URL of a server the agent can send to: http or https,
/// with a host. Else the reason, for a person.
pub(crate) fn parse_server_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("it must start with http:// or https://".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it names no host".to_owned());
    }
    Ok(url)
}

/// The server's `ErrorBody.message`, or the start of whatever else it sent
/// (a proxy's HTML page, say).
pub(crate) fn server_message(body: &[u8]) -> String {
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(body) {
        return error.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "no explanation given".to_owned();
    }
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// reqwest's own message ("error sending request for url (...)") repeats
/// the URL and hides the cause; the innermost error says what happened
/// ("Connection refused", "dns error: ...").
pub(crate) fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", REQUEST_TIMEOUT.as_secs());
    }
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    innermost.to_string()
}
