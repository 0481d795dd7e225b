//! The agent's loop: every interval, collect, deliver, log one line.
//!
//! What goes is decided by [`Link`]: the first snapshot, and one every
//! `full_every`, in full; in between only what changed since the last
//! snapshot the server acknowledged (a change batch). A batch the server
//! cannot apply (it lacks the base: it restarted, or a batch was lost) is
//! answered `base_unknown`, and the same snapshot goes again at once, in
//! full.
//!
//! What cannot be sent now ([`Sending`]) waits in the on-disk spool: a
//! whole snapshot where a spool segment starts, else the batch against the
//! snapshot spooled before it. While anything waits, new snapshots go
//! behind it, and the spool is sent oldest first, each message once the
//! retry policy ([`crate::retry`]) allows; what the server would refuse
//! again (400, 413, 422) is dropped, saying why. A refused key (401, 403)
//! holds everything, spooled, until the key is put right.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use procmon_model::changes::{apply, diff};
use procmon_model::{ChangeBatch, IngestResponse, Snapshot, SpoolReport};
use tokio::time::MissedTickBehavior;

use crate::actions::pull::Actions;
use crate::actions::ActionOptions;
use crate::deliver::{compressed_json, Deliver, Delivery, SendError};
use crate::retry::{classify, Backoff, Verdict};
use crate::spool::{Kind, Spool, SpoolError};
use crate::Collector;

/// How long a stop waits for the snapshot in flight: long enough for a
/// send to a server that answers, short enough for a service manager that
/// kills after 10 s or so.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often a snapshot goes in full when nothing says otherwise, though
/// the server holds the base: a bound on how long a server that lost track
/// without saying so (it should not) shows a wrong tree.
pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(600);

/// Takes and sends a snapshot every `config.interval` over HTTP until
/// `shutdown` completes; see [`run_with`].
#[cfg(feature = "http")]
pub async fn run(
    config: crate::AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let credentials =
        crate::enroll::Credentials::new(&config.server_urls, config.key.clone(), config.trust)?
            .with_configured_action_key(config.actions.pinned.configured());
    let outbox = crate::send::HttpOutbox::new(credentials, config.return_after);
    tracing::info!(servers = %outbox.server_urls().join(", "), "sending to");
    log_actions(&config.actions);
    // Without a spool the agent still runs; what it cannot send is lost,
    // and it says so.
    let spool = match Spool::open(
        &config.spool_dir,
        crate::spool::SpoolOptions::with_max_bytes(config.spool_max_bytes),
    ) {
        Ok(spool) => Some(spool),
        Err(e) => {
            tracing::error!("{e}; snapshots that cannot be sent will be lost");
            None
        }
    };
    run_spooled(
        outbox,
        Pace {
            interval: config.interval,
            full_every: config.full_every,
        },
        spool,
        config.actions,
        config.labels,
        shutdown,
    )
    .await
}

/// Says at start whether the agent acts on processes, and with which key.
#[cfg(feature = "http")]
fn log_actions(actions: &ActionOptions) {
    let settings = &actions.settings;
    if !settings.enabled {
        tracing::info!(
            "actions on processes: not enabled ([actions] enabled = true turns them on)"
        );
        return;
    }
    let allow: Vec<&str> = settings.allow.iter().map(|k| k.as_str()).collect();
    actions.pinned.warn_if_saved_differs();
    tracing::info!(
        allow = %allow.join(", "),
        server_key = %actions.pinned.describe(),
        "actions on processes: enabled"
    );
}

/// How often the loop takes a snapshot, and sends one in full.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Time between two snapshots.
    pub interval: Duration,
    /// Time between two snapshots sent in full.
    pub full_every: Duration,
}

/// Takes a snapshot every `pace.interval` and hands it to `outbox`, until
/// `shutdown` completes; a snapshot in flight then gets [`STOP_GRACE`] to
/// be delivered. A failed delivery is logged and the loop goes on: the
/// server may come back. Errors only when the agent cannot start at all.
pub async fn run_with(
    outbox: impl Deliver,
    pace: Pace,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_spooled(
        outbox,
        pace,
        None,
        ActionOptions::default(),
        Vec::new(),
        shutdown,
    )
    .await
}

/// As [`run_with`], acting on processes as `actions` says when an answer
/// says actions wait and `outbox` has a way to fetch them
/// ([`Deliver::action_link`]).
pub async fn run_with_actions(
    outbox: impl Deliver,
    pace: Pace,
    actions: ActionOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_spooled(outbox, pace, None, actions, Vec::new(), shutdown).await
}

/// As [`run_with_actions`], keeping what cannot be sent in `spool` (when
/// given) until it can, the snapshots carrying `labels` as the host's.
pub async fn run_spooled(
    mut outbox: impl Deliver,
    pace: Pace,
    spool: Option<Spool>,
    actions: ActionOptions,
    labels: Vec<String>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Reading every process takes a while and blocks, so it runs on the
    // blocking pool; the collector moves there and back through the mutex.
    let collector = tokio::task::spawn_blocking(|| Collector::new().with_labels(labels))
        .await
        .context("the process collector could not start")?;
    let collector = Arc::new(Mutex::new(collector));
    let mut sending = Sending::new(Link::new(pace.full_every), spool);
    // Its own task, so that fetching and carrying out actions never holds
    // up a snapshot.
    let actions = Actions::start(actions);
    tracing::info!(
        interval = %humantime::format_duration(pace.interval),
        full_every = %humantime::format_duration(pace.full_every),
        "procmon agent started"
    );

    let mut ticks = tokio::time::interval(pace.interval);
    // After a stall (a slow send, a suspended laptop) go on at the normal
    // pace rather than firing the missed ticks in a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticks.tick() => {}
        }
        let result = {
            let cycle = collect_and_send(&collector, &mut sending, &mut outbox, pace.interval);
            tokio::pin!(cycle);
            tokio::select! {
                result = &mut cycle => result,
                () = &mut shutdown => {
                    tracing::info!(
                        "stopping: finishing the snapshot in flight (at most {} s)",
                        STOP_GRACE.as_secs()
                    );
                    match tokio::time::timeout(STOP_GRACE, &mut cycle).await {
                        Ok(result) => log_failure(result.map(drop)),
                        Err(_) => tracing::warn!(
                            "stopping: the snapshot in flight was abandoned after {} s",
                            STOP_GRACE.as_secs()
                        ),
                    }
                    break;
                }
            }
        };
        match result {
            Ok(Some(host_id)) => match outbox.action_link() {
                Some(link) => actions.nudge(link, host_id),
                None => tracing::debug!("actions wait, but this agent has no way to fetch them"),
            },
            Ok(None) => {}
            Err(error) => log_failure(Err(error)),
        }
    }
    actions.stop();
    tracing::info!("procmon agent stopped");
    Ok(())
}

fn log_failure(cycle: anyhow::Result<()>) {
    if let Err(error) = cycle {
        tracing::error!("{error:#}");
    }
}

/// What the server has acknowledged, and so what the next snapshot can be
/// sent as: a change batch against the last acknowledged snapshot, or
/// whole.
pub struct Link {
    /// The last snapshot the server answered 201 for, by its exact id.
    acked: Option<Snapshot>,
    /// When a snapshot last went in full and was acknowledged.
    full_at: Option<Instant>,
    full_every: Duration,
}

/// How a snapshot went.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The server's answer.
    pub answer: IngestResponse,
    /// Whether it went in full (at start, when due, or after the server
    /// lacked a batch's base).
    pub full: bool,
}

impl Link {
    /// Nothing acknowledged yet: the first snapshot goes in full.
    pub fn new(full_every: Duration) -> Self {
        Self {
            acked: None,
            full_at: None,
            full_every,
        }
    }

    /// The snapshot the next batch would be relative to.
    pub fn acked(&self) -> Option<&Snapshot> {
        self.acked.as_ref()
    }

    /// Forgets what the server acknowledged: the next snapshot goes in
    /// full.
    pub fn reset(&mut self) {
        self.acked = None;
    }

    /// How `snapshot` should go now: `None` in full, else the batch
    /// against the last acknowledged snapshot.
    pub fn batch_for(&self, snapshot: &Snapshot) -> Option<procmon_model::ChangeBatch> {
        let due = self
            .full_at
            .is_none_or(|at| at.elapsed() >= self.full_every);
        match &self.acked {
            Some(acked) if !due && acked.host.id == snapshot.host.id => Some(diff(acked, snapshot)),
            _ => None,
        }
    }

    /// The server answered 201 for `snapshot` (sent `full` or not).
    pub fn acknowledged(&mut self, snapshot: Snapshot, full: bool) {
        if full {
            self.full_at = Some(Instant::now());
        }
        self.acked = Some(snapshot);
    }

    /// Delivers `snapshot` through `outbox`: as a batch when it can, and in
    /// full when due or when the server lacks the batch's base. Whatever
    /// the outcome, a later batch is only ever relative to a snapshot the
    /// server said 201 for.
    pub async fn send(
        &mut self,
        outbox: &mut impl Deliver,
        snapshot: Snapshot,
    ) -> Result<Sent, SendError> {
        if let Some(batch) = self.batch_for(&snapshot) {
            match outbox.deliver(Delivery::Batch(&batch)).await {
                Ok(answer) => {
                    if answer.snapshot_id == snapshot.id {
                        self.acknowledged(snapshot, false);
                    }
                    return Ok(Sent {
                        answer,
                        full: false,
                    });
                }
                Err(SendError::BaseUnknown { message }) => {
                    tracing::info!("the server lacks the base ({message}): sending in full");
                    self.acked = None;
                }
                Err(e) => return Err(e),
            }
        }
        let answer = outbox.deliver(Delivery::Full(&snapshot)).await?;
        if answer.snapshot_id == snapshot.id {
            self.acknowledged(snapshot, true);
        }
        Ok(Sent { answer, full: true })
    }
}

/// One cycle; logs the send's outcome in one line. The host's id when the
/// server's answer says actions wait for it. Errors only when the
/// collector itself failed.
async fn collect_and_send(
    collector: &Arc<Mutex<Collector>>,
    sending: &mut Sending,
    outbox: &mut impl Deliver,
    interval: Duration,
) -> anyhow::Result<Option<String>> {
    let collector = Arc::clone(collector);
    let collect_started = Instant::now();
    let snapshot = tokio::task::spawn_blocking(move || {
        // A panic while collecting poisons the lock; the collector's state
        // is only caches, so it is safe to go on with it.
        let mut collector = collector.lock().unwrap_or_else(|p| p.into_inner());
        collector.snapshot(interval)
    })
    .await
    .context("taking a snapshot failed")?;
    let collect_ms = collect_started.elapsed().as_millis();

    let id = snapshot.id.simple().to_string();
    let short_id = &id[..8];
    let processes = snapshot.processes.len();
    let host_id = snapshot.host.id.clone();
    let send_started = Instant::now();
    let outcome = sending.send(outbox, snapshot).await;
    let send_ms = send_started.elapsed().as_millis();
    let waiting = sending.waiting();
    match outcome {
        Cycle::Sent(sent) => tracing::info!(
            snapshot = %short_id,
            processes,
            collect_ms,
            send_ms,
            sent = %if sent.full { "whole" } else { "changes" },
            status = %if sent.answer.stored { "stored" } else { "already stored" },
            "sent"
        ),
        Cycle::Spooled { error, from_spool } => tracing::warn!(
            snapshot = %short_id,
            processes,
            collect_ms,
            send_ms,
            from_spool,
            waiting,
            status = %"not sent, spooled",
            "{}",
            error.map_or_else(
                || format!("waiting to retry: {}", sending.last_error),
                |e| e.to_string()
            )
        ),
        Cycle::Drained { from_spool } => tracing::info!(
            snapshot = %short_id,
            processes,
            collect_ms,
            send_ms,
            from_spool,
            status = %"sent from the spool",
            "sent"
        ),
        Cycle::Failed(error) => tracing::warn!(
            snapshot = %short_id,
            processes,
            collect_ms,
            send_ms,
            status = %"not sent",
            "{error}"
        ),
    }
    Ok((sending.pending_actions > 0).then_some(host_id))
}

/// How one cycle's snapshot went.
enum Cycle {
    /// Sent at once.
    Sent(Sent),
    /// It waits in the spool (behind others, or it could not be sent),
    /// after `from_spool` older ones went; `error` is why the last try
    /// failed, if one was made.
    Spooled {
        error: Option<SendError>,
        from_spool: u64,
    },
    /// It went through the spool, with everything before it.
    Drained { from_spool: u64 },
    /// Not sent, and not kept (no spool, or the server would refuse it
    /// again).
    Failed(SendError),
}

/// The link to the server and, when there is one, the spool of what did
/// not go: each snapshot goes at once while nothing waits, else behind
/// what waits, oldest first.
pub struct Sending {
    link: Link,
    spool: Option<Spool>,
    /// The snapshot of the newest spooled record, which a delta appended
    /// next is relative to.
    spooled: Option<Snapshot>,
    /// The snapshot of the spool record sent last, rebuilt from the
    /// records, so that a delta the server lacks the base of can go whole.
    sent_from_spool: Option<Snapshot>,
    backoff: Backoff,
    /// No try before this, after a failure.
    not_before: Option<Instant>,
    /// Why the last try failed, for the log while the agent waits.
    last_error: String,
    /// What the last answer of this cycle said of actions waiting.
    pending_actions: u32,
}

impl Sending {
    pub fn new(link: Link, spool: Option<Spool>) -> Self {
        Self {
            link,
            spool,
            spooled: None,
            sent_from_spool: None,
            backoff: Backoff::new(),
            not_before: None,
            last_error: String::new(),
            pending_actions: 0,
        }
    }

    /// Records waiting in the spool.
    pub fn waiting(&self) -> u64 {
        self.spool.as_ref().map_or(0, Spool::len)
    }

    fn may_try(&self) -> bool {
        self.not_before.is_none_or(|at| Instant::now() >= at)
    }

    /// The verdict on a failed send: when to try again, or drop.
    fn failed(&mut self, error: &SendError) -> Verdict {
        self.last_error = error.to_string();
        let verdict = classify(error.outcome(), std::time::SystemTime::now());
        let wait = match verdict {
            Verdict::RetryAfter(wait) => Some(wait),
            Verdict::Backoff => Some(self.backoff.next_delay()),
            Verdict::Hold(reason) => {
                reason.log(Some(&error.to_string()));
                Some(self.backoff.next_delay())
            }
            Verdict::Sent | Verdict::Drop(_) => None,
        };
        self.not_before = wait.map(|wait| Instant::now() + wait);
        verdict
    }

    async fn send(&mut self, outbox: &mut impl Deliver, snapshot: Snapshot) -> Cycle {
        self.pending_actions = 0;
        let Some(spool) = self.spool.as_ref() else {
            return match self.link.send(outbox, snapshot).await {
                Ok(sent) => {
                    self.pending_actions = sent.answer.pending_actions;
                    Cycle::Sent(sent)
                }
                Err(e) => Cycle::Failed(e),
            };
        };
        if spool.is_empty() && self.may_try() {
            self.tell_spool(outbox);
            match self.link.send(outbox, snapshot.clone()).await {
                Ok(sent) => {
                    self.pending_actions = sent.answer.pending_actions;
                    self.backoff.reset();
                    self.not_before = None;
                    // What is spooled next starts from a whole snapshot,
                    // not from one the server has long had.
                    self.spooled = None;
                    return Cycle::Sent(sent);
                }
                Err(error) => {
                    if let Verdict::Drop(reason) = self.failed(&error) {
                        reason.log(snapshot.id, Some(&error.to_string()));
                        return Cycle::Failed(error);
                    }
                    if let Err(e) = self.append(snapshot) {
                        tracing::error!("{e}");
                        return Cycle::Failed(error);
                    }
                    return Cycle::Spooled {
                        error: Some(error),
                        from_spool: 0,
                    };
                }
            }
        }
        let id = snapshot.id;
        if let Err(e) = self.append(snapshot) {
            tracing::error!("{e}");
        }
        let (from_spool, error) = self.drain(outbox).await;
        let still_waiting = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if !still_waiting {
            return Cycle::Drained { from_spool };
        }
        if let Some(e) = &error {
            tracing::debug!(snapshot = %id, "the spool waits: {e}");
        }
        Cycle::Spooled { error, from_spool }
    }

    /// Notes what the spool holds for the server, before a delivery.
    fn tell_spool(&self, outbox: &mut impl Deliver) {
        if let Some(spool) = &self.spool {
            outbox.spool_is(SpoolReport {
                waiting: spool.len(),
                bytes: spool.bytes(),
            });
        }
    }

    /// Appends `snapshot` to the spool: whole where a segment starts (or
    /// nothing spooled is known), else as the batch against the snapshot
    /// spooled before it.
    fn append(&mut self, snapshot: Snapshot) -> Result<(), SpoolError> {
        let spool = self.spool.as_mut().expect("only called with a spool");
        let (kind, payload) = match &self.spooled {
            Some(before) if !spool.wants_keyframe() && before.host.id == snapshot.host.id => {
                (Kind::Delta, compressed_json(&diff(before, &snapshot)))
            }
            _ => (Kind::Keyframe, compressed_json(&snapshot)),
        };
        let payload = payload.map_err(|source| SpoolError::Io {
            path: spool.dir().to_owned(),
            source,
        })?;
        spool.append(kind, snapshot.id, &payload)?;
        self.spooled = Some(snapshot);
        Ok(())
    }

    /// Sends what the spool holds, oldest first, until it is empty or a
    /// send fails in a way worth retrying (then after the wait the policy
    /// says). How many went, and the last failure.
    async fn drain(&mut self, outbox: &mut impl Deliver) -> (u64, Option<SendError>) {
        let mut sent = 0;
        while self.may_try() {
            let spool = self.spool.as_mut().expect("only called with a spool");
            let record = match spool.peek() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!("{e}");
                    break;
                }
            };
            let message = match Message::decode(record.kind, &record.payload) {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!(
                        message_id = %record.id,
                        "a spooled message cannot be read ({e}); its spool segment is given up"
                    );
                    let _ = spool.skip_segment(record.id);
                    self.sent_from_spool = None;
                    continue;
                }
            };
            self.tell_spool(outbox);
            match self.send_spooled(outbox, message).await {
                Ok(()) => {
                    self.backoff.reset();
                    self.not_before = None;
                    sent += 1;
                    let spool = self.spool.as_mut().expect("only called with a spool");
                    if let Err(e) = spool.ack(record.id) {
                        tracing::error!("{e}");
                        break;
                    }
                }
                Err(error) => match self.failed(&error) {
                    Verdict::Drop(reason) => {
                        reason.log(record.id, Some(&error.to_string()));
                        // What follows in the segment is relative to it.
                        let spool = self.spool.as_mut().expect("only called with a spool");
                        let _ = spool.skip_segment(record.id);
                        self.sent_from_spool = None;
                    }
                    _ => return (sent, Some(error)),
                },
            }
        }
        (sent, None)
    }

    /// Sends one spooled message. A batch the server lacks the base of
    /// goes whole, rebuilt from the records before it; when it cannot be
    /// rebuilt (the agent restarted in the middle of a segment) the rest
    /// of the segment is given up, saying so.
    async fn send_spooled(
        &mut self,
        outbox: &mut impl Deliver,
        message: Message,
    ) -> Result<(), SendError> {
        match message {
            Message::Whole(snapshot) => {
                let answer = outbox.deliver(Delivery::Full(&snapshot)).await?;
                self.pending_actions = answer.pending_actions;
                self.link.acknowledged(snapshot.clone(), true);
                self.sent_from_spool = Some(snapshot);
            }
            Message::Changes(batch) => {
                let made = self
                    .sent_from_spool
                    .as_ref()
                    .filter(|base| base.id == batch.base_id)
                    .and_then(|base| apply(base, &batch).ok());
                match outbox.deliver(Delivery::Batch(&batch)).await {
                    Ok(answer) => self.pending_actions = answer.pending_actions,
                    Err(SendError::BaseUnknown { message }) => match &made {
                        Some(whole) => {
                            tracing::info!("the server lacks the base ({message}): sending in full");
                            let answer = outbox.deliver(Delivery::Full(whole)).await?;
                            self.pending_actions = answer.pending_actions;
                        }
                        None => {
                            return Err(SendError::Rejected {
                                status: 422,
                                message: format!(
                                    "{message}; the spooled change batch cannot be made whole                                      here (the agent restarted in the middle of its spool)"
                                ),
                            })
                        }
                    },
                    Err(e) => return Err(e),
                }
                match made {
                    Some(whole) => {
                        self.link.acknowledged(whole.clone(), false);
                        self.sent_from_spool = Some(whole);
                    }
                    None => {
                        self.link.reset();
                        self.sent_from_spool = None;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A spooled record, decoded.
enum Message {
    Whole(Snapshot),
    Changes(ChangeBatch),
}

impl Message {
    fn decode(kind: Kind, payload: &[u8]) -> std::io::Result<Message> {
        // Far above any snapshot the server takes.
        const MOST: usize = 1 << 30;
        let json = zstd::bulk::decompress(payload, MOST)?;
        Ok(match kind {
            Kind::Keyframe => Message::Whole(serde_json::from_slice(&json)?),
            Kind::Delta => Message::Changes(serde_json::from_slice(&json)?),
        })
    }
}
