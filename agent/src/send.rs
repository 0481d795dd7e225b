//! Delivering one snapshot to the server: `POST /api/processes/`.

use std::time::Duration;

use procmon_model::{ErrorBody, IngestResponse, Snapshot};
use reqwest::{StatusCode, Url};
use rustls::{CertificateError, InvalidMessage};
use secrecy::{ExposeSecret, SecretString};

use crate::tls::{self, ServerTrust};

/// A server that takes longer than this to answer is treated as down, so one
/// stuck send cannot hold up the snapshots behind it for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an unused connection is kept for the next send.
const POOL_IDLE: Duration = Duration::from_secs(5);

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
        "the server's certificate is not trusted: {reason} (at {url}). If the server's \
         certificate is self-signed or from your own CA, give its CA with --ca-file \
         (ca_file in procmon-agent.toml)"
    )]
    UntrustedCertificate {
        /// The full URL that was tried.
        url: String,
        /// What is wrong with the certificate.
        reason: String,
    },
    #[error(
        "the server's certificate is not issued for {host} (at {url}): set server_url to a \
         name or address that the certificate lists"
    )]
    CertificateNameMismatch {
        /// The full URL that was tried.
        url: String,
        /// The host in server_url.
        host: String,
    },
    #[error("the server at {server_url} speaks plain http, not https: use {http_url}")]
    PlainHttpServer {
        /// The server URL as configured.
        server_url: String,
        /// The same with http://.
        http_url: String,
    },
    #[error("the server at {server_url} speaks https: use {https_url}")]
    HttpsServer {
        /// The server URL as configured.
        server_url: String,
        /// The same with https://.
        https_url: String,
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
    server_url: Url,
    ingest_url: Url,
    api_key: SecretString,
}

impl Sender {
    /// A sender for the server at `server_url` (e.g. `http://127.0.0.1:8000`),
    /// trusting the public CAs over https. Fails only when the URL cannot be
    /// used; nothing is contacted yet.
    pub fn new(server_url: &str, api_key: SecretString) -> Result<Sender, SendError> {
        Self::with_trust(server_url, api_key, &ServerTrust::default())
    }

    /// As [`new`](Self::new), accepting the server certificates `trust`
    /// says.
    pub fn with_trust(
        server_url: &str,
        api_key: SecretString,
        trust: &ServerTrust,
    ) -> Result<Sender, SendError> {
        let bad_url = |reason: String| SendError::BadUrl {
            server_url: server_url.to_owned(),
            reason,
        };
        let base = parse_server_url(server_url).map_err(bad_url)?;
        // Keep any path prefix (a server behind a reverse proxy at /procmon/).
        let ingest_url = endpoint(&base, "api/processes/");
        let client = http_client(trust).map_err(bad_url)?;
        Ok(Sender {
            client,
            server_url: base,
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
        let unreachable = |error: reqwest::Error| self.unreachable(&error);
        let body = compressed_json(snapshot).map_err(|e| SendError::Rejected {
            status: StatusCode::BAD_REQUEST,
            message: format!("the snapshot could not be encoded: {e}"),
        })?;
        let response = self
            .client
            .post(self.ingest_url.clone())
            .bearer_auth(self.api_key.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "zstd")
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(SendError::KeyRefused);
        }
        let body = response.bytes().await.map_err(unreachable)?;
        if status == StatusCode::BAD_REQUEST
            && self.server_url.scheme() == "http"
            && serde_json::from_slice::<ErrorBody>(&body).is_ok_and(|e| e.error == "https_required")
        {
            return Err(SendError::HttpsServer {
                server_url: self.server_url.to_string(),
                https_url: with_scheme(&self.server_url, "https"),
            });
        }
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

impl Sender {
    /// Why the request got no answer.
    fn unreachable(&self, error: &reqwest::Error) -> SendError {
        explain(&self.server_url, &self.ingest_url, error)
    }
}

/// Why a request to `tried` on the server at `server_url` got no answer: a
/// TLS handshake that failed, said as what to do, or the transport's own
/// cause.
pub(crate) fn explain(server_url: &Url, tried: &Url, error: &reqwest::Error) -> SendError {
    let url = tried.to_string();
    match tls::tls_error(error) {
        // A plain-http server answers a TLS hello with an HTTP error
        // page, whose first byte is no TLS record type.
        Some(rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType)) => {
            SendError::PlainHttpServer {
                server_url: server_url.to_string(),
                http_url: with_scheme(server_url, "http"),
            }
        }
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => SendError::CertificateNameMismatch {
            url,
            host: server_url.host_str().unwrap_or_default().to_owned(),
        },
        Some(rustls::Error::InvalidCertificate(why)) => SendError::UntrustedCertificate {
            url,
            reason: certificate_problem(why),
        },
        _ => SendError::Unreachable {
            url,
            cause: describe(error),
        },
    }
}

/// What is wrong with a refused certificate, for a person.
fn certificate_problem(error: &CertificateError) -> String {
    match error {
        CertificateError::UnknownIssuer => {
            "it is not issued by a CA the agent knows (a self-signed certificate, or one from a \
             private CA)"
                .to_owned()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (is this machine's clock right?)".to_owned()
        }
        CertificateError::ApplicationVerificationFailure => {
            "it is not the server's own certificate".to_owned()
        }
        CertificateError::Other(other)
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            // What `openssl req -x509` makes unless told CA:FALSE.
            "it is a CA certificate (basicConstraints CA:TRUE) used as the server's own; \
             make the server's certificate with basicConstraints CA:FALSE"
                .to_owned()
        }
        CertificateError::Other(other) => other.to_string(),
        other => format!("{other:?}"),
    }
}

/// `url` with its scheme replaced, keeping the port it actually names (an
/// https:// URL without a port means 443, which http:// must then say).
fn with_scheme(url: &Url, scheme: &str) -> String {
    let mut changed = url.clone();
    let port = url.port_or_known_default();
    if changed.set_scheme(scheme).is_ok() {
        let _ = changed.set_port(port);
    }
    changed.to_string().trim_end_matches('/').to_owned()
}

/// zstd level for snapshots: its default, which makes a 1,000-process
/// snapshot's JSON (about half a megabyte, mostly repeated text) some forty
/// times smaller in about a millisecond.
const ZSTD_LEVEL: i32 = 3;

/// The snapshot as JSON, compressed with zstd (sent as
/// `Content-Encoding: zstd`; the server inflates it).
pub fn compressed_json(snapshot: &Snapshot) -> std::io::Result<Vec<u8>> {
    let json = serde_json::to_vec(snapshot).map_err(std::io::Error::other)?;
    zstd::bulk::compress(&json, ZSTD_LEVEL)
}

/// The HTTP client every request of the agent goes through, accepting the
/// server certificates `trust` says.
pub(crate) fn http_client(trust: &ServerTrust) -> Result<reqwest::Client, String> {
    let cannot_set_up = |e: &dyn std::fmt::Display| format!("cannot set up the HTTP client: {e}");
    let mut client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        // A server closes a connection idle for its header timeout (10 s
        // by default); a send on it at that very moment is lost in flight.
        // Letting it go sooner avoids the race (at 2 s intervals it is
        // reused every time).
        .pool_idle_timeout(POOL_IDLE)
        .user_agent(concat!("procmon-agent/", env!("CARGO_PKG_VERSION")));
    match trust {
        ServerTrust::PublicCas => {}
        ServerTrust::CaFile(file) => {
            for certificate in file.certificates() {
                let certificate =
                    reqwest::Certificate::from_der(certificate).map_err(|e| cannot_set_up(&e))?;
                client = client.add_root_certificate(certificate);
            }
        }
        ServerTrust::Pinned(certificate) => {
            let config = tls::pinned_config(certificate).map_err(|e| cannot_set_up(&e))?;
            client = client.use_preconfigured_tls(config);
        }
    }
    client.build().map_err(|e| cannot_set_up(&e))
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
