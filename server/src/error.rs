//! Every error the API can answer, and the one place that turns an error
//! into a status code and an [`ErrorBody`].

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use procmon_model::ErrorBody;

use crate::store::StoreError;

/// What went wrong with a request. The message of each variant is what the
/// client reads, so it says what is wrong and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "the agent key is missing, wrong or revoked: send the host's key as \
         `Authorization: Bearer <key>` (make one with `procmon-server keys create`, or enroll \
         the agent with the enrollment secret)"
    )]
    AgentKeyRefused,
    #[error(
        "this agent key belongs to host {key_host:?} and cannot send snapshots of host \
         {sent:?}: each host needs its own key"
    )]
    KeyForOtherHost { key_host: String, sent: String },
    #[error("the enrollment secret is missing or wrong: give the one the server printed at its first start (or a new one: `procmon-server enroll-secret rotate`)")]
    EnrollRefused,
    #[error(
        "sign in first: this server shows its data only to signed-in users (POST /api/session/)"
    )]
    NotSignedIn,
    #[error(
        "your session has ended (signed out, expired, or the password changed); sign in again"
    )]
    SessionEnded,
    // One message for a wrong name and a wrong password, so the answer
    // does not tell which names exist.
    #[error("wrong user name or password")]
    WrongCredentials,
    #[error(
        "this sign-in link was used already or has expired; `procmon-server signin-link NAME` \
         on the server prints a new one"
    )]
    LinkRefused,
    #[error(
        "too many failed sign-ins from this address or for this user: try again in {} s",
        retry_after_secs(*retry_after)
    )]
    SignInThrottled { retry_after: std::time::Duration },
    #[error("{0}")]
    Forbidden(String),
    #[error("the current password is wrong")]
    CurrentPasswordWrong,
    #[error(
        "a request that changes something must carry the header `X-Procmon-Csrf: 1` \
         (the page sends it; other sites cannot make a browser send it)"
    )]
    CsrfHeaderMissing,
    #[error(
        "this server is not {0:?}: the Host header must name it (its address, localhost, or a \
         name in its allowed_hosts setting); this guards against DNS rebinding"
    )]
    ForeignHost(String),
    #[error("{0}")]
    InvalidAccount(String),
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("no user named {0:?}")]
    UnknownUser(String),
    #[error("{0:?} is the only admin: add another admin before removing it")]
    LastAdmin(String),
    #[error("no agent key {0:?} in force (see GET /api/keys/)")]
    UnknownAgentKey(String),
    #[error("{0}")]
    InvalidAgentKey(String),
    #[error("invalid channel: {0}")]
    InvalidChannel(String),
    #[error("no channel {0:?} (see GET /api/alerts/channels/)")]
    UnknownChannel(String),
    #[error("malformed JSON: {0}")]
    InvalidJson(String),
    #[error("the body does not match the schema: {0}")]
    SchemaMismatch(String),
    #[error("invalid snapshot: {0}")]
    InvalidSnapshot(String),
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("expected a JSON body with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("the body's Content-Encoding {0:?} is not spoken here: send it plain, zstd or gzip")]
    UnsupportedEncoding(String),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    #[error("unknown host {0:?}: no snapshot from it has been received (or it was deleted by retention)")]
    UnknownHost(String),
    #[error("{0}")]
    NoSnapshot(String),
    #[error(
        "this server does not hold snapshot {base} as host {host:?}'s latest, so the batch \
         cannot be applied (the server restarted, or a batch was lost or came out of order): \
         send a full snapshot to /api/processes/, then batches against it"
    )]
    BaseUnknown { host: String, base: uuid::Uuid },
    #[error("the batch does not fit its base: {0}")]
    BatchDoesNotFit(String),
    #[error("snapshot {0} was already received from another host")]
    SnapshotIdConflict(uuid::Uuid),
    #[error("invalid alert rule: {0}")]
    InvalidRule(String),
    #[error("no alert rule {0:?} (see GET /api/alerts/rules/)")]
    UnknownRule(String),
    #[error(
        "alert rule {id:?} was changed since version {sent} (it is at version {now} now): \
         read it again, then send the change against version {now}"
    )]
    RuleChanged { id: String, sent: u32, now: u32 },
    #[error("invalid silence: {0}")]
    InvalidSilence(String),
    #[error("no silence {0:?} in force (see GET /api/alerts/silences/)")]
    UnknownSilence(String),
    #[error("no alert {0:?} (see GET /api/alerts/)")]
    UnknownAlert(String),
    #[error("invalid action: {0}")]
    InvalidAction(String),
    /// The host's newest snapshot has no process with the pid and start
    /// time asked for; the message says which it lacks.
    #[error("{0}")]
    NoSuchProcess(String),
    #[error("no action {0:?} (see GET /api/actions/)")]
    UnknownAction(String),
    /// An agent's report of an action that is not its host's: the same
    /// answer as for an id that does not exist, so that an agent learns
    /// nothing of other hosts' actions.
    #[error("no action {0:?} for this agent's host")]
    UnknownAgentAction(String),
    #[error("action {0} has a result already; a result is recorded once")]
    ActionResultRecorded(uuid::Uuid),
    #[error("invalid report: {0}")]
    InvalidActionReport(String),
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the store cannot be used now, so nothing was stored or read: {0}")]
    StoreUnavailable(String),
    #[error(
        "the request body stopped arriving: nothing came for {} (the server's body_timeout)",
        humantime::format_duration(*.0)
    )]
    BodyTimeout(std::time::Duration),
    #[error(
        "the request was not answered within {} (the server's request_timeout); try again",
        humantime::format_duration(*.0)
    )]
    RequestTimeout(std::time::Duration),
    #[error(
        "the server is at its limit of {max} connections; try again in a moment \
         (the server's max_connections)"
    )]
    TooManyConnections { max: usize },
    #[error(
        "too many snapshots from {key:?}: try again in {} s (the server's ingest_per_second \
         and ingest_burst)",
        retry_after_secs(*retry_after)
    )]
    RateLimited {
        key: String,
        retry_after: std::time::Duration,
    },
    /// A plain-HTTP request on the HTTPS port; `0` is the URL to use.
    #[error("this server speaks HTTPS: use {0}")]
    HttpsRequired(String),
    #[error(
        "the metrics need the server's metrics_token, sent as `Authorization: Bearer <token>`, \
         or an admin's session"
    )]
    MetricsRefused,
    #[error("internal error; the server log has the details")]
    Internal(#[from] anyhow::Error),
}

/// The code of an error answer ([`ErrorBody::error`]), left on the
/// response for the layers that count refusals (`metrics::layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind(pub &'static str);

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(why) => Self::StoreUnavailable(why),
            StoreError::OutOfRange(why) => Self::InvalidQuery(why),
            StoreError::Failed(e) => Self::Internal(e),
        }
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(error: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        match error {
            AccountError::Invalid(why) => Self::InvalidAccount(why),
            AccountError::NameTaken(name) => Self::UserExists(name),
            AccountError::UnknownUser(name) => Self::UnknownUser(name),
            AccountError::Store(e) => e.into(),
            AccountError::Internal(e) => Self::Internal(e),
        }
    }
}

impl ApiError {
    /// The status code and the stable kind written into [`ErrorBody::error`].
    pub fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            Self::AgentKeyRefused | Self::EnrollRefused => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            Self::KeyForOtherHost { .. } => (StatusCode::FORBIDDEN, "key_for_other_host"),
            Self::NotSignedIn | Self::SessionEnded | Self::MetricsRefused => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            Self::WrongCredentials | Self::LinkRefused => {
                (StatusCode::UNAUTHORIZED, "sign_in_refused")
            }
            Self::SignInThrottled { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_sign_ins"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::CurrentPasswordWrong => (StatusCode::FORBIDDEN, "current_password_wrong"),
            Self::CsrfHeaderMissing => (StatusCode::FORBIDDEN, "csrf_header_missing"),
            Self::ForeignHost(_) => (StatusCode::MISDIRECTED_REQUEST, "foreign_host"),
            Self::InvalidAccount(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_account"),
            Self::UserExists(_) => (StatusCode::CONFLICT, "user_exists"),
            Self::UnknownUser(_) => (StatusCode::NOT_FOUND, "unknown_user"),
            Self::LastAdmin(_) => (StatusCode::CONFLICT, "last_admin"),
            Self::UnknownAgentKey(_) => (StatusCode::NOT_FOUND, "unknown_key"),
            Self::InvalidAgentKey(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_key_request"),
            Self::InvalidChannel(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_channel"),
            Self::UnknownChannel(_) => (StatusCode::NOT_FOUND, "unknown_channel"),
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::SchemaMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "schema_mismatch"),
            Self::InvalidSnapshot(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_snapshot"),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedEncoding(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding")
            }
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            Self::InvalidHeader(_) => (StatusCode::BAD_REQUEST, "invalid_header"),
            Self::UnknownHost(_) => (StatusCode::NOT_FOUND, "unknown_host"),
            Self::NoSnapshot(_) => (StatusCode::NOT_FOUND, "no_snapshot"),
            Self::BaseUnknown { .. } => (StatusCode::CONFLICT, "base_unknown"),
            Self::BatchDoesNotFit(_) => (StatusCode::UNPROCESSABLE_ENTITY, "batch_does_not_fit"),
            Self::SnapshotIdConflict(_) => (StatusCode::CONFLICT, "snapshot_id_conflict"),
            Self::InvalidRule(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule"),
            Self::UnknownRule(_) => (StatusCode::NOT_FOUND, "unknown_rule"),
            Self::RuleChanged { .. } => (StatusCode::CONFLICT, "rule_changed"),
            Self::InvalidSilence(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_silence"),
            Self::UnknownSilence(_) => (StatusCode::NOT_FOUND, "unknown_silence"),
            Self::UnknownAlert(_) => (StatusCode::NOT_FOUND, "unknown_alert"),
            Self::InvalidAction(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_action"),
            Self::NoSuchProcess(_) => (StatusCode::CONFLICT, "no_such_process"),
            Self::UnknownAction(_) | Self::UnknownAgentAction(_) => {
                (StatusCode::NOT_FOUND, "unknown_action")
            }
            Self::ActionResultRecorded(_) => (StatusCode::CONFLICT, "result_already_recorded"),
            Self::InvalidActionReport(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_report"),
            Self::NoRoute(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::StoreUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Self::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            Self::RequestTimeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "request_timeout"),
            Self::TooManyConnections { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "too_many_connections")
            }
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::HttpsRequired(_) => (StatusCode::BAD_REQUEST, "https_required"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_kind();
        match &self {
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "{self}")
            }
            Self::StoreUnavailable(_) => tracing::warn!("{self}"),
            // Refusals are logged too: "no data shown" is often an agent
            // whose key or snapshots are refused, and this is where it shows.
            _ => tracing::info!(status = status.as_u16(), "refused: {self}"),
        }
        let mut response = (
            status,
            Json(ErrorBody {
                error: kind.to_owned(),
                message: self.to_string(),
            }),
        )
            .into_response();
        response.extensions_mut().insert(ErrorKind(kind));
        let headers = response.headers_mut();
        match &self {
            Self::AgentKeyRefused | Self::MetricsRefused => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited { retry_after, .. } | Self::SignInThrottled { retry_after } => {
                headers.insert(
                    RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(*retry_after)),
                );
            }
            Self::TooManyConnections { .. } => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl ApiError {
    /// A JSON body that could not be read, for a route whose body limit is
    /// `limit` bytes (axum's rejection does not carry the limit).
    /// `body_timeout` is the gap after which the body counts as stalled.
    pub fn from_json_rejection(
        rejection: JsonRejection,
        limit: usize,
        body_timeout: std::time::Duration,
    ) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => Self::InvalidJson(serde_message(&e)),
            JsonRejection::JsonDataError(e) => Self::SchemaMismatch(serde_message(&e)),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge { limit }
            }
            JsonRejection::BytesRejection(e) if body_timed_out(&e) => {
                Self::BodyTimeout(body_timeout)
            }
            other => Self::InvalidJson(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        match rejection {
            QueryRejection::FailedToDeserializeQueryString(e) => {
                Self::InvalidQuery(serde_message(&e))
            }
            other => Self::InvalidQuery(other.body_text()),
        }
    }
}

/// Whether reading the body failed because it stopped arriving (tower-http's
/// body timeout), somewhere down the error's chain of causes.
fn body_timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whole seconds to wait, rounded up so a client never retries too early.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// serde's own message (with the field path, line and column), without
/// axum's generic "Failed to deserialize" prefix.
fn serde_message(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while current.to_string().starts_with("Failed to") {
        match current.source() {
            Some(source) => current = source,
            None => break,
        }
    }
    current.to_string()
}
