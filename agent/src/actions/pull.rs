//! Fetching, carrying out and reporting actions, in a task of its own.
//!
//! The loop nudges it ([`Actions::nudge`]) after an ingest answer says
//! actions wait; the task fetches them through the [`ActionLink`] the
//! delivery gave (over HTTP: the same client, key and server order as the
//! snapshots), checks each ([`Checker`]), acts ([`super::act`], on the
//! blocking pool) and reports the result. It never holds up a snapshot:
//! the loop only hands it the nudge. A fetch that fails is logged and
//! tried again at the next nudge (the server still counts the actions as
//! waiting); a report that gets no answer is kept and sent again a few
//! seconds later, until its action is long expired.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use procmon_model::actions::{
    ActionReport, ActionResultCode, SignedAction, ACTION_LIFETIME_SECS, MAX_REPORT_CHARS,
};
use tokio::sync::watch;
use uuid::Uuid;

use super::check::time;
use super::{ActError, ActionOptions, Checker, Refused};

/// The most actions carried out from one fetch: as many as the server
/// hands out in one (the rest wait for the next). The rest of a larger
/// answer are reported as failed, saying why (the server hands each out
/// once, so one left unreported would read "unanswered").
pub const MAX_ACTIONS_PER_FETCH: usize = 100;

/// The most of the server's answer to a fetch that is read: some 1,000
/// actions, far more than are ever waiting.
pub const MAX_FETCH_BYTES: usize = 512 * 1024;

/// How soon a report that got no answer is sent again.
const REPORT_RETRY: Duration = Duration::from_secs(5);

/// How many reports may wait to be sent again; past it the oldest is
/// dropped (its action then reads "unanswered").
const MAX_UNSENT: usize = 256;

/// A boxed future, so that [`ActionLink`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How actions are fetched and reported: over HTTP
/// ([`crate::send::HttpOutbox`]), or in process for a server's own agent.
pub trait ActionLink: Send + Sync {
    /// `GET /api/agent/actions/`: the actions waiting for this host, each
    /// handed out once. Entries that are not actions are left as they came
    /// (JSON), so that each can be answered.
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<serde_json::Value>, LinkError>>;

    /// `POST /api/agent/actions/{id}/result`.
    fn report<'a>(
        &'a self,
        id: Uuid,
        report: &'a ActionReport,
    ) -> BoxFuture<'a, Result<(), LinkError>>;
}

/// Why a fetch or report did not go through.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No server answered (down, unreachable, TLS failed, 502 to 504):
    /// worth trying again.
    #[error("{0}")]
    NoAnswer(String),
    /// A server answered with an error.
    #[error("the server answered {status} to {url}: {message}")]
    Answered {
        url: String,
        status: u16,
        message: String,
    },
}

impl LinkError {
    /// Whether sending the same again could go otherwise: not when the
    /// server said the action is not this host's (404), has a result
    /// already (409) or the report is invalid (400, 422).
    fn is_final(&self) -> bool {
        matches!(
            self,
            LinkError::Answered {
                status: 400 | 404 | 409 | 422,
                ..
            }
        )
    }
}

/// What the loop hands the task: how to reach the server now, and the
/// host the snapshot just sent was for.
#[derive(Clone)]
struct Nudge {
    link: Arc<dyn ActionLink>,
    host_id: String,
}

/// The task, and the way to nudge it.
pub(crate) struct Actions {
    nudges: watch::Sender<Option<Nudge>>,
    task: tokio::task::JoinHandle<()>,
}

impl Actions {
    /// Starts the task; it waits for the first nudge.
    pub(crate) fn start(options: ActionOptions) -> Self {
        let (nudges, nudged) = watch::channel(None);
        let task = tokio::spawn(work(options, nudged));
        Self { nudges, task }
    }

    /// Actions wait on the server: fetch them through `link`, for host
    /// `host_id`. A nudge while the task is busy is kept (the latest one)
    /// and taken when it is done.
    pub(crate) fn nudge(&self, link: Arc<dyn ActionLink>, host_id: String) {
        self.nudges.send_replace(Some(Nudge { link, host_id }));
    }

    /// Ends the task. An action being carried out finishes on the blocking
    /// pool; its report may be lost, and then the action reads
    /// "unanswered" once it expires.
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

/// A report not yet accepted by the server.
struct Unsent {
    id: Uuid,
    report: ActionReport,
    give_up_at: DateTime<Utc>,
}

async fn work(options: ActionOptions, mut nudged: watch::Receiver<Option<Nudge>>) {
    let mut checker = Checker::new(options.settings, Utc::now());
    let mut unsent: Vec<Unsent> = Vec::new();
    let mut last_error: Option<String> = None;
    let mut latest: Option<Nudge> = None;
    loop {
        let fetch = tokio::select! {
            changed = nudged.changed() => {
                if changed.is_err() {
                    return;
                }
                latest = nudged.borrow_and_update().clone();
                true
            }
            () = tokio::time::sleep(REPORT_RETRY), if !unsent.is_empty() => false,
        };
        let Some(nudge) = latest.clone() else {
            continue;
        };
        send_unsent(&*nudge.link, &mut unsent).await;
        if !fetch {
            continue;
        }
        let entries = match nudge.link.fetch().await {
            Ok(entries) => {
                last_error = None;
                entries
            }
            Err(error) => {
                // Once at warn, while the same error repeats at debug: a
                // nudge comes with each snapshot while actions wait.
                let text = error.to_string();
                if last_error.as_ref() == Some(&text) {
                    tracing::debug!("cannot fetch the waiting actions: {text}");
                } else {
                    tracing::warn!("cannot fetch the waiting actions (tried again at the next snapshot): {text}");
                }
                last_error = Some(text);
                continue;
            }
        };
        let count = entries.len();
        for (index, entry) in entries.into_iter().enumerate() {
            let Some((id, report)) = carry_out(
                &mut checker,
                &options.pinned,
                &nudge.host_id,
                entry,
                index,
                count,
            )
            .await
            else {
                continue;
            };
            match nudge.link.report(id, &report).await {
                Ok(()) => {}
                Err(error) if error.is_final() => {
                    tracing::warn!(action = %id, "the server did not take the report: {error}");
                }
                Err(error) => {
                    tracing::warn!(action = %id, "the report did not go, sent again in {} s: {error}", REPORT_RETRY.as_secs());
                    keep(&mut unsent, id, report);
                }
            }
        }
    }
}

/// Checks and carries out the `index`th of `count` fetched entries; its id
/// and report, or `None` for an entry that names no action to answer.
async fn carry_out(
    checker: &mut Checker,
    pinned: &super::PinnedKey,
    host_id: &str,
    entry: serde_json::Value,
    index: usize,
    count: usize,
) -> Option<(Uuid, ActionReport)> {
    let action: SignedAction = match serde_json::from_value(entry.clone()) {
        Ok(action) => action,
        Err(e) => {
            let id = entry.get("id")?.as_str()?.parse().ok()?;
            return Some((
                id,
                failed(format!("this agent cannot read the action: {e}")),
            ));
        }
    };
    if index >= MAX_ACTIONS_PER_FETCH {
        return Some((
            action.id,
            failed(format!(
                "{count} actions came at once; this agent carries out at most \
                 {MAX_ACTIONS_PER_FETCH} per fetch, and this was number {}",
                index + 1
            )),
        ));
    }
    let key = pinned.current();
    let report = match checker.check(&action, key.as_ref(), host_id, Utc::now()) {
        Err(Refused { code, message }) => ActionReport { code, message },
        Ok(()) => {
            let (kind, pid, started_at) = (action.kind, action.pid, action.started_at);
            let done = tokio::task::spawn_blocking(move || super::act(kind, pid, started_at))
                .await
                .unwrap_or_else(|e| Err(ActError::Failed(format!("carrying it out failed: {e}"))));
            report_of(&action, done)
        }
    };
    let report = ActionReport {
        message: truncated(report.message),
        ..report
    };
    let log = |level: &str| {
        format!(
            "{level} {kind} on pid {pid}: {code:?}: {message}",
            kind = action.kind,
            pid = action.pid,
            code = report.code,
            message = report.message
        )
    };
    if report.code == ActionResultCode::Done {
        tracing::info!(action = %action.id, "{}", log("did"));
    } else {
        tracing::warn!(action = %action.id, "{}", log("did not do"));
    }
    Some((action.id, report))
}

/// The report of what the OS half did.
pub fn report_of(action: &SignedAction, done: Result<String, ActError>) -> ActionReport {
    let pid = action.pid;
    let (code, message) = match done {
        Ok(message) => (ActionResultCode::Done, message),
        Err(ActError::Gone) => (
            ActionResultCode::Gone,
            format!("no process has pid {pid} any more: it has exited"),
        ),
        Err(ActError::Reused { started_at }) => (
            ActionResultCode::PidReused,
            format!(
                "pid {pid} now belongs to a process started at {}, not {}: the target has exited",
                time(started_at),
                time(action.started_at)
            ),
        ),
        Err(ActError::AccessDenied(message)) => (ActionResultCode::AccessDenied, message),
        Err(ActError::Failed(message)) => (ActionResultCode::Failed, message),
    };
    ActionReport { code, message }
}

fn failed(message: String) -> ActionReport {
    ActionReport {
        code: ActionResultCode::Failed,
        message,
    }
}

/// At most [`MAX_REPORT_CHARS`] characters, as the server takes.
fn truncated(message: String) -> String {
    if message.chars().count() <= MAX_REPORT_CHARS {
        return message;
    }
    let mut cut: String = message.chars().take(MAX_REPORT_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn keep(unsent: &mut Vec<Unsent>, id: Uuid, report: ActionReport) {
    if unsent.len() >= MAX_UNSENT {
        let dropped = unsent.remove(0);
        tracing::warn!(action = %dropped.id, "too many reports wait to be sent; this one is given up");
    }
    unsent.push(Unsent {
        id,
        report,
        // Long after its action expired, the server has given up on it.
        give_up_at: Utc::now() + chrono::Duration::seconds(2 * ACTION_LIFETIME_SECS),
    });
}

/// Sends again the reports that got no answer; keeps those that get none
/// again, until they are given up.
async fn send_unsent(link: &dyn ActionLink, unsent: &mut Vec<Unsent>) {
    let now = Utc::now();
    let waiting = std::mem::take(unsent);
    for report in waiting {
        if now > report.give_up_at {
            tracing::warn!(action = %report.id, "the report could not be sent; given up");
            continue;
        }
        match link.report(report.id, &report.report).await {
            Ok(()) => tracing::info!(action = %report.id, "report sent"),
            Err(error) if error.is_final() => {
                tracing::warn!(action = %report.id, "the server did not take the report: {error}");
            }
            Err(error) => {
                tracing::debug!(action = %report.id, "the report did not go again: {error}");
                unsent.push(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_to_what_the_server_takes() {
        let long = "é".repeat(MAX_REPORT_CHARS + 10);
        let cut = truncated(long);
        assert_eq!(cut.chars().count(), MAX_REPORT_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(truncated("short".into()), "short");
        let exact = "a".repeat(MAX_REPORT_CHARS);
        assert_eq!(truncated(exact.clone()), exact);
    }

    #[test]
    fn a_reused_pid_says_both_start_times() {
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        let action = SignedAction {
            id: Uuid::nil(),
            host_id: "h".into(),
            pid: 4242,
            started_at: at("2026-12-07T10:00:00Z"),
            kind: procmon_model::actions::ActionKind::Kill,
            nonce: "00".into(),
            issued_at: at("2026-12-07T10:05:00Z"),
            expires_at: at("2026-12-07T10:06:00Z"),
            signature: String::new(),
        };
        let report = report_of(
            &action,
            Err(ActError::Reused {
                started_at: at("2026-12-07T10:00:01Z"),
            }),
        );
        assert_eq!(report.code, ActionResultCode::PidReused);
        assert_eq!(
            report.message,
            "pid 4242 now belongs to a process started at 2026-12-07T10:00:01Z, not \
             2026-12-07T10:00:00Z: the target has exited"
        );
    }
}
