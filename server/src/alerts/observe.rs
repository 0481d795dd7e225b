//! What a snapshot, or the clock, says about each rule: the observations
//! [`super::step`] turns into alerts. One pass over the snapshot's
//! processes, each matched only against the rules that can match it.

use chrono::{DateTime, Utc};
use procmon_model::alerts::{AlertCondition, AlertProcess, HostMetric, ProcessMetric};
use procmon_model::{ProcessSample, Snapshot};

use std::collections::{HashMap, HashSet};

use super::matches::HostMatches;
use super::rules::RuleSet;
use super::step::Observation;
use crate::store::alerts::{process_subject, AlertRecord};
use crate::store::{HostMeters, HostRecord};

/// Processes named in a summary, at most.
const NAMED: usize = 3;

/// Which observations [`snapshot`] makes.
#[derive(Clone, Copy)]
pub enum Wanted<'a> {
    /// Every one: a preview shows each value.
    All,
    /// Those that can change an alert: what holds, and all of a rule that
    /// has an alert open on the host (these rule ids). Of other rules, an
    /// observation that does not hold changes nothing, and making it (its
    /// summary above all) was most of what 1,000 rules cost a batch.
    Changes { open_rules: &'a HashSet<&'a str> },
}

/// The observations of each rule covering the snapshot's host, by the
/// rule's index in `rules`; none when no rule covers it.
pub fn snapshot(
    rules: &RuleSet,
    matches: &HostMatches,
    snapshot: &Snapshot,
    taken_at: DateTime<Utc>,
    wanted: Wanted<'_>,
) -> Option<Vec<(usize, Vec<Observation>)>> {
    let host = &snapshot.host;
    // The matches know which rules cover the host (they were made for it).
    let covering = &matches.covering;
    if !covering.contains(&true) {
        return None;
    }
    let by_pid: HashMap<u32, &ProcessSample> =
        snapshot.processes.iter().map(|p| (p.pid, p)).collect();
    let observation = |holds: bool, stays: bool, value: f64, summary: String| Observation {
        host_id: host.id.clone(),
        subject: String::new(),
        process: None,
        holds,
        stays,
        value,
        summary,
        at: taken_at,
    };
    let on = &host.hostname;
    let mut seen = Vec::new();
    for (index, compiled) in rules.rules.iter().enumerate() {
        if !covering[index] {
            continue;
        }
        let found: Vec<&ProcessSample> = matches
            .pids(index)
            .iter()
            .filter_map(|pid| by_pid.get(pid).copied())
            .collect();
        let found = &found;
        let count = found.len() as u32;
        let what = &compiled.rule.spec.name;
        let all = match wanted {
            Wanted::All => true,
            Wanted::Changes { open_rules } => open_rules.contains(compiled.rule.id.as_str()),
        };
        if !all && count_holds(&compiled.rule.spec.condition, count) == Some(false) {
            continue;
        }
        let observations = match &compiled.rule.spec.condition {
            AlertCondition::ProcessAbsent { .. } => {
                let holds = count_holds(&compiled.rule.spec.condition, count) == Some(true);
                vec![observation(
                    holds,
                    holds,
                    f64::from(count),
                    if holds {
                        format!("{what}: no matching process runs on {on}")
                    } else {
                        format!("{what}: {} runs on {on}", names(found))
                    },
                )]
            }
            AlertCondition::ProcessPresent { .. } => {
                let holds = count_holds(&compiled.rule.spec.condition, count) == Some(true);
                vec![observation(
                    holds,
                    holds,
                    f64::from(count),
                    if holds {
                        format!("{what}: {} runs on {on}", names(found))
                    } else {
                        format!("{what}: no matching process runs on {on}")
                    },
                )]
            }
            AlertCondition::ProcessCount { min, max, .. } => {
                let holds = count_holds(&compiled.rule.spec.condition, count) == Some(true);
                let range = match (min, max) {
                    (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
                    (Some(lo), None) => format!("at least {lo}"),
                    (None, Some(hi)) => format!("at most {hi}"),
                    (None, None) => "any number".into(),
                };
                vec![observation(
                    holds,
                    holds,
                    f64::from(count),
                    format!("{what}: {count} matching processes on {on} (expected {range})"),
                )]
            }
            AlertCondition::ProcessAbove {
                metric,
                above,
                clear_below,
                ..
            } => {
                let clear = clear_below.unwrap_or(*above);
                found
                    .iter()
                    .filter_map(|p| process_value(p, *metric).map(|v| (p, v)))
                    .filter(|(_, v)| *v > if all { clear } else { *above })
                    .map(|(p, value)| Observation {
                        subject: process_subject(p.pid, p.start_time),
                        process: Some(AlertProcess {
                            pid: p.pid,
                            start_time: p.start_time,
                            name: p.name.clone(),
                        }),
                        ..observation(
                            value > *above,
                            true,
                            value,
                            format!(
                                "{what}: {} (pid {}) on {on} has {} {} (above {})",
                                p.name,
                                p.pid,
                                metric_name(*metric),
                                show(*metric, value),
                                show(*metric, *above)
                            ),
                        )
                    })
                    .collect()
            }
            AlertCondition::HostAbove {
                metric,
                above,
                clear_below,
                ..
            } => match host_value(snapshot, *metric) {
                Some(value) if all || value > *above => vec![observation(
                    value > *above,
                    value > clear_below.unwrap_or(*above),
                    value,
                    format!(
                        "{what}: {on} {} is {} (above {})",
                        host_metric_name(*metric),
                        show_host(*metric, value),
                        show_host(*metric, *above)
                    ),
                )],
                _ => Vec::new(),
            },
            // A host that sends is not offline: only an open alert hears it.
            AlertCondition::HostOffline if !all => continue,
            AlertCondition::HostOffline => vec![observation(
                false,
                false,
                0.0,
                format!("{what}: {on} reports again"),
            )],
        };
        seen.push((index, observations));
    }
    Some(seen)
}

/// Whether a rule on how many processes match holds when `count` do;
/// none for other rules.
pub fn count_holds(condition: &AlertCondition, count: u32) -> Option<bool> {
    match condition {
        AlertCondition::ProcessAbsent { .. } => Some(count == 0),
        AlertCondition::ProcessPresent { .. } => Some(count > 0),
        AlertCondition::ProcessCount { min, max, .. } => {
            Some(min.is_some_and(|m| count < m) || max.is_some_and(|m| count > m))
        }
        _ => None,
    }
}

/// What a snapshot that does not name an open alert's process says of it:
/// the process exited, or its number fell to the clearing level.
pub fn not_named(open: &AlertRecord, taken_at: DateTime<Utc>) -> Observation {
    Observation {
        host_id: open.alert.host_id.clone(),
        subject: open.subject.clone(),
        process: open.alert.process.clone(),
        holds: false,
        stays: false,
        value: 0.0,
        summary: open.alert.summary.clone(),
        at: taken_at,
    }
}

/// What the clock says of each host-offline rule on each host it covers.
pub fn offline(
    rules: &RuleSet,
    hosts: &[HostRecord],
    now: DateTime<Utc>,
) -> Vec<(usize, Observation)> {
    let mut seen = Vec::new();
    for (index, compiled) in rules.rules.iter().enumerate() {
        if !matches!(compiled.rule.spec.condition, AlertCondition::HostOffline) {
            continue;
        }
        for host in hosts
            .iter()
            .filter(|h| compiled.covers(&h.info.id, &h.info.hostname, &h.info.labels))
        {
            let holds = !crate::api::hosts::is_online(host, now);
            let quiet = (now - host.last_seen).num_seconds().max(0);
            seen.push((
                index,
                Observation {
                    host_id: host.info.id.clone(),
                    subject: String::new(),
                    process: None,
                    holds,
                    stays: holds,
                    value: quiet as f64,
                    summary: format!(
                        "{}: {} has sent nothing for {}",
                        compiled.rule.spec.name,
                        host.info.hostname,
                        humantime::format_duration(std::time::Duration::from_secs(quiet as u64))
                    ),
                    at: now,
                },
            ));
        }
    }
    seen
}

fn names(found: &[&ProcessSample]) -> String {
    let mut named: Vec<String> = found
        .iter()
        .take(NAMED)
        .map(|p| format!("{} (pid {})", p.name, p.pid))
        .collect();
    if found.len() > NAMED {
        named.push(format!("{} more", found.len() - NAMED));
    }
    named.join(", ")
}

pub fn process_value(p: &ProcessSample, metric: ProcessMetric) -> Option<f64> {
    match metric {
        ProcessMetric::CpuPercent => Some(f64::from(p.cpu_percent)),
        ProcessMetric::MemoryRssBytes => Some(p.memory_rss_bytes as f64),
        ProcessMetric::Threads => p.threads.map(f64::from),
        ProcessMetric::Handles => p.handles.map(f64::from),
    }
}

pub fn host_value(snapshot: &Snapshot, metric: HostMetric) -> Option<f64> {
    let meters = HostMeters::of(snapshot.load.as_ref());
    match metric {
        HostMetric::CpuPercent => meters.cpu_machine_percent,
        HostMetric::MemoryUsedBytes => meters.memory_used_bytes.map(|b| b as f64),
        HostMetric::MemoryUsedPercent => meters
            .memory_used_bytes
            .filter(|_| snapshot.host.memory_total_bytes > 0)
            .map(|b| b as f64 * 100.0 / snapshot.host.memory_total_bytes as f64),
        HostMetric::ProcessCount => Some(snapshot.processes.len() as f64),
    }
}

fn metric_name(metric: ProcessMetric) -> &'static str {
    match metric {
        ProcessMetric::CpuPercent => "CPU",
        ProcessMetric::MemoryRssBytes => "resident memory",
        ProcessMetric::Threads => "threads",
        ProcessMetric::Handles => "handles",
    }
}

fn host_metric_name(metric: HostMetric) -> &'static str {
    match metric {
        HostMetric::CpuPercent => "CPU",
        HostMetric::MemoryUsedBytes | HostMetric::MemoryUsedPercent => "memory in use",
        HostMetric::ProcessCount => "process count",
    }
}

fn bytes(b: f64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if b >= 1024.0 * MIB {
        format!("{:.1} GiB", b / (1024.0 * MIB))
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

fn show(metric: ProcessMetric, v: f64) -> String {
    match metric {
        ProcessMetric::CpuPercent => format!("{v:.0}%"),
        ProcessMetric::MemoryRssBytes => bytes(v),
        ProcessMetric::Threads | ProcessMetric::Handles => format!("{v:.0}"),
    }
}

fn show_host(metric: HostMetric, v: f64) -> String {
    match metric {
        HostMetric::CpuPercent | HostMetric::MemoryUsedPercent => format!("{v:.0}%"),
        HostMetric::MemoryUsedBytes => bytes(v),
        HostMetric::ProcessCount => format!("{v:.0}"),
    }
}
