//! Flap damping: an alert that fires again and again tells people once
//! that it flaps, then nothing until it settles, rather than a firing and
//! a resolve each time (flap detection as Nagios and Zabbix have it, by
//! count of firings).
//!
//! The definition, made here only: an alert's rule, host and subject
//! *flap* when its alerts fired at least [`FLAP_FIRINGS`] times within
//! [`FLAP_WINDOW`], counting the firing at hand. A rule's `for_seconds`
//! and `clear_seconds` absorb flaps shorter than they are; this catches a
//! process that crashes and is restarted every few minutes, each time one
//! alert that fires and resolves.
//!
//! - The firing that makes it flap is told once, as a `firing`
//!   notification whose alert says `flapping`.
//! - While it flaps, its alerts are raised, fired and resolved, stored and
//!   shown as ever (with `flapping`), but tell nobody, as under a silence.
//! - It settles once fewer than [`FLAP_FIRINGS`] firings remain within the
//!   window (so at the latest a whole window after its last change): one
//!   notification then tells the state it is in, firing or resolved. A
//!   firing that comes when too few remain is told as usual, and so
//!   settles it as well.
//!
//! Nothing of this lives in a server's memory: firings are counted in the
//! store (resolved alerts are kept for history's retention), and whether
//! a rule, host and subject flaps is a mark on its newest fired alert
//! there, which a newer firing takes over and settling clears (both
//! compare-and-swap writes, so with several servers each notice is sent
//! once).

use chrono::{DateTime, TimeDelta, Utc};
use procmon_model::alerts::AlertState;

use super::rules::RuleSet;
use super::step::{Step, Tell};
use super::Alerts;
use crate::store::alerts::{AlertRecord, FlapHistory};
use crate::store::StoreResult;

/// Firings within [`FLAP_WINDOW`], the one at hand counted, that make an
/// alert flap; with fewer left in the window it settles.
pub const FLAP_FIRINGS: u32 = 4;

/// The span firings are counted over.
pub const FLAP_WINDOW: TimeDelta = TimeDelta::hours(1);

/// At a firing, with `history` its rule, host and subject's firings within
/// the window before it: whether the alert flaps, and whether its firing
/// is told (as the notice that it begins to flap, or as usual).
pub fn at_firing(history: FlapHistory) -> (bool, bool) {
    let firings = history.firings.saturating_add(1);
    if firings >= FLAP_FIRINGS {
        (true, !history.flapping)
    } else {
        (false, true)
    }
}

/// Damps `step` before it is stored: a firing (with `history`, its
/// firings within the window before it) is marked flapping or not and told
/// only as [`at_firing`] says; any other step of a flapping alert tells
/// nothing.
pub fn damp(step: &mut Step, history: Option<FlapHistory>) {
    match history {
        Some(history) if step.fired => {
            let (flapping, told) = at_firing(history);
            step.record.alert.flapping = flapping;
            if !told {
                step.tell = None;
            }
        }
        _ if step.record.alert.flapping => step.tell = None,
        _ => {}
    }
}

/// Whether an alert that flaps settles, with `history` its firings within
/// the window up to now.
pub fn settles(history: FlapHistory) -> bool {
    history.firings < FLAP_FIRINGS
}

/// The step that settles `record`: no longer flapping, and its state told.
pub fn settle(mut record: AlertRecord) -> Step {
    record.alert.flapping = false;
    let tell = match record.alert.state {
        AlertState::Firing => Some(Tell::Firing { repeat: false }),
        AlertState::Resolved => Some(Tell::Resolved),
        AlertState::Pending => None,
    };
    Step {
        record,
        forget: false,
        tell,
        fired: false,
    }
}

/// The start of the window a firing or a settling at `at` counts in.
fn window_before(at: DateTime<Utc>) -> DateTime<Utc> {
    at - FLAP_WINDOW
}

impl Alerts {
    /// [`damp`]s `step`, counting a firing's history in the store.
    pub(super) async fn damp(&self, step: &mut Step) -> StoreResult<()> {
        let history = if step.fired {
            let record = &step.record;
            let at = record.alert.fired_at.unwrap_or(record.observed_at);
            let history = self
                .store
                .flap_history(
                    &record.alert.rule_id,
                    &record.alert.host_id,
                    &record.subject,
                    window_before(at),
                )
                .await?;
            Some(history)
        } else {
            None
        };
        damp(step, history);
        Ok(())
    }

    /// Settles every flapping alert of `rules` that no longer flaps at
    /// `now`; how many were settled. (Those of a rule not evaluated now,
    /// disabled or deleted, keep their mark.)
    pub(super) async fn settle_flaps(
        &self,
        rules: &RuleSet,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        let mut steps = Vec::new();
        for record in self.store.flapping_alerts().await? {
            let Some(compiled) = rules
                .rules
                .iter()
                .find(|r| r.rule.id == record.alert.rule_id)
            else {
                continue;
            };
            let history = self
                .store
                .flap_history(
                    &record.alert.rule_id,
                    &record.alert.host_id,
                    &record.subject,
                    window_before(now),
                )
                .await?;
            if settles(history) {
                steps.push((settle(record), compiled));
            }
        }
        self.apply(steps, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(firings: u32, flapping: bool) -> FlapHistory {
        FlapHistory { firings, flapping }
    }

    #[test]
    fn the_firing_that_reaches_the_count_flaps_and_is_told_once() {
        assert_eq!(at_firing(history(FLAP_FIRINGS - 2, false)), (false, true));
        assert_eq!(at_firing(history(FLAP_FIRINGS - 1, false)), (true, true));
        assert_eq!(at_firing(history(FLAP_FIRINGS - 1, true)), (true, false));
        assert_eq!(at_firing(history(40, true)), (true, false));
        // Marked, but too few firings left: a firing told as usual settles it.
        assert_eq!(at_firing(history(1, true)), (false, true));
    }

    #[test]
    fn it_settles_with_fewer_than_the_count_left() {
        assert!(!settles(history(FLAP_FIRINGS, true)));
        assert!(settles(history(FLAP_FIRINGS - 1, true)));
        assert!(settles(history(0, true)));
    }
}
