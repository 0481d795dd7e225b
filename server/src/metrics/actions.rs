//! Actions on processes in `GET /metrics`: how many operators asked for,
//! by kind, and the results agents reported to this server, by outcome.
//! A result that never comes shows as requests outgrowing results. No
//! label names a host, process or user, so the series stay fixed in
//! number.

use procmon_model::actions::{ActionKind, ActionOutcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The outcomes a report can have (pending and delivered are not
/// reported).
const REPORTED: [ActionOutcome; 3] = [
    ActionOutcome::Done,
    ActionOutcome::Refused,
    ActionOutcome::Failed,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

fn outcome_label(outcome: ActionOutcome) -> &'static str {
    match outcome {
        ActionOutcome::Pending => "pending",
        ActionOutcome::Delivered => "delivered",
        ActionOutcome::Done => "done",
        ActionOutcome::Refused => "refused",
        ActionOutcome::Failed => "failed",
    }
}

/// The action metrics, registered in the server's registry.
#[derive(Debug)]
pub struct ActionMetrics {
    requested: Family<Kind, Counter>,
    results: Family<Outcome, Counter>,
}

impl ActionMetrics {
    /// Registers every action metric in `registry`, each at zero.
    pub fn register(registry: &mut Registry) -> Self {
        let requested = Family::<Kind, Counter>::default();
        registry.register(
            "actions_requested",
            "Actions on processes that operators asked this server for, by kind",
            requested.clone(),
        );
        let results = Family::<Outcome, Counter>::default();
        registry.register(
            "action_results",
            "Results of actions on processes that agents reported to this server, by outcome: done, refused (by the agent's checks) or failed",
            results.clone(),
        );
        // Every series exists from the start, so that `rate()` works
        // before the first action.
        for kind in ActionKind::ALL {
            requested
                .get_or_create(&Kind {
                    kind: kind.as_str(),
                })
                .inc_by(0);
        }
        for outcome in REPORTED {
            results
                .get_or_create(&Outcome {
                    outcome: outcome_label(outcome),
                })
                .inc_by(0);
        }
        Self { requested, results }
    }

    /// Counts one action asked for.
    pub fn requested(&self, kind: ActionKind) {
        self.requested
            .get_or_create(&Kind {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Counts one result recorded.
    pub fn reported(&self, outcome: ActionOutcome) {
        self.results
            .get_or_create(&Outcome {
                outcome: outcome_label(outcome),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn has(text: &str, line: &str) {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }

    #[test]
    fn requests_are_counted_by_kind_and_results_by_outcome() {
        let metrics = Metrics::new();
        let text = metrics.encode(0);
        has(&text, "procmon_actions_requested_total{kind=\"kill\"} 0");
        has(&text, "procmon_action_results_total{outcome=\"refused\"} 0");
        metrics.actions.requested(ActionKind::Kill);
        metrics.actions.requested(ActionKind::Kill);
        metrics.actions.reported(ActionOutcome::Done);
        let text = metrics.encode(0);
        has(&text, "procmon_actions_requested_total{kind=\"kill\"} 2");
        has(
            &text,
            "procmon_actions_requested_total{kind=\"terminate\"} 0",
        );
        has(&text, "procmon_action_results_total{outcome=\"done\"} 1");
    }
}
