//! Delivering snapshots to the server over HTTP: `POST /api/processes/`
//! (whole) and `POST /api/changes/` (change batches).

use std::sync::Arc;
use std::time::{Duration, Instant};

use procmon_model::{
    ErrorBody, HostInfo, IngestResponse, Snapshot, SpoolReport, SPOOL_BYTES_HEADER,
    SPOOL_WAITING_HEADER,
};
use reqwest::{StatusCode, Url};
use rustls::{CertificateError, InvalidMessage};
use secrecy::{ExposeSecret, SecretString};

use crate::actions::http::HttpActions;
use crate::actions::ActionLink;
pub use crate::deliver::{compressed_json, SendError};
use crate::deliver::{Deliver, Delivery};
use crate::enroll::Credentials;
use crate::failover::Servers;
use crate::tls::{self, ServerTrust};

/// A server that takes longer than this to answer is treated as down, so one
/// stuck send cannot hold up the snapshots behind it for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an unused connection is kept for the next send.
const POOL_IDLE: Duration = Duration::from_secs(5);
/// The most of a server's answer the agent reads. Its answers are a few
/// hundred bytes; a larger one (a proxy's page gone wrong, a hostile
/// server) is an error, never an allocation of whatever it sends.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Sends snapshots to one server with one key; reuses its connections.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    server_url: Url,
    ingest_url: Url,
    changes_url: Url,
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
        let changes_url = endpoint(&base, "api/changes/");
        let client = http_client(trust).map_err(bad_url)?;
        Ok(Sender {
            client,
            server_url: base,
            ingest_url,
            changes_url,
            api_key,
        })
    }

    /// A request with this machine's key to `path` under the server's URL
    /// (the agent's endpoints besides ingest: actions), and that URL.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> (Url, reqwest::RequestBuilder) {
        let url = endpoint(&self.server_url, path);
        let request = self
            .client
            .request(method, url.clone())
            .bearer_auth(self.api_key.expose_secret());
        (url, request)
    }

    /// The server's base URL.
    pub(crate) fn server_url(&self) -> &Url {
        &self.server_url
    }

    /// The URL snapshots are posted to.
    pub fn ingest_url(&self) -> &Url {
        &self.ingest_url
    }

    /// The URL change batches are posted to.
    pub fn changes_url(&self) -> &Url {
        &self.changes_url
    }

    /// Posts `snapshot` in full; the server's answer on success. Safe to
    /// retry with the same snapshot: the server stores each snapshot id
    /// once.
    pub async fn send(&self, snapshot: &Snapshot) -> Result<IngestResponse, SendError> {
        self.deliver(Delivery::Full(snapshot)).await
    }

    /// Posts a snapshot or a change batch; a batch whose base the server
    /// lacks is [`SendError::BaseUnknown`].
    pub async fn deliver(&self, delivery: Delivery<'_>) -> Result<IngestResponse, SendError> {
        self.deliver_telling(delivery, None).await
    }

    /// As [`deliver`](Self::deliver), telling the server what the agent's
    /// spool holds (`spool`) in the request's headers.
    pub async fn deliver_telling(
        &self,
        delivery: Delivery<'_>,
        spool: Option<SpoolReport>,
    ) -> Result<IngestResponse, SendError> {
        let (url, body) = match delivery {
            Delivery::Full(snapshot) => (&self.ingest_url, compressed_json(snapshot)),
            Delivery::Batch(batch) => (&self.changes_url, compressed_json(batch)),
        };
        let body = body.map_err(|e| SendError::Rejected {
            status: 400,
            message: format!("the snapshot could not be encoded: {e}"),
        })?;
        self.post_telling(url, body, spool).await
    }

    /// Posts one zstd-compressed JSON body to `url`.
    pub async fn post(&self, url: &Url, body: Vec<u8>) -> Result<IngestResponse, SendError> {
        self.post_telling(url, body, None).await
    }

    async fn post_telling(
        &self,
        url: &Url,
        body: Vec<u8>,
        spool: Option<SpoolReport>,
    ) -> Result<IngestResponse, SendError> {
        let unreachable = |error: reqwest::Error| explain(&self.server_url, url, &error);
        let mut request = self
            .client
            .post(url.clone())
            .bearer_auth(self.api_key.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "zstd");
        if let Some(spool) = spool {
            request = request
                .header(SPOOL_WAITING_HEADER, spool.waiting)
                .header(SPOOL_BYTES_HEADER, spool.bytes);
        }
        let response = request.body(body).send().await.map_err(unreachable)?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(SendError::KeyRefused);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = answer_body(response, &self.server_url, url).await?;
        let error = serde_json::from_slice::<ErrorBody>(&body).ok();
        let kind = error.as_ref().map(|e| e.error.as_str());
        if status == StatusCode::BAD_REQUEST
            && self.server_url.scheme() == "http"
            && kind == Some("https_required")
        {
            return Err(SendError::HttpsServer {
                server_url: self.server_url.to_string(),
                https_url: with_scheme(&self.server_url, "https"),
            });
        }
        if status == StatusCode::CONFLICT && kind == Some("base_unknown") {
            return Err(SendError::BaseUnknown {
                message: server_message(&body),
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            return Err(SendError::Busy {
                status: status.as_u16(),
                message: server_message(&body),
                retry_after,
            });
        }
        if !status.is_success() {
            let mut message = server_message(&body);
            if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
                message.push_str(&format!(
                    " (nothing takes snapshots at {url}: is server_url the procmon server's address?)"
                ));
            }
            return Err(SendError::Rejected {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| SendError::Rejected {
            status: status.as_u16(),
            message: format!("the server's answer is not an IngestResponse ({e}); is server_url a procmon server?"),
        })
    }
}

/// Delivers over HTTP with the agent's key, enrolling first when it has
/// none yet (the first delivery is always a whole snapshot, which names the
/// host to enroll), to the current one of its servers, failing over to the
/// others as [`crate::failover`] says.
pub struct HttpOutbox {
    credentials: Credentials,
    servers: Servers,
    host: Option<HostInfo>,
    /// What the spool held when last noted, told with each delivery.
    spool: Option<SpoolReport>,
}

impl HttpOutbox {
    /// Sends to the first of the credentials' servers; away from it, it
    /// tries that one again every `return_after`
    /// ([`crate::failover::DEFAULT_RETURN_AFTER`] in the agent).
    pub fn new(credentials: Credentials, return_after: Duration) -> Self {
        let servers = Servers::new(credentials.server_urls().to_vec(), return_after);
        Self {
            credentials,
            servers,
            host: None,
            spool: None,
        }
    }

    /// The servers snapshots go to, first first, for the log.
    pub fn server_urls(&self) -> &[String] {
        self.servers.urls()
    }

    /// The server sent to now.
    pub fn current_server(&self) -> &str {
        self.servers.url(self.servers.current())
    }
}

impl Deliver for HttpOutbox {
    async fn deliver(&mut self, delivery: Delivery<'_>) -> Result<IngestResponse, SendError> {
        match delivery {
            Delivery::Full(snapshot) => self.host = Some(snapshot.host.clone()),
            Delivery::Batch(batch) => {
                if let Some(host) = &batch.host {
                    self.host = Some(host.clone());
                }
            }
        }
        let Some(host) = self.host.clone() else {
            return Err(SendError::BaseUnknown {
                message: "no snapshot was sent in full yet".to_owned(),
            });
        };
        let outcome = match self.credentials.senders(&host).await {
            Ok(senders) => fail_over(&mut self.servers, senders, delivery, self.spool).await,
            Err(e) => Err(e),
        };
        if matches!(outcome, Err(SendError::KeyRefused)) {
            self.credentials.refused();
        }
        outcome
    }

    fn spool_is(&mut self, report: SpoolReport) {
        self.spool = Some(report);
    }

    /// The same senders (client and key) as the snapshots, in the order
    /// their failover tries the servers now.
    fn action_link(&mut self) -> Option<Arc<dyn ActionLink>> {
        let senders = self.credentials.ready_senders();
        if senders.is_empty() {
            return None;
        }
        let order = self.servers.order(Instant::now());
        Some(Arc::new(HttpActions::new(senders.to_vec(), order)))
    }
}

/// Delivers to the servers in the order `servers` says, each at most once,
/// until one answers (whatever it answers); that one is current from then
/// on. When none does, the error of the current server (else of the last
/// tried), and the current server stays.
async fn fail_over(
    servers: &mut Servers,
    senders: &[Sender],
    delivery: Delivery<'_>,
    spool: Option<SpoolReport>,
) -> Result<IngestResponse, SendError> {
    let current = servers.current();
    let mut failures: Vec<(usize, SendError, String)> = Vec::new();
    for index in servers.order(Instant::now()) {
        let outcome = senders[index].deliver_telling(delivery, spool).await;
        if let Err(error) = &outcome {
            if let Some(why) = crate::failover::unusable(error) {
                servers.failed(index, Instant::now(), &why);
                failures.push((index, outcome.expect_err("an error"), why));
                continue;
            }
        }
        let why = failures
            .iter()
            .find(|(tried, _, _)| *tried == current)
            .map(|(_, _, why)| why.as_str());
        servers.answered(index, Instant::now(), why);
        return outcome;
    }
    let at = failures
        .iter()
        .position(|(tried, _, _)| *tried == current)
        .unwrap_or(failures.len() - 1);
    Err(failures.swap_remove(at).1)
}

/// The body of a server's answer to `url`, read as it arrives (inflated,
/// when the server compressed it) and refused once it is larger than
/// [`MAX_ANSWER_BYTES`].
pub(crate) async fn answer_body(
    response: reqwest::Response,
    server_url: &Url,
    url: &Url,
) -> Result<Vec<u8>, SendError> {
    answer_body_within(response, server_url, url, MAX_ANSWER_BYTES).await
}

/// As [`answer_body`], refused once larger than `limit` bytes.
pub(crate) async fn answer_body_within(
    mut response: reqwest::Response,
    server_url: &Url,
    url: &Url,
    limit: usize,
) -> Result<Vec<u8>, SendError> {
    let too_large = || SendError::AnswerTooLarge {
        url: url.to_string(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| explain(server_url, url, &e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
/// with a host, without the API's own `/api`. Else the reason, for a
/// person, with what to write instead.
pub(crate) fn parse_server_url(text: &str) -> Result<Url, String> {
    let text = text.trim();
    const EXAMPLE: &str = "http://127.0.0.1:8000";
    // "127.0.0.1:8000" is no URL at all, and "localhost:8000" one with the
    // scheme "localhost": either way what is missing is the scheme.
    if !text.contains("://") {
        let example = if text.is_empty() {
            EXAMPLE.to_owned()
        } else {
            format!("http://{}", text.trim_start_matches('/'))
        };
        return Err(format!("add http:// (e.g. {example})"));
    }
    let url = Url::parse(text).map_err(|e| format!("{e}; write it as e.g. {EXAMPLE}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "it must start with http:// or https://, e.g. {EXAMPLE}"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("it names no host; write it as e.g. {EXAMPLE}"));
    }
    // The agent adds /api/... itself; a URL that has it already would
    // post to /api/api/processes/ and get a puzzling 404.
    let path = url.path().trim_end_matches('/');
    if path == "/api" || path.ends_with("/api") {
        let mut without = url.clone();
        without.set_path(&path[..path.len() - "/api".len()]);
        without.set_query(None);
        return Err(format!(
            "leave out /api: server_url is the server's own address, e.g. {}",
            without.as_str().trim_end_matches('/')
        ));
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
