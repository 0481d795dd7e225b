//! Acting on this machine's processes when the server asks: end, kill,
//! suspend, resume or lower the priority of one process (the path is told
//! in [`procmon_model::actions`]).
//!
//! - [`check`]: whether to act at all: the signature against the pinned
//!   server key ([`key`]), the host, the expiry, the nonce, this agent's
//!   config (off unless enabled; a local allowlist) and the processes that
//!   must never be touched. Each refusal says exactly why.
//! - [`act`]: the OS's half, per platform: `unix.rs` on Linux,
//!   `crate::windows::actions` on Windows. Both check the target's start
//!   time, exactly as snapshots give it, before they act, so a pid the OS
//!   has given to another process is never hit.
//! - [`pull`]: after an ingest answer says actions wait, a task of its own
//!   fetches them, checks and acts on each and reports the results, so a
//!   snapshot is never held up by it.

pub mod check;
#[cfg(feature = "http")]
pub(crate) mod http;
pub mod key;
pub mod pull;
#[cfg(target_os = "linux")]
mod unix;

use chrono::{DateTime, Utc};
use procmon_model::actions::ActionKind;

pub use check::{Checker, Refused, CLOCK_LEEWAY};
pub use key::{saved_key_file, PinnedKey, ServerKey};
pub use pull::{ActionLink, LinkError};

/// The kinds an agent with actions enabled allows when its config lists
/// none: all but `lower_priority`, which is allowed only when listed.
pub const DEFAULT_ALLOW: [ActionKind; 4] = [
    ActionKind::Terminate,
    ActionKind::Kill,
    ActionKind::Suspend,
    ActionKind::Resume,
];

/// What this agent's config says about actions (`[actions]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSettings {
    /// Off unless the config turns it on: an agent acts on nothing unless
    /// the person who installed it said so, on this machine.
    pub enabled: bool,
    /// The kinds it may do, when enabled.
    pub allow: Vec<ActionKind>,
}

impl Default for ActionSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            allow: DEFAULT_ALLOW.to_vec(),
        }
    }
}

/// What the agent's loop needs to act: its settings and where the server
/// key it trusts comes from.
#[derive(Debug, Clone, Default)]
pub struct ActionOptions {
    pub settings: ActionSettings,
    pub pinned: PinnedKey,
}

/// Why the OS half did not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActError {
    /// No process has the pid any more.
    #[error("no process has the pid any more")]
    Gone,
    /// The pid belongs to a process that started at `started_at`, not the
    /// target.
    #[error("the pid belongs to a process started at {started_at}")]
    Reused { started_at: DateTime<Utc> },
    /// The OS refused; the message says what it said.
    #[error("{0}")]
    AccessDenied(String),
    /// Anything else; the message says what.
    #[error("{0}")]
    Failed(String),
}

/// Does `kind` to process `pid` if it is still the process that started at
/// `started_at`; the message says what was done. Call it only after
/// [`Checker::check`] passed.
pub fn act(kind: ActionKind, pid: u32, started_at: DateTime<Utc>) -> Result<String, ActError> {
    #[cfg(target_os = "linux")]
    return unix::act(kind, pid, started_at);
    #[cfg(windows)]
    return crate::windows::actions::act(kind, pid, started_at);
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = (kind, pid, started_at);
        Err(ActError::Failed(format!(
            "actions are not supported on {}",
            std::env::consts::OS
        )))
    }
}

/// Why `pid` must never be acted on, if it must not: what no platform may
/// touch (pid 0, the agent itself), then the platform's own list (init and
/// kernel threads on Linux; System, csrss, lsass… on Windows).
pub fn critical(pid: u32) -> Option<String> {
    if pid == 0 {
        // On Linux kill(0, …) would signal the agent's own process group.
        return Some("pid 0 is the kernel's own, not a process that may be acted on".to_owned());
    }
    if pid == std::process::id() {
        return Some(format!(
            "pid {pid} is this agent itself: it does not act on itself"
        ));
    }
    #[cfg(target_os = "linux")]
    return unix::critical(pid);
    #[cfg(windows)]
    return crate::windows::actions::critical(pid);
    #[cfg(not(any(target_os = "linux", windows)))]
    None
}
