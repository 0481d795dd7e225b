//! What a rule would do, before it is saved: what it matches on each host
//! now, and when it would have fired over the last day. The past is
//! replayed exactly from history's starts and exits (a process that lived
//! a second between two snapshots is in them), through the same steps the
//! live evaluator takes.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use procmon_model::alerts::{
    AlertCondition, AlertPreview, AlertProcess, AlertRule, AlertRuleSpec, AlertState,
    PreviewFiring, PreviewHost,
};
use procmon_model::{ProcessFacts, Snapshot, WIRE_VERSION};

use super::observe;
use super::rules::{Compiled, ProcessTexts, RuleSet};
use super::step::{self, Observation, Tell};
use crate::store::alerts::AlertRecord;
use crate::store::{HostRecord, Store, StoreError, TimeRange};

/// Hours of history a preview replays.
pub const HOURS: u32 = 24;
/// Hosts a preview looks at, at most (the rest make it `partial`).
pub const MAX_HOSTS: usize = 200;
/// Changes read per host, at most.
const MAX_CHANGES: usize = 20_000;
/// Matching processes named per host.
const NAMED: usize = 20;

/// Why a preview could not be made.
pub enum PreviewError {
    Invalid(String),
    Store(StoreError),
}

impl From<StoreError> for PreviewError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The preview of `spec` at `now`.
pub async fn preview(
    store: &dyn Store,
    spec: AlertRuleSpec,
    now: DateTime<Utc>,
) -> Result<AlertPreview, PreviewError> {
    super::rules::check(&spec).map_err(PreviewError::Invalid)?;
    let rule = AlertRule {
        id: "preview".into(),
        version: 0,
        created_at: now,
        updated_at: now,
        updated_by: String::new(),
        spec: AlertRuleSpec {
            enabled: true,
            ..spec
        },
    };
    let rules = RuleSet::new(vec![rule]);
    let compiled = &rules.rules[0];
    let mut hosts: Vec<HostRecord> = store
        .hosts()
        .await?
        .into_iter()
        .filter(|h| compiled.covers(&h.info.id, &h.info.hostname, &h.info.labels))
        .collect();
    hosts.sort_by(|a, b| a.info.hostname.cmp(&b.info.hostname));
    let mut partial = hosts.len() > MAX_HOSTS;
    hosts.truncate(MAX_HOSTS);

    let mut answer = AlertPreview {
        now: Vec::new(),
        history: Vec::new(),
        hours: HOURS,
        partial: false,
        note: None,
    };
    for host in &hosts {
        answer.now.push(now_on(store, &rules, host, now).await?);
    }
    let replayable = matches!(
        compiled.rule.spec.condition,
        AlertCondition::ProcessAbsent { .. }
            | AlertCondition::ProcessPresent { .. }
            | AlertCondition::ProcessCount { .. }
    );
    if replayable {
        for host in &hosts {
            let (firings, truncated) = replay(store, compiled, host, now).await?;
            partial |= truncated;
            answer.history.extend(firings);
        }
        answer.history.sort_by_key(|f| f.fired_at);
        if partial {
            answer.note = Some(format!(
                "only part of the history was replayed: at most {MAX_HOSTS} hosts and \
                 {MAX_CHANGES} changes per host"
            ));
        }
    } else {
        answer.note = Some(
            "the last day is replayed for rules on processes starting and exiting; \
             thresholds and offline hosts are shown as they are now"
                .into(),
        );
    }
    answer.partial = partial;
    Ok(answer)
}

/// What the rule sees in the host's newest snapshot.
async fn now_on(
    store: &dyn Store,
    rules: &RuleSet,
    host: &HostRecord,
    now: DateTime<Utc>,
) -> Result<PreviewHost, PreviewError> {
    let compiled = &rules.rules[0];
    let stored = store.snapshot(&host.info.id, None).await?;
    let processes = stored.map(|s| s.processes).unwrap_or_default();
    let matching: Vec<AlertProcess> = match &compiled.matcher {
        Some(matcher) => processes
            .iter()
            .filter(|p| matcher.matches(&ProcessTexts::of(p)))
            .map(|p| AlertProcess {
                pid: p.pid,
                start_time: p.start_time,
                name: p.name.clone(),
            })
            .collect(),
        None => Vec::new(),
    };
    let count = matching.len() as u32;
    let (holds, value) = if matches!(compiled.rule.spec.condition, AlertCondition::HostOffline) {
        let seen = observe::offline(rules, std::slice::from_ref(host), now);
        seen.first()
            .map_or((false, 0.0), |(_, o)| (o.holds, o.value))
    } else {
        let snapshot = Snapshot {
            version: WIRE_VERSION,
            id: uuid::Uuid::nil(),
            collected_at: host.newest_taken_at,
            interval_ms: host.interval_ms,
            host: host.info.clone(),
            load: None,
            processes,
        };
        let matches = super::matches::HostMatches::of(rules, rules.generation, &snapshot);
        let seen = observe::snapshot(
            rules,
            &matches,
            &snapshot,
            host.newest_taken_at,
            observe::Wanted::All,
        )
        .unwrap_or_default();
        let observations: Vec<&Observation> = seen.iter().flat_map(|(_, o)| o).collect();
        (
            observations.iter().any(|o| o.holds),
            // The largest, for a threshold on each process.
            observations
                .iter()
                .map(|o| o.value)
                .reduce(f64::max)
                .unwrap_or(f64::from(count)),
        )
    };
    Ok(PreviewHost {
        host_id: host.info.id.clone(),
        hostname: host.info.hostname.clone(),
        matching: matching.into_iter().take(NAMED).collect(),
        count,
        value,
        holds,
    })
}

/// When the rule would have fired on `host` over the last [`HOURS`]: the
/// matching processes at the start, then each start, exit and change of
/// facts in order, stepped as the live evaluator steps (the clock too,
/// between changes); and whether the changes were cut short.
async fn replay(
    store: &dyn Store,
    compiled: &Compiled,
    host: &HostRecord,
    now: DateTime<Utc>,
) -> Result<(Vec<PreviewFiring>, bool), PreviewError> {
    let Some(matcher) = &compiled.matcher else {
        return Ok((Vec::new(), false));
    };
    let from = (now - TimeDelta::hours(i64::from(HOURS))).max(host.first_taken_at);
    let Some(base) = store.snapshot(&host.info.id, Some(from)).await? else {
        return Ok((Vec::new(), false));
    };
    let key = |pid: u32, start: DateTime<Utc>| (pid, start);
    let mut running: HashSet<(u32, DateTime<Utc>)> = base
        .processes
        .iter()
        .filter(|p| matcher.matches(&ProcessTexts::of(p)))
        .map(|p| key(p.pid, p.start_time))
        .collect();
    let changes = store
        .changes(&host.info.id, TimeRange { from, to: now }, MAX_CHANGES)
        .await?;
    // (when, process gone, process come): a start is (None, Some), an exit
    // (Some, None), a change of facts both.
    let mut events: Vec<(DateTime<Utc>, Option<&ProcessFacts>, Option<&ProcessFacts>)> = Vec::new();
    events.extend(
        changes
            .started
            .iter()
            .map(|e| (e.at, None, Some(&e.process))),
    );
    events.extend(
        changes
            .exited
            .iter()
            .map(|e| (e.at, Some(&e.process), None)),
    );
    events.extend(
        changes
            .changed
            .iter()
            .map(|c| (c.at, Some(&c.before), Some(&c.after))),
    );
    events.sort_by_key(|e| e.0);

    let rule = &compiled.rule;
    let mut sim = Replay::default();
    sim.observe(rule, compiled, host, running.len(), base.taken_at.max(from));
    let mut i = 0;
    while i < events.len() {
        let at = events[i].0;
        while i < events.len() && events[i].0 == at {
            let (_, gone, come) = events[i];
            if let Some(p) = gone {
                running.remove(&key(p.pid, p.start_time));
            }
            if let Some(p) = come.filter(|p| matcher.matches(&ProcessTexts::of_facts(p))) {
                running.insert(key(p.pid, p.start_time));
            }
            i += 1;
        }
        sim.observe(rule, compiled, host, running.len(), at);
    }
    sim.clock(rule, now);
    Ok((sim.firings, changes.truncated))
}

/// One alert's replayed life on one host.
#[derive(Default)]
struct Replay {
    open: Option<AlertRecord>,
    firings: Vec<PreviewFiring>,
}

impl Replay {
    /// Steps the clock up to `at`, then the count seen at `at`.
    fn observe(
        &mut self,
        rule: &AlertRule,
        compiled: &Compiled,
        host: &HostRecord,
        count: usize,
        at: DateTime<Utc>,
    ) {
        self.clock(rule, at);
        let seen = observation(compiled, host, count, at);
        let step = step::after_observation(rule, self.open.as_ref(), &seen, at);
        self.take(step);
    }

    /// The clock's steps up to `until`: a `for` that runs out, a clearing
    /// that lasts, each at the moment it happens.
    fn clock(&mut self, rule: &AlertRule, until: DateTime<Utc>) {
        loop {
            let Some(open) = &self.open else { return };
            let spec = &rule.spec;
            let due = match (open.alert.state, open.clear_since) {
                (AlertState::Pending, _) => open.alert.since + seconds(spec.for_seconds),
                (AlertState::Firing, Some(since)) => since + seconds(spec.clear_seconds),
                _ => return,
            };
            if due > until {
                return;
            }
            let step = step::after_time(rule, open, due, false);
            if step.is_none() {
                return;
            }
            self.take(step);
        }
    }

    fn take(&mut self, step: Option<step::Step>) {
        let Some(step) = step else { return };
        let mut record = step.record;
        record.revision += 1;
        match step.tell {
            Some(Tell::Firing { repeat: false }) => {
                record.notified_at = record.alert.fired_at;
                self.firings.push(PreviewFiring {
                    host_id: record.alert.host_id.clone(),
                    fired_at: record.alert.fired_at.unwrap_or(record.alert.since),
                    resolved_at: None,
                });
            }
            Some(Tell::Resolved) => {
                if let Some(last) = self.firings.last_mut() {
                    last.resolved_at = record.alert.resolved_at;
                }
            }
            _ => {}
        }
        self.open = (!step.forget && record.alert.state != AlertState::Resolved).then_some(record);
    }
}

fn seconds(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

/// What a count of matching processes says, as [`observe::snapshot`]
/// would say it.
fn observation(
    compiled: &Compiled,
    host: &HostRecord,
    count: usize,
    at: DateTime<Utc>,
) -> Observation {
    let count = count as u32;
    let holds = observe::count_holds(&compiled.rule.spec.condition, count).unwrap_or(false);
    Observation {
        host_id: host.info.id.clone(),
        subject: String::new(),
        process: None,
        holds,
        stays: holds,
        value: f64::from(count),
        summary: String::new(),
        at,
    }
}
