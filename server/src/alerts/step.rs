//! One alert's life, as a pure function: given the rule, the open alert
//! (if any) and what was just observed, what changes and who is told.
//! Everything about `for`, clearing (hysteresis), repeats and silences is
//! decided here, so it can be tested without a store or a clock.

use chrono::{DateTime, TimeDelta, Utc};
use procmon_model::alerts::{Alert, AlertProcess, AlertRule, AlertState};

use crate::store::alerts::AlertRecord;

/// What a snapshot (or the timer) says about one rule on one host (and
/// process).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub host_id: String,
    /// Empty, or the process's subject (`store::alerts::process_subject`).
    pub subject: String,
    pub process: Option<AlertProcess>,
    /// Whether the rule's condition holds (an alert begins).
    pub holds: bool,
    /// Whether an open alert stays open: for a threshold with a lower
    /// clearing level (hysteresis), the number is still above that level;
    /// otherwise the same as `holds`.
    pub stays: bool,
    pub value: f64,
    pub summary: String,
    /// When: the snapshot's `taken_at`, or the timer's now.
    pub at: DateTime<Utc>,
}

/// Who is to be told of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tell {
    Firing { repeat: bool },
    Resolved,
}

/// What to do with one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The alert as it is to be stored (`revision` the one it replaces).
    pub record: AlertRecord,
    /// Forget it (a pending alert that cleared).
    pub forget: bool,
    /// Tell the rule's channels (unless a silence holds, or the alert
    /// flaps: see [`super::flap`]).
    pub tell: Option<Tell>,
    /// This step is the firing itself (pending to firing): it counts
    /// toward flapping.
    pub fired: bool,
}

fn seconds(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

/// The next step of the open alert `open` (none: no alert open) of `rule`
/// after `seen`; none when nothing changes. `now` is the server's clock
/// (repeats count by it).
pub fn after_observation(
    rule: &AlertRule,
    open: Option<&AlertRecord>,
    seen: &Observation,
    now: DateTime<Utc>,
) -> Option<Step> {
    let spec = &rule.spec;
    match open {
        None if !seen.holds => None,
        None => {
            let mut record = AlertRecord {
                alert: Alert {
                    id: uuid::Uuid::new_v4().to_string(),
                    rule_id: rule.id.clone(),
                    rule_name: spec.name.clone(),
                    severity: spec.severity,
                    host_id: seen.host_id.clone(),
                    process: seen.process.clone(),
                    state: AlertState::Pending,
                    since: seen.at,
                    fired_at: None,
                    resolved_at: None,
                    value: seen.value,
                    summary: seen.summary.clone(),
                    silenced_until: None,
                    flapping: false,
                },
                subject: seen.subject.clone(),
                revision: 0,
                observed_at: seen.at,
                clear_since: None,
                notified_at: None,
            };
            let tell = (spec.for_seconds == 0).then(|| {
                fire(&mut record, seen.at);
                Tell::Firing { repeat: false }
            });
            Some(Step {
                record,
                forget: false,
                fired: tell.is_some(),
                tell,
            })
        }
        Some(open) if seen.at < open.observed_at => None,
        Some(open) => {
            let mut record = open.clone();
            record.observed_at = seen.at;
            match (open.alert.state, seen.stays) {
                (AlertState::Pending, true) => {
                    (seen.at - open.alert.since >= seconds(spec.for_seconds)).then(|| {
                        observed(&mut record, seen);
                        fire(&mut record, seen.at);
                        Step {
                            record,
                            forget: false,
                            tell: Some(Tell::Firing { repeat: false }),
                            fired: true,
                        }
                    })
                }
                (AlertState::Pending, false) => Some(Step {
                    record,
                    forget: true,
                    tell: None,
                    fired: false,
                }),
                (AlertState::Firing, true) => {
                    let cleared_before = open.clear_since.is_some();
                    record.clear_since = None;
                    let repeat = repeat_due(rule, open, now);
                    (cleared_before || repeat).then(|| {
                        observed(&mut record, seen);
                        Step {
                            record,
                            forget: false,
                            tell: repeat.then_some(Tell::Firing { repeat: true }),
                            fired: false,
                        }
                    })
                }
                (AlertState::Firing, false) => {
                    let clear_since = open.clear_since.unwrap_or(seen.at);
                    if seen.at - clear_since >= seconds(spec.clear_seconds) {
                        observed(&mut record, seen);
                        Some(resolve(record, seen.at))
                    } else if open.clear_since.is_none() {
                        record.clear_since = Some(clear_since);
                        Some(Step {
                            record,
                            forget: false,
                            tell: None,
                            fired: false,
                        })
                    } else {
                        None
                    }
                }
                (AlertState::Resolved, _) => None,
            }
        }
    }
}

/// The next step of `open` by the clock alone, at `now`, while its host is
/// online (so what was last observed still stands): a pending alert whose
/// `for` has run out fires, a firing one whose clearing has lasted the
/// rule's `clear_seconds` resolves, a repeat falls due, and one that fired
/// under a silence now over is told (unless it flaps: it is told when it
/// settles, see [`super::flap`]).
pub fn after_time(
    rule: &AlertRule,
    open: &AlertRecord,
    now: DateTime<Utc>,
    silenced: bool,
) -> Option<Step> {
    let spec = &rule.spec;
    let mut record = open.clone();
    match open.alert.state {
        AlertState::Pending if now - open.alert.since >= seconds(spec.for_seconds) => {
            fire(&mut record, now);
            Some(Step {
                record,
                forget: false,
                tell: Some(Tell::Firing { repeat: false }),
                fired: true,
            })
        }
        AlertState::Firing => match open.clear_since {
            Some(since) if now - since >= seconds(spec.clear_seconds) => Some(resolve(record, now)),
            Some(_) => None,
            None if open.notified_at.is_none() && !silenced && !open.alert.flapping => Some(Step {
                record,
                forget: false,
                tell: Some(Tell::Firing { repeat: false }),
                fired: false,
            }),
            None if repeat_due(rule, open, now) => Some(Step {
                record,
                forget: false,
                tell: Some(Tell::Firing { repeat: true }),
                fired: false,
            }),
            None => None,
        },
        _ => None,
    }
}

/// Whether a repeat is due; never while the alert flaps (nothing it says
/// is told then, and an untold repeat would stay due at every look).
fn repeat_due(rule: &AlertRule, open: &AlertRecord, now: DateTime<Utc>) -> bool {
    if open.alert.flapping {
        return false;
    }
    match (rule.spec.repeat_seconds, open.notified_at) {
        (Some(every), Some(told)) => now - told >= seconds(every),
        _ => false,
    }
}

fn observed(record: &mut AlertRecord, seen: &Observation) {
    record.alert.value = seen.value;
    record.alert.summary = seen.summary.clone();
    if seen.process.is_some() {
        record.alert.process = seen.process.clone();
    }
}

fn fire(record: &mut AlertRecord, at: DateTime<Utc>) {
    record.alert.state = AlertState::Firing;
    record.alert.fired_at = Some(at);
}

fn resolve(mut record: AlertRecord, at: DateTime<Utc>) -> Step {
    record.alert.state = AlertState::Resolved;
    record.alert.resolved_at = Some(at);
    record.clear_since = None;
    // Only those told it fired hear it resolve.
    let tell = record.notified_at.is_some().then_some(Tell::Resolved);
    Step {
        record,
        forget: false,
        tell,
        fired: false,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use procmon_model::alerts::{AlertCondition, AlertRuleSpec, ProcessMatch, Severity, TextMatch};

    pub(super) fn rule(for_seconds: u64, clear_seconds: u64, repeat: Option<u64>) -> AlertRule {
        AlertRule {
            id: "r".into(),
            version: 1,
            created_at: t(0),
            updated_at: t(0),
            updated_by: "admin".into(),
            spec: AlertRuleSpec {
                name: "nginx absent".into(),
                severity: Severity::Critical,
                hosts: vec![],
                host_labels: vec![],
                condition: AlertCondition::ProcessAbsent {
                    process: ProcessMatch {
                        name: Some(TextMatch::Equals("nginx".into())),
                        ..Default::default()
                    },
                },
                for_seconds,
                clear_seconds,
                repeat_seconds: repeat,
                channels: vec!["c".into()],
                enabled: true,
            },
        }
    }

    pub(super) fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    pub(super) fn seen(holds: bool, at: i64) -> Observation {
        Observation {
            host_id: "h".into(),
            subject: String::new(),
            process: None,
            holds,
            stays: holds,
            value: if holds { 0.0 } else { 1.0 },
            summary: "nginx absent on h".into(),
            at: t(at),
        }
    }

    /// Runs observations through the steps as the store would (each step
    /// stored, its revision one more), returning what was told, in order.
    fn run(rule: &AlertRule, observations: &[(bool, i64)]) -> (Vec<Tell>, Option<AlertRecord>) {
        let mut open: Option<AlertRecord> = None;
        let mut told = Vec::new();
        for &(holds, at) in observations {
            if let Some(step) = after_observation(rule, open.as_ref(), &seen(holds, at), t(at)) {
                let mut record = step.record;
                record.revision += 1;
                if let Some(tell) = step.tell {
                    if matches!(tell, Tell::Firing { .. }) {
                        record.notified_at = Some(t(at));
                    }
                    told.push(tell);
                }
                open =
                    (!step.forget && record.alert.state != AlertState::Resolved).then_some(record);
            }
        }
        (told, open)
    }

    #[test]
    fn fires_once_after_for_and_resolves_once() {
        let r = rule(10, 0, None);
        let (told, open) = run(
            &r,
            &[
                (true, 0),
                (true, 5),
                (true, 10),
                (true, 15),
                (false, 20),
                (false, 25),
            ],
        );
        assert_eq!(told, vec![Tell::Firing { repeat: false }, Tell::Resolved]);
        assert!(open.is_none());
    }

    #[test]
    fn a_flap_within_for_fires_nothing_and_leaves_nothing_open() {
        let r = rule(30, 0, None);
        let (told, open) = run(
            &r,
            &[
                (true, 0),
                (false, 5),
                (true, 10),
                (false, 15),
                (true, 20),
                (false, 25),
            ],
        );
        assert!(told.is_empty(), "{told:?}");
        assert!(open.is_none());
    }

    #[test]
    fn clearing_must_last_clear_seconds_so_a_flap_stays_one_alert() {
        let r = rule(0, 20, None);
        let (told, open) = run(
            &r,
            &[(true, 0), (false, 5), (true, 10), (false, 15), (true, 20)],
        );
        assert_eq!(told, vec![Tell::Firing { repeat: false }]);
        assert_eq!(open.unwrap().alert.state, AlertState::Firing);
        let (told, _) = run(&r, &[(true, 0), (false, 5), (false, 15), (false, 25)]);
        assert_eq!(told, vec![Tell::Firing { repeat: false }, Tell::Resolved]);
    }

    #[test]
    fn repeats_only_at_the_set_interval() {
        let r = rule(0, 0, Some(60));
        let steps: Vec<_> = (0..=30).map(|i| (true, i * 5)).collect();
        let (told, _) = run(&r, &steps);
        assert_eq!(
            told,
            vec![
                Tell::Firing { repeat: false },
                Tell::Firing { repeat: true },
                Tell::Firing { repeat: true },
            ]
        );
    }

    #[test]
    fn an_older_observation_changes_nothing() {
        let r = rule(0, 0, None);
        let (_, open) = run(&r, &[(true, 10)]);
        assert!(after_observation(&r, open.as_ref(), &seen(false, 5), t(11)).is_none());
    }

    #[test]
    fn the_clock_fires_a_pending_alert_and_tells_of_one_a_silence_held_back() {
        let r = rule(30, 0, None);
        let (_, open) = run(&r, &[(true, 0)]);
        let open = open.unwrap();
        assert!(after_time(&r, &open, t(29), false).is_none());
        let step = after_time(&r, &open, t(30), false).unwrap();
        assert_eq!(step.record.alert.state, AlertState::Firing);
        assert_eq!(step.tell, Some(Tell::Firing { repeat: false }));
        // Fired while silenced: nobody told, so the end of the silence tells.
        let mut firing = step.record;
        firing.revision += 1;
        assert!(after_time(&r, &firing, t(40), true).is_none());
        let told = after_time(&r, &firing, t(50), false).unwrap();
        assert_eq!(told.tell, Some(Tell::Firing { repeat: false }));
    }

    #[test]
    fn a_resolve_is_told_only_to_those_told_of_the_firing() {
        let r = rule(0, 0, None);
        let fired = after_observation(&r, None, &seen(true, 0), t(0)).unwrap();
        let mut record = fired.record;
        record.revision = 1;
        // Silenced when it fired: notified_at stays empty.
        let resolved = after_observation(&r, Some(&record), &seen(false, 5), t(5)).unwrap();
        assert_eq!(resolved.record.alert.state, AlertState::Resolved);
        assert_eq!(resolved.tell, None);
    }
}

/// Flap damping ([`super::flap`]) over the steps, with a store of every
/// alert kept, as `apply` and the timer use it.
#[cfg(test)]
mod flapping {
    use super::tests::{rule, seen, t};
    use super::*;
    use crate::alerts::flap::{self, FLAP_FIRINGS, FLAP_WINDOW};
    use crate::store::alerts::FlapHistory;

    /// Every alert stored, with the store's flapping mark beside it.
    #[derive(Default)]
    struct Kept {
        alerts: Vec<(AlertRecord, bool)>,
        /// What was told: the state, and whether the alert said it flaps.
        told: Vec<(AlertState, bool)>,
    }

    impl Kept {
        fn history(&self, since: DateTime<Utc>) -> FlapHistory {
            FlapHistory {
                firings: self
                    .alerts
                    .iter()
                    .filter(|(a, _)| a.alert.fired_at.is_some_and(|f| f >= since))
                    .count() as u32,
                flapping: self.alerts.iter().any(|(_, mark)| *mark),
            }
        }

        fn open(&self) -> Option<&AlertRecord> {
            self.alerts
                .iter()
                .map(|(a, _)| a)
                .find(|a| a.alert.state != AlertState::Resolved)
        }

        /// As `Alerts::apply` (damped, told, stored) with no silence.
        fn apply(&mut self, mut step: Step, now: DateTime<Utc>) {
            let history = step
                .fired
                .then(|| self.history(step.record.alert.fired_at.unwrap() - FLAP_WINDOW));
            flap::damp(&mut step, history);
            let mut record = step.record;
            if let Some(tell) = step.tell {
                if matches!(tell, Tell::Firing { .. }) {
                    record.notified_at = Some(now);
                }
                self.told.push((
                    match tell {
                        Tell::Firing { .. } => AlertState::Firing,
                        Tell::Resolved => AlertState::Resolved,
                    },
                    record.alert.flapping,
                ));
            }
            record.revision += 1;
            if record.alert.state == AlertState::Firing {
                // The store's TAKE_FLAP_MARK.
                for (a, mark) in &mut self.alerts {
                    if a.alert.id != record.alert.id {
                        *mark = false;
                    }
                }
            }
            self.alerts.retain(|(a, _)| a.alert.id != record.alert.id);
            if !step.forget {
                let mark = record.alert.flapping;
                self.alerts.push((record, mark));
            }
        }

        fn observe(&mut self, r: &AlertRule, holds: bool, at: i64) {
            let open = self.open().cloned();
            if let Some(step) = after_observation(r, open.as_ref(), &seen(holds, at), t(at)) {
                self.apply(step, t(at));
            }
        }

        /// As the timer's `settle_flaps`.
        fn tick(&mut self, now: i64) {
            let marked: Vec<AlertRecord> = self
                .alerts
                .iter()
                .filter(|(_, mark)| *mark)
                .map(|(a, _)| a.clone())
                .collect();
            for record in marked {
                if flap::settles(self.history(t(now) - FLAP_WINDOW)) {
                    self.apply(flap::settle(record), t(now));
                }
            }
        }

        /// `n` cycles of down for a minute, up again, every 6 minutes from
        /// `from`.
        fn cycles(&mut self, r: &AlertRule, from: i64, n: i64) {
            for i in 0..n {
                let at = from + i * 360;
                self.observe(r, true, at);
                self.tick(at + 1);
                self.observe(r, false, at + 60);
                self.tick(at + 61);
            }
        }
    }

    const FIRING: (AlertState, bool) = (AlertState::Firing, false);
    const RESOLVED: (AlertState, bool) = (AlertState::Resolved, false);
    const FLAPS: (AlertState, bool) = (AlertState::Firing, true);

    #[test]
    fn three_cycles_tell_each_the_fourth_tells_it_flaps_then_silence_until_a_quiet_hour() {
        assert_eq!(FLAP_FIRINGS, 4, "the cycles below are counted for 4");
        let r = rule(0, 0, None);
        let mut kept = Kept::default();
        kept.cycles(&r, 0, 3);
        assert_eq!(
            kept.told,
            [FIRING, RESOLVED, FIRING, RESOLVED, FIRING, RESOLVED]
        );
        kept.cycles(&r, 3 * 360, 1);
        assert_eq!(
            kept.told[6..],
            [FLAPS],
            "the 4th firing tells it flaps, once"
        );
        kept.cycles(&r, 4 * 360, 6);
        assert_eq!(
            kept.told.len(),
            7,
            "cycles 5 to 10 tell nothing: {:?}",
            kept.told
        );
        // Every alert is kept, fired and resolved, the 4th to 10th flapping.
        assert_eq!(kept.alerts.len(), 10);
        assert!(kept
            .alerts
            .iter()
            .all(|(a, _)| a.alert.state == AlertState::Resolved));
        assert_eq!(
            kept.alerts.iter().filter(|(a, _)| a.alert.flapping).count(),
            7
        );
        // The 10th fired at 3240; three firings (2520, 2880, 3240) are left
        // in the window only once 2160's leaves it.
        kept.tick(5760);
        assert_eq!(kept.told.len(), 7, "still 4 firings within the hour");
        kept.tick(5761);
        assert_eq!(kept.told[7..], [RESOLVED], "settled: told once, as it is");
        let (last, mark) = kept.alerts.last().unwrap();
        assert!(!last.alert.flapping && !mark);
        kept.tick(3240 + 60 + 3600);
        assert_eq!(kept.told.len(), 8, "settled once");
        // Settled: the next cycle is told as usual.
        kept.cycles(&r, 7000, 1);
        assert_eq!(kept.told[8..], [FIRING, RESOLVED]);
    }

    #[test]
    fn a_flap_that_settles_while_firing_tells_it_fires_and_its_resolve_later() {
        let r = rule(0, 0, None);
        let mut kept = Kept::default();
        kept.cycles(&r, 0, 4);
        assert_eq!(kept.told.last(), Some(&FLAPS));
        // Down for good from 1440: the 5th firing, silent.
        kept.observe(&r, true, 1440);
        assert_eq!(kept.told.len(), 7);
        // 360 leaves the window after 3960 (720, 1080, 1440 left): it
        // settles firing, told so.
        kept.tick(3960);
        assert_eq!(kept.told.len(), 7);
        kept.tick(3961);
        assert_eq!(kept.told[7..], [FIRING]);
        kept.observe(&r, false, 4700);
        assert_eq!(
            kept.told[8..],
            [RESOLVED],
            "told it fired, so told it resolved"
        );
    }

    #[test]
    fn a_flapping_alert_is_not_told_late_nor_repeated_by_the_clock() {
        let r = rule(0, 0, Some(60));
        let mut kept = Kept::default();
        kept.cycles(&r, 0, 4);
        kept.observe(&r, true, 1440);
        let open = kept.open().cloned().unwrap();
        assert!(open.alert.flapping && open.notified_at.is_none());
        // Unflapping, an alert nobody was told of is told by the clock.
        assert!(after_time(&r, &open, t(1500), false).is_none());
        let mut told_of = open.clone();
        told_of.notified_at = Some(t(1440));
        assert!(after_time(&r, &told_of, t(1600), false).is_none());
        told_of.alert.flapping = false;
        assert_eq!(
            after_time(&r, &told_of, t(1600), false).unwrap().tell,
            Some(Tell::Firing { repeat: true })
        );
    }
}
