//! A simulated fleet for the scale bench. Every host is a `SimHost` (the
//! fixtures' churn) and sends as the agent does, with the agent's own code:
//! it enrolls with the enrollment secret over HTTP, sends its first
//! snapshot whole (`POST /api/processes/`), then at its interval a change
//! batch against the last snapshot acknowledged (`POST /api/changes/`,
//! zstd JSON), and the whole snapshot again if the server lacks the base.
//! Each host keeps a connection to every server and either stays with its
//! own (as behind a balancer that keeps an agent's connection) or sends to
//! them in turn, so that every batch's base was stored through the other
//! server (the worst case: no server's own copy of the chain is current).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use procmon_agent::enroll::enroll;
use procmon_agent::send::compressed_json;
use procmon_agent::{SendError, Sender, ServerTrust};
use procmon_model::changes::diff;
use procmon_model::fixtures::SimHost;
use procmon_model::Snapshot;
use secrecy::SecretString;
use tokio::time::Instant;

/// Enrollments and first snapshots in flight at once.
const STARTING_AT_ONCE: usize = 32;

/// Which server a host's batches go to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// Always its own server (host `i` at server `i % servers`).
    Stay,
    /// The next server each time.
    Alternate,
}

/// One simulated agent.
pub struct Host {
    sim: SimHost,
    /// One per server, in the servers' order.
    senders: Vec<Sender>,
    acked: Snapshot,
    sends: usize,
    home: usize,
    spread: Spread,
    /// Where its sends are noted for the viewers that time them.
    watched: Option<super::viewers::Sent>,
}

/// Enrolls `count` hosts of `processes` processes each (host `i` at server
/// `i % urls.len()`) and stores the first snapshot of each whole.
pub async fn start(
    urls: &[String],
    secret: &SecretString,
    count: usize,
    processes: usize,
    spread: Spread,
) -> anyhow::Result<Vec<Host>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(STARTING_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (urls, secret, gate) = (urls.to_vec(), secret.clone(), gate.clone());
        tasks.spawn(async move {
            let _turn = gate.acquire_owned().await?;
            let sim = SimHost::new(
                &format!("scale-host-{i:05}"),
                processes,
                i as u64 + 1,
                Utc::now(),
            );
            let home = i % urls.len();
            let answer = enroll(&urls[home], &secret, &sim.host, &ServerTrust::default())
                .await
                .with_context(|| format!("host {i} cannot enroll at {}", urls[home]))?;
            let key = SecretString::from(answer.key);
            let senders = urls
                .iter()
                .map(|url| Sender::new(url, key.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let mut first = sim.snapshot();
            first.collected_at = Utc::now();
            senders[home]
                .send(&first)
                .await
                .with_context(|| format!("host {i}'s first snapshot"))?;
            anyhow::Ok((
                i,
                Host {
                    sim,
                    senders,
                    acked: first,
                    sends: home + 1,
                    home,
                    spread,
                    watched: None,
                },
            ))
        });
    }
    let mut hosts = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        hosts.push(done??);
    }
    hosts.sort_by_key(|(i, _)| *i);
    Ok(hosts.into_iter().map(|(_, h)| h).collect())
}

/// What one step of the fleet did.
#[derive(Default)]
pub struct Step {
    /// Batches due in the step (each host's ticks).
    pub due: usize,
    /// Batches answered within the step.
    pub sent: usize,
    /// Send to answer, per batch answered (a whole snapshot resent after
    /// `base_unknown` included).
    pub latency: Vec<Duration>,
    /// How late each send started after its tick.
    pub lag: Vec<Duration>,
    /// Batches the server lacked the base of, sent whole instead.
    pub resent_whole: usize,
    /// Sends that failed, and the first of their errors.
    pub failed: usize,
    pub first_error: Option<String>,
}

impl Step {
    fn merge(&mut self, other: Step) {
        self.due += other.due;
        self.sent += other.sent;
        self.latency.extend(other.latency);
        self.lag.extend(other.lag);
        self.resent_whole += other.resent_whole;
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Every host sends a batch each `interval` for `duration`, the hosts'
/// ticks spread evenly over the interval. A host that falls behind keeps
/// to its ticks (it sends late rather than skipping), so what is still due
/// at the end is the backlog.
pub async fn step(hosts: Vec<Host>, interval: Duration, duration: Duration) -> (Vec<Host>, Step) {
    let n = hosts.len();
    let begin = Instant::now() + Duration::from_millis(200);
    let begin_utc = Utc::now() + chrono::Duration::milliseconds(200);
    let end = begin + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut host) in hosts.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut done = Step::default();
            let mut tick = begin + interval.mul_f64(i as f64 / n as f64);
            while tick < end {
                done.due += 1;
                tick += interval;
            }
            tick = begin + interval.mul_f64(i as f64 / n as f64);
            let at = |tick: Instant| begin_utc + chrono::Duration::from_std(tick - begin).unwrap();
            let mut next = host.prepare(interval, at(tick));
            while tick < end && Instant::now() < end {
                tokio::time::sleep_until(tick).await;
                done.lag.push(tick.elapsed());
                let sent = Instant::now();
                match host.send(next).await {
                    Ok(whole) => {
                        done.sent += 1;
                        done.resent_whole += usize::from(whole);
                        done.latency.push(sent.elapsed());
                    }
                    Err(e) => {
                        done.failed += 1;
                        done.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
                tick += interval;
                next = host.prepare(interval, at(tick));
            }
            (i, host, done)
        });
    }
    let mut all = Step::default();
    let mut hosts = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        let (i, host, step) = done.expect("a host's task");
        all.merge(step);
        hosts.push((i, host));
    }
    hosts.sort_by_key(|(i, _)| *i);
    (hosts.into_iter().map(|(_, h)| h).collect(), all)
}

/// A prepared send: the snapshot and its batch body.
struct Next {
    snapshot: Snapshot,
    body: Vec<u8>,
}

impl Host {
    /// The host's next snapshot, taken at `at`, and its batch as sent.
    fn prepare(&mut self, interval: Duration, at: DateTime<Utc>) -> Next {
        let interval = chrono::Duration::from_std(interval).expect("a short interval");
        self.sim.interval = interval;
        self.sim.now = at - interval;
        let snapshot = self.sim.next();
        let body = compressed_json(&diff(&self.acked, &snapshot)).expect("a batch encodes");
        Next { snapshot, body }
    }

    /// Notes each send from now on in `sent`, for viewers to time.
    pub fn watch(&mut self, sent: super::viewers::Sent) {
        self.watched = Some(sent);
    }

    /// The host's id.
    pub fn id(&self) -> &str {
        &self.acked.host.id
    }

    /// Sends `next` to the next server; true when it had to go whole.
    async fn send(&mut self, next: Next) -> anyhow::Result<bool> {
        let index = match self.spread {
            Spread::Stay => self.home,
            Spread::Alternate => self.sends % self.senders.len(),
        };
        let sender = &self.senders[index];
        self.sends += 1;
        if let Some(sent) = &self.watched {
            sent.sending(next.snapshot.id, index);
        }
        let whole = match sender.post(sender.changes_url(), next.body).await {
            Ok(_) => false,
            Err(SendError::BaseUnknown { .. }) => {
                sender
                    .send(&next.snapshot)
                    .await
                    .context("the whole snapshot")?;
                true
            }
            Err(e) => return Err(e).context("the change batch"),
        };
        self.acked = next.snapshot;
        Ok(whole)
    }
}
