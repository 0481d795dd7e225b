//! Alerts: rules checked against every snapshot a server stores, and on a
//! timer for what no snapshot says (a `for` run out, a host gone quiet).
//!
//! Nothing here is needed in one server's memory for correctness: the rules
//! and alerts live in the store, and this server keeps only a compiled copy
//! of the rules and silences, reloaded every [`RELOAD_EVERY`] (so a rule
//! made on another server takes effect within it). Each server evaluates
//! the snapshots it stores, and every server runs the timer; two servers
//! that reach the same transition race on the alert's revision in the
//! store, and one wins, so the channels hear of it once.

pub mod flap;
pub mod matches;
pub mod observe;
pub mod preview;
pub mod rules;
pub mod step;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use procmon_model::alerts::{AlertNotification, AlertState, Silence};
use procmon_model::{ChangeBatch, Snapshot};
use std::collections::{HashMap, HashSet};

use self::matches::{HostMatches, Signals};

use self::rules::{Compiled, RuleSet};
use self::step::{Step, Tell};
use crate::clock::Clock;
use crate::store::alerts::{AlertRecord, AlertStore, AlertWrite, QueuedDelivery};
use crate::store::{Store, StoreResult};

/// How often each server reloads the rules and silences, and looks at the
/// clock for alerts that no snapshot moves.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// A host whose batches change nothing the rules look at is still
/// evaluated in full this often: what another server did to its alerts is
/// then seen here too.
const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// A host's cached matches are dropped after this long unused.
const CACHE_KEPT: Duration = Duration::from_secs(300);

/// How often resolved alerts older than history's raw retention are
/// forgotten (they are kept as long as the snapshots they point into).
const FORGET_EVERY: Duration = Duration::from_secs(3600);

/// One server's evaluator.
pub struct Alerts {
    store: Arc<dyn AlertStore>,
    history: Arc<dyn Store>,
    rules: RwLock<Arc<RuleSet>>,
    silences: RwLock<Arc<Vec<Silence>>>,
    /// Where the page is, for the links in notifications (ends in `/`).
    page_url: RwLock<String>,
    /// Snapshots handed over for evaluation and not yet evaluated.
    in_flight: std::sync::atomic::AtomicUsize,
    /// Per host: its matches and what held when it was last evaluated in
    /// full (a cache: see [`matches`]).
    hosts: std::sync::Mutex<HashMap<String, HostCache>>,
    generations: std::sync::atomic::AtomicU64,
    /// Told when this server queues notifications, so that its sender
    /// sends them now rather than at its next look at the queue.
    queued: Arc<tokio::sync::Notify>,
}

struct HostCache {
    matches: HostMatches,
    signals: Signals,
    checked: std::time::Instant,
}

/// A snapshot's evaluation under way, counted in [`Alerts::in_flight`]
/// until dropped.
pub struct Evaluating(Arc<Alerts>);

impl Evaluating {
    pub fn alerts(&self) -> &Alerts {
        &self.0
    }
}

impl Drop for Evaluating {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Alerts {
    pub fn new(store: Arc<dyn AlertStore>, history: Arc<dyn Store>) -> Self {
        Self {
            store,
            history,
            rules: RwLock::default(),
            silences: RwLock::default(),
            page_url: RwLock::new("/".into()),
            in_flight: Default::default(),
            hosts: Default::default(),
            generations: Default::default(),
            queued: Default::default(),
        }
    }

    /// What is told when this server queues notifications (the sender
    /// waits on it beside its clock).
    pub fn queued(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.queued)
    }

    /// Counts an evaluation from now until the guard is dropped.
    pub fn evaluating(self: &Arc<Self>) -> Evaluating {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Evaluating(Arc::clone(self))
    }

    /// Snapshots stored and not yet evaluated (a bench waits for none).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The store the rules and alerts are in.
    pub fn store(&self) -> &Arc<dyn AlertStore> {
        &self.store
    }

    /// Sets where the page is, for links (once the server knows its URL).
    pub fn set_page_url(&self, url: &str) {
        let mut url = url.to_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        *self.page_url.write().unwrap_or_else(|p| p.into_inner()) = url;
    }

    /// The rules as this server evaluates them.
    pub fn rules(&self) -> Arc<RuleSet> {
        read(&self.rules)
    }

    /// Reads the rules and silences again (after a change here, and every
    /// [`RELOAD_EVERY`]).
    pub async fn reload(&self, now: DateTime<Utc>) -> StoreResult<()> {
        let stored = self.store.rules().await?;
        let silences = self.store.silences(now).await?;
        if stored != self.rules().source {
            let mut rules = RuleSet::new(stored);
            rules.generation = 1 + self
                .generations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
        }
        *self.silences.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(silences);
        Ok(())
    }

    /// The silence holding for `rule_id` on `host_id` at `at` that lasts
    /// longest, if any.
    fn silence(
        &self,
        silences: &[Silence],
        rule_id: &str,
        host_id: &str,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        silences
            .iter()
            .filter(|s| s.covers(rule_id, host_id, at))
            .map(|s| s.until)
            .max()
    }

    /// Evaluates a snapshot this server just stored (taken at `taken_at`;
    /// made by `batch`, if it came as one) against every rule that covers
    /// its host; how many alerts changed. A batch that changes nothing the
    /// rules look at costs no read of the store.
    pub async fn observe(
        &self,
        snapshot: &Snapshot,
        batch: Option<&ChangeBatch>,
        taken_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        let rules = self.rules();
        let host_id = &snapshot.host.id;
        let cached = lock(&self.hosts).remove(host_id);
        let advanced = match (cached, batch) {
            (Some(mut c), Some(batch)) => c
                .matches
                .advance(&rules, rules.generation, batch, snapshot)
                .then_some(c),
            _ => None,
        };
        let (matches, previous) = match advanced {
            Some(c) => (c.matches, Some((c.signals, c.checked))),
            None => (HostMatches::of(&rules, rules.generation, snapshot), None),
        };
        if !matches.covering.contains(&true) {
            self.keep(
                host_id,
                matches,
                Signals::default(),
                std::time::Instant::now(),
            );
            return Ok(0);
        }
        let signals = Signals::of(&rules, &matches, snapshot);
        let unchanged = previous.as_ref().is_some_and(|(before, checked)| {
            *before == signals && checked.elapsed() < RECHECK_EVERY
        });
        if unchanged {
            let checked = previous.map_or_else(std::time::Instant::now, |(_, c)| c);
            self.keep(host_id, matches, signals, checked);
            return Ok(0);
        }
        let changed = self
            .evaluate(&rules, &matches, snapshot, taken_at, now)
            .await;
        // Kept only once evaluated: after a failure the next batch
        // evaluates in full again.
        if changed.is_ok() {
            self.keep(host_id, matches, signals, std::time::Instant::now());
        }
        changed
    }

    fn keep(
        &self,
        host_id: &str,
        matches: HostMatches,
        signals: Signals,
        checked: std::time::Instant,
    ) {
        lock(&self.hosts).insert(
            host_id.to_owned(),
            HostCache {
                matches,
                signals,
                checked,
            },
        );
    }

    /// Every rule covering the snapshot's host, against its open alerts.
    async fn evaluate(
        &self,
        rules: &RuleSet,
        matches: &HostMatches,
        snapshot: &Snapshot,
        taken_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        if !matches.covering.contains(&true) {
            return Ok(0);
        }
        let open = self.store.open_alerts(Some(&snapshot.host.id)).await?;
        let open_rules: HashSet<&str> = open.iter().map(|a| a.alert.rule_id.as_str()).collect();
        let wanted = observe::Wanted::Changes {
            open_rules: &open_rules,
        };
        let Some(seen) = observe::snapshot(rules, matches, snapshot, taken_at, wanted) else {
            return Ok(0);
        };
        let mut steps = Vec::new();
        for (index, observations) in seen {
            let compiled = &rules.rules[index];
            let rule_open: Vec<&AlertRecord> = open
                .iter()
                .filter(|a| a.alert.rule_id == compiled.rule.id)
                .collect();
            let named: Vec<&str> = observations.iter().map(|o| o.subject.as_str()).collect();
            // An open alert on a process this snapshot does not name (it
            // exited, or its number fell to the rule's clearing level).
            let unnamed = rule_open
                .iter()
                .filter(|a| !a.subject.is_empty() && !named.contains(&a.subject.as_str()))
                .map(|a| observe::not_named(a, taken_at))
                .collect::<Vec<_>>();
            for observation in observations.into_iter().chain(unnamed) {
                let current = rule_open
                    .iter()
                    .find(|a| a.subject == observation.subject)
                    .copied();
                if let Some(step) =
                    step::after_observation(&compiled.rule, current, &observation, now)
                {
                    steps.push((step, compiled));
                }
            }
        }
        self.apply(steps, now).await
    }

    /// Looks at the clock: host-offline rules, and alerts no snapshot
    /// moves (a `for` run out, a clearing that has lasted, a repeat due, a
    /// silence over, a flap settled); how many alerts changed.
    pub async fn tick(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        lock(&self.hosts).retain(|_, c| c.checked.elapsed() < CACHE_KEPT);
        let rules = self.rules();
        if rules.rules.is_empty() {
            return Ok(0);
        }
        let hosts = self.history.hosts().await?;
        let open = self.store.open_alerts(None).await?;
        let silences = read(&self.silences);
        let mut steps = Vec::new();
        for seen in observe::offline(&rules, &hosts, now) {
            let (index, observation) = seen;
            let compiled = &rules.rules[index];
            let current = open.iter().find(|a| {
                a.alert.rule_id == compiled.rule.id && a.alert.host_id == observation.host_id
            });
            if let Some(step) = step::after_observation(&compiled.rule, current, &observation, now)
            {
                steps.push((step, compiled));
            }
        }
        for alert in &open {
            let Some(compiled) = rules
                .rules
                .iter()
                .find(|r| r.rule.id == alert.alert.rule_id)
            else {
                continue;
            };
            if matches!(
                compiled.rule.spec.condition,
                procmon_model::alerts::AlertCondition::HostOffline
            ) {
                continue;
            }
            // What was last observed stands only while the host reports.
            let online = hosts
                .iter()
                .find(|h| h.info.id == alert.alert.host_id)
                .is_some_and(|h| crate::api::hosts::is_online(h, now));
            if !online {
                continue;
            }
            let silenced = self
                .silence(&silences, &compiled.rule.id, &alert.alert.host_id, now)
                .is_some();
            if let Some(step) = step::after_time(&compiled.rule, alert, now, silenced) {
                steps.push((step, compiled));
            }
        }
        let changed = self.apply(steps, now).await?;
        Ok(changed + self.settle_flaps(&rules, now).await?)
    }

    /// Stores the steps, each with its notifications unless a silence
    /// holds or the alert flaps (see [`flap`]: it is still raised and
    /// stored, as a silenced one is); how many were applied (the others
    /// lost a race with another server, which applied its own).
    async fn apply(&self, steps: Vec<(Step, &Compiled)>, now: DateTime<Utc>) -> StoreResult<usize> {
        if steps.is_empty() {
            return Ok(0);
        }
        let silences = read(&self.silences);
        let page = read(&self.page_url);
        let mut writes = Vec::with_capacity(steps.len());
        for (mut step, compiled) in steps {
            self.damp(&mut step).await?;
            let Step {
                mut record,
                forget,
                tell,
                fired: _,
            } = step;
            let silenced_until =
                self.silence(&silences, &compiled.rule.id, &record.alert.host_id, now);
            record.alert.silenced_until = silenced_until;
            let mut deliveries = Vec::new();
            if let Some(tell) = tell.filter(|_| silenced_until.is_none()) {
                if matches!(tell, Tell::Firing { .. }) {
                    record.notified_at = Some(now);
                }
                let notification = AlertNotification {
                    id: uuid::Uuid::new_v4().to_string(),
                    state: match tell {
                        Tell::Firing { .. } => AlertState::Firing,
                        Tell::Resolved => AlertState::Resolved,
                    },
                    repeat: matches!(tell, Tell::Firing { repeat: true }),
                    link: link(&page, &record),
                    alert: record.alert.clone(),
                };
                let body = serde_json::to_string(&notification)
                    .map_err(|e| anyhow::anyhow!("cannot encode a notification: {e}"))?;
                deliveries = compiled
                    .rule
                    .spec
                    .channels
                    .iter()
                    .map(|channel| QueuedDelivery {
                        id: uuid::Uuid::new_v4().to_string(),
                        channel_id: channel.clone(),
                        body: body.clone(),
                    })
                    .collect();
            }
            writes.push(AlertWrite {
                record,
                forget,
                deliveries,
            });
        }
        let queues = writes.iter().any(|w| !w.deliveries.is_empty());
        let applied = self.store.write_alerts(writes).await?;
        if queues {
            self.queued.notify_one();
        }
        Ok(applied.into_iter().filter(|&a| a).count())
    }

    /// Reloads and ticks every [`RELOAD_EVERY`], and forgets resolved
    /// alerts older than `kept` every [`FORGET_EVERY`], until aborted.
    pub async fn run(self: Arc<Self>, clock: Arc<dyn Clock>, kept: chrono::TimeDelta) {
        let mut every = tokio::time::interval(RELOAD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut forgot: Option<std::time::Instant> = None;
        loop {
            every.tick().await;
            let now = clock.now();
            if forgot.is_none_or(|at| at.elapsed() >= FORGET_EVERY) {
                forgot = Some(std::time::Instant::now());
                match self.store.forget_resolved(now - kept).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(alerts = n, "resolved alerts past retention forgotten"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot forget old alerts now; will retry")
                    }
                }
            }
            let done = match self.reload(now).await {
                Ok(()) => self.tick(now).await,
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "cannot evaluate the alert rules now; trying again shortly");
            }
        }
    }
}

/// The page at the alert's host and moment (the moment it fired, else the
/// moment it began).
fn link(page: &str, record: &AlertRecord) -> String {
    let at = record.alert.fired_at.unwrap_or(record.alert.since);
    let host: String = record
        .alert
        .host_id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "{page}#host={host}&at={}",
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    )
}
