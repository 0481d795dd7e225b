//! Actions on a process, asked for on the page and carried out by the
//! host's agent: end (terminate), kill, suspend, resume, lower priority.
//!
//! The path, and why each step is there:
//! 1. An operator asks (`POST /api/actions/`, an [`ActionRequest`]) with a
//!    reason. The target is a process, not a pid: the pid *and* its start
//!    time as the host's newest snapshot has them, so a pid the OS has
//!    since given to another process is never hit.
//! 2. The server records it in the audit log and signs it ([`SignedAction`],
//!    Ed25519 over [`SignedAction::signing_bytes`]) with a random nonce and
//!    an expiry about a minute away.
//! 3. The agent learns an action waits from its next ingest answer
//!    ([`crate::IngestResponse::pending_actions`]) and fetches it over the
//!    connection and key it already uses (`GET /api/agent/actions/`): the
//!    server never connects to agents.
//! 4. The agent checks the signature against the key it pinned at
//!    enrollment, the expiry, the nonce (once only), its own config (off
//!    unless enabled, a local allowlist), the OS's critical processes and
//!    itself, and the start time; then acts, and reports an
//!    [`ActionReport`] (`POST /api/agent/actions/{id}/result`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest reason an operator may give, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest message an agent may report, in characters.
pub const MAX_REPORT_CHARS: usize = 1000;
/// How long a signed action is good for, from when the server signs it.
pub const ACTION_LIFETIME_SECS: i64 = 60;
/// What a public action key starts with, e.g.
/// `ed25519:Gm4x…` (standard base64 of the 32-byte key).
pub const KEY_PREFIX: &str = "ed25519:";

/// What to do to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Ask it to end: SIGTERM on Linux; on Windows, TerminateProcess (a
    /// Windows process cannot be asked).
    Terminate,
    /// End it at once: SIGKILL; on Windows, TerminateProcess.
    Kill,
    /// Stop it running: SIGSTOP; on Windows, NtSuspendProcess.
    Suspend,
    /// Let a suspended process run again: SIGCONT; NtResumeProcess.
    Resume,
    /// Run it at a lower priority: nice 10 on Linux, below normal on
    /// Windows.
    LowerPriority,
}

impl ActionKind {
    /// Every kind, in the order the page offers them.
    pub const ALL: [ActionKind; 5] = [
        Self::Terminate,
        Self::Kill,
        Self::Suspend,
        Self::Resume,
        Self::LowerPriority,
    ];

    /// The name on the wire and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Terminate => "terminate",
            Self::Kill => "kill",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::LowerPriority => "lower_priority",
        }
    }

    /// The kind named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /api/actions/`: what an operator asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The host's stable id.
    pub host_id: String,
    /// The process's id on that host.
    pub pid: u32,
    /// The process's start time, exactly as the host's snapshot gives it:
    /// with the pid, what names the process.
    pub started_at: DateTime<Utc>,
    /// What to do.
    pub kind: ActionKind,
    /// Why, in the operator's words (1 to 500 characters); kept in the
    /// audit log.
    pub reason: String,
}

/// One action as the server signs it and the agent receives it from
/// `GET /api/agent/actions/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedAction {
    /// The action's id, to report its result by.
    pub id: Uuid,
    /// The host it is for; an agent refuses an action for another host.
    pub host_id: String,
    /// The target's pid.
    pub pid: u32,
    /// The target's start time: a process with this pid that started at
    /// another time is not the target.
    pub started_at: DateTime<Utc>,
    /// What to do.
    pub kind: ActionKind,
    /// 128 random bits, hex: an agent acts on a nonce once.
    pub nonce: String,
    /// When the server signed it.
    pub issued_at: DateTime<Utc>,
    /// After this the agent refuses it.
    pub expires_at: DateTime<Utc>,
    /// Ed25519 signature of [`Self::signing_bytes`], standard base64.
    pub signature: String,
}

impl SignedAction {
    /// The bytes the signature covers: every field but the signature, one
    /// per line, times in RFC 3339 with nanoseconds, so nothing a JSON
    /// encoder may choose (field order, spacing) changes them.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
        format!(
            "procmon-action/1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.id,
            self.host_id,
            self.pid,
            time(&self.started_at),
            self.kind,
            self.nonce,
            time(&self.issued_at),
            time(&self.expires_at),
        )
        .into_bytes()
    }
}

/// How an action ended, as the agent reports it (or the server, for one
/// no agent answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionResultCode {
    /// Done: the signal was sent, the process ended, was suspended, …
    Done,
    /// The agent's config does not enable actions.
    Disabled,
    /// The agent's config enables actions, but not this kind.
    NotAllowed,
    /// The target is the OS's own (pid 1, a kernel thread, System, csrss,
    /// lsass, a process marked critical, …) or the agent itself.
    Critical,
    /// The pid now belongs to a process that started at another time.
    PidReused,
    /// No process has the pid any more.
    Gone,
    /// The action reached the agent after its expiry.
    Expired,
    /// The agent acted on this nonce before.
    Replayed,
    /// The signature does not verify against the key the agent pinned.
    BadSignature,
    /// The action names another host.
    WrongHost,
    /// The agent has no pinned server key, so it can trust no action.
    NoPinnedKey,
    /// The OS refused: the agent may not act on this process (another
    /// user's, or a protected one).
    AccessDenied,
    /// It failed for another reason, said in the message.
    Failed,
    /// The server's own: the action expired with no report from the agent.
    Unanswered,
}

impl ActionResultCode {
    /// What the audit log calls the outcome: `done`, `refused` or `failed`.
    pub fn outcome(self) -> ActionOutcome {
        match self {
            Self::Done => ActionOutcome::Done,
            Self::AccessDenied | Self::Failed | Self::Unanswered => ActionOutcome::Failed,
            _ => ActionOutcome::Refused,
        }
    }
}

/// Where an action stands, in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Signed, waiting for the agent to fetch it.
    Pending,
    /// Fetched by the agent, not yet reported.
    Delivered,
    /// Carried out.
    Done,
    /// The agent (or its checks) would not.
    Refused,
    /// The agent tried and the OS refused or it failed; or no agent
    /// answered before the expiry.
    Failed,
}

/// Body of `POST /api/agent/actions/{id}/result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionReport {
    /// How it ended.
    pub code: ActionResultCode,
    /// Said to the operator, e.g. "sent SIGTERM" or "pid 4242 now belongs
    /// to a process started at …" (at most 1000 characters).
    pub message: String,
}

/// One entry of the audit log (`GET /api/actions/`,
/// `GET /api/actions/{id}`): who asked what of which process, when, why,
/// and how it ended. Entries are never deleted or rewritten: the result
/// is written once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionEntry {
    /// The action's id.
    pub id: Uuid,
    /// The user who asked.
    pub requested_by: String,
    /// When they asked (server's clock).
    pub requested_at: DateTime<Utc>,
    /// The host's stable id.
    pub host_id: String,
    /// The host's name when it was asked.
    pub hostname: String,
    /// The target's pid.
    pub pid: u32,
    /// The target's start time.
    pub started_at: DateTime<Utc>,
    /// The target's name when it was asked.
    pub process_name: String,
    /// The target's user when it was asked, if known.
    pub process_user: Option<String>,
    /// What was asked.
    pub kind: ActionKind,
    /// Why, in the operator's words.
    pub reason: String,
    /// After this the agent refuses it.
    pub expires_at: DateTime<Utc>,
    /// Where it stands now.
    pub outcome: ActionOutcome,
    /// When the agent fetched it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The result's code, once reported.
    pub code: Option<ActionResultCode>,
    /// The result's message, once reported.
    pub message: Option<String>,
    /// When the result was reported.
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action() -> SignedAction {
        let at = DateTime::parse_from_rfc3339("2026-12-07T10:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        SignedAction {
            id: Uuid::nil(),
            host_id: "h1".into(),
            pid: 42,
            started_at: at,
            kind: ActionKind::LowerPriority,
            nonce: "00ff".into(),
            issued_at: at,
            expires_at: at,
            signature: "ignored".into(),
        }
    }

    #[test]
    fn signing_bytes_cover_every_field_but_the_signature() {
        let a = action();
        let text = String::from_utf8(a.signing_bytes()).unwrap();
        assert_eq!(
            text,
            "procmon-action/1\n00000000-0000-0000-0000-000000000000\nh1\n42\n\
             2026-12-07T10:00:00.123456789Z\nlower_priority\n00ff\n\
             2026-12-07T10:00:00.123456789Z\n2026-12-07T10:00:00.123456789Z\n"
        );
        let mut other = a.clone();
        other.signature = "different".into();
        assert_eq!(other.signing_bytes(), a.signing_bytes());
        let mut other = a.clone();
        other.pid = 43;
        assert_ne!(other.signing_bytes(), a.signing_bytes());
    }

    #[test]
    fn kinds_round_trip_by_name_and_outcomes_group_codes() {
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(ActionKind::parse("reboot"), None);
        assert_eq!(ActionResultCode::Done.outcome(), ActionOutcome::Done);
        assert_eq!(
            ActionResultCode::PidReused.outcome(),
            ActionOutcome::Refused
        );
        assert_eq!(
            ActionResultCode::AccessDenied.outcome(),
            ActionOutcome::Failed
        );
    }
}
