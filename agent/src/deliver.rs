//! Handing snapshots to a server: the seam between the agent's loop and
//! the way it reaches the server.
//!
//! The loop ([`crate::run_with`]) takes snapshots and decides what goes: a
//! snapshot in full, or a change batch against the last one the server
//! acknowledged. A [`Deliver`] takes it there: over HTTP
//! ([`crate::send::HttpOutbox`], with the `http` feature), or in process
//! for the agent the server runs itself.

use std::future::Future;
use std::sync::Arc;

use procmon_model::{ChangeBatch, IngestResponse, Snapshot, SpoolReport};

use crate::actions::ActionLink;

/// zstd level for snapshots: its default, which makes a 1,000-process
/// snapshot's JSON (about half a megabyte, mostly repeated text) some forty
/// times smaller in about a millisecond.
const ZSTD_LEVEL: i32 = 3;

/// A snapshot or batch as JSON, compressed with zstd (sent as
/// `Content-Encoding: zstd`; the server inflates it).
pub fn compressed_json(value: &impl serde::Serialize) -> std::io::Result<Vec<u8>> {
    let json = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    zstd::bulk::compress(&json, ZSTD_LEVEL)
}

/// What goes to the server.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    /// A whole snapshot (`POST /api/processes/`).
    Full(&'a Snapshot),
    /// What changed since a snapshot the server acknowledged
    /// (`POST /api/changes/`).
    Batch(&'a ChangeBatch),
}

impl Delivery<'_> {
    /// The id of the snapshot delivered (a batch's is the one it makes).
    pub fn id(&self) -> uuid::Uuid {
        match self {
            Self::Full(s) => s.id,
            Self::Batch(b) => b.id,
        }
    }
}

/// Takes snapshots and batches to a server.
pub trait Deliver: Send {
    /// Delivers one; the server's answer (201) on success. A batch whose
    /// base the server lacks is [`SendError::BaseUnknown`], and nothing was
    /// stored. Safe to repeat: the server stores a snapshot id once.
    fn deliver(
        &mut self,
        delivery: Delivery<'_>,
    ) -> impl Future<Output = Result<IngestResponse, SendError>> + Send;

    /// Notes what the agent's spool holds now; the deliveries after this
    /// tell the server (see [`procmon_model::SpoolReport`]), whose metrics
    /// show the fleet's backlog from them.
    fn spool_is(&mut self, report: SpoolReport);

    /// How to fetch the actions an answer said wait
    /// ([`IngestResponse::pending_actions`]) and report their results, if
    /// this way of delivering has one ([`crate::actions::pull`]); none
    /// unless it says otherwise.
    fn action_link(&mut self) -> Option<Arc<dyn ActionLink>> {
        None
    }
}

/// Why a snapshot was not delivered. Each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{server_url:?} is not a usable server URL: {reason}")]
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
    #[error(
        "the server does not hold the snapshot this batch is relative to ({message}); \
         the snapshot goes in full"
    )]
    BaseUnknown {
        /// The server's own explanation.
        message: String,
    },
    #[error("the server is busy ({status}): {message}")]
    Busy {
        /// 429 or 503.
        status: u16,
        /// The server's own explanation.
        message: String,
        /// Its `Retry-After` header, as sent.
        retry_after: Option<String>,
    },
    #[error(
        "the answer from {url} is larger than the {limit} bytes the agent reads: is server_url \
         the procmon server's address (not a proxy or another service)?"
    )]
    AnswerTooLarge {
        /// The full URL that was tried.
        url: String,
        /// [`crate::send::MAX_ANSWER_BYTES`].
        limit: usize,
    },
    #[error("the server rejected the snapshot ({status}): {message}")]
    Rejected {
        /// The HTTP status the server answered with (e.g. 422).
        status: u16,
        /// The server's own explanation, from its error body when it sent one.
        message: String,
    },
}

impl SendError {
    /// What the send's outcome means for retrying it ([`crate::retry`]).
    /// Settings that are wrong (URL, certificate, key file) count as no
    /// answer: what waits is kept while someone fixes them.
    pub fn outcome(&self) -> crate::retry::Outcome<'_> {
        use crate::retry::Outcome;
        match self {
            Self::KeyRefused | Self::EnrollRefused => Outcome::Answered {
                status: 401,
                retry_after: None,
            },
            Self::BaseUnknown { .. } => Outcome::Answered {
                status: 409,
                retry_after: None,
            },
            Self::Busy {
                status,
                retry_after,
                ..
            } => Outcome::Answered {
                status: *status,
                retry_after: retry_after.as_deref(),
            },
            Self::Rejected { status, .. } => Outcome::Answered {
                status: *status,
                retry_after: None,
            },
            _ => Outcome::NoAnswer,
        }
    }
}
