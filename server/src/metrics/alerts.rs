//! The alerting part of `GET /metrics`: alerts open now by state and
//! severity (read from the store at scrape time, so every server of a
//! database says the same), how long evaluating a delivery against the
//! rules takes on this server, and what became of the notifications it
//! tried to send.
//!
//! A user watches these as they would Alertmanager's own: an alert count
//! that never moves, evaluations that fail or slow down, notifications
//! that are retried or given up are how a broken alert path shows before
//! an outage goes untold. No label names a rule, host or channel, so the
//! series stay fixed in number.

use std::time::Duration;

use procmon_model::alerts::{Alert, AlertState, Severity};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Bounds of the evaluation histogram, in seconds: a batch that changes
/// nothing a rule reads (microseconds) to a host's full re-evaluation
/// against a store that is struggling.
const EVALUATION_BUCKETS: [f64; 11] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
];
const OPEN_STATES: [AlertState; 2] = [AlertState::Pending, AlertState::Firing];
const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Open {
    state: &'static str,
    severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// What became of one attempt to send a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The channel took it.
    Delivered,
    /// It failed and will be tried again.
    Retrying,
    /// It failed for the last time.
    GivenUp,
}

impl SendOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::GivenUp => "given_up",
        }
    }
}

/// The alerting metrics, registered in the server's registry.
#[derive(Debug)]
pub struct AlertMetrics {
    open: Family<Open, Gauge>,
    evaluation: Histogram,
    evaluations: Family<Outcome, Counter>,
    notifications: Family<Outcome, Counter>,
}

impl AlertMetrics {
    /// Registers every alerting metric in `registry`, each at zero.
    pub fn register(registry: &mut Registry) -> Self {
        let open = Family::<Open, Gauge>::default();
        registry.register(
            "alerts_open",
            "Alerts pending or firing now, by state and severity, in the store every server of this database shares",
            open.clone(),
        );
        let evaluation = Histogram::new(EVALUATION_BUCKETS);
        registry.register_with_unit(
            "alert_evaluation",
            "Time to evaluate one stored snapshot or change batch against the alert rules, store writes included",
            Unit::Seconds,
            evaluation.clone(),
        );
        let evaluations = Family::<Outcome, Counter>::default();
        registry.register(
            "alert_evaluations",
            "Stored snapshots and change batches evaluated against the alert rules, by whether the evaluation finished",
            evaluations.clone(),
        );
        let notifications = Family::<Outcome, Counter>::default();
        registry.register(
            "alert_notifications",
            "Attempts to send an alert's notification from this server, by outcome: delivered, failed to be retried, or failed and given up",
            notifications.clone(),
        );
        // Every series exists from the start, so that `rate()` and
        // absence alerts on them work before the first event.
        for state in OPEN_STATES {
            for severity in SEVERITIES {
                open.get_or_create(&Open {
                    state: state.as_str(),
                    severity: severity.as_str(),
                })
                .set(0);
            }
        }
        for outcome in ["ok", "error"] {
            evaluations.get_or_create(&Outcome { outcome }).inc_by(0);
        }
        for outcome in [
            SendOutcome::Delivered,
            SendOutcome::Retrying,
            SendOutcome::GivenUp,
        ] {
            notifications
                .get_or_create(&Outcome {
                    outcome: outcome.label(),
                })
                .inc_by(0);
        }
        Self {
            open,
            evaluation,
            evaluations,
            notifications,
        }
    }

    /// Sets the open-alert gauges from the alerts open now.
    pub fn set_open(&self, alerts: &[Alert]) {
        for state in OPEN_STATES {
            for severity in SEVERITIES {
                let count = alerts
                    .iter()
                    .filter(|a| a.state == state && a.severity == severity)
                    .count();
                self.open
                    .get_or_create(&Open {
                        state: state.as_str(),
                        severity: severity.as_str(),
                    })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }

    /// Records one evaluation: whether it finished, and how long it took.
    pub fn evaluated(&self, finished: bool, took: Duration) {
        let outcome = if finished { "ok" } else { "error" };
        self.evaluations.get_or_create(&Outcome { outcome }).inc();
        self.evaluation.observe(took.as_secs_f64());
    }

    /// Counts one attempt to send a notification.
    pub fn sent(&self, outcome: SendOutcome) {
        self.notifications
            .get_or_create(&Outcome {
                outcome: outcome.label(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn alert(state: AlertState, severity: Severity) -> Alert {
        Alert {
            id: "a".into(),
            rule_id: "r".into(),
            rule_name: "rule".into(),
            severity,
            host_id: "h".into(),
            process: None,
            state,
            since: chrono::DateTime::UNIX_EPOCH,
            fired_at: None,
            resolved_at: None,
            value: 0.0,
            summary: String::new(),
            silenced_until: None,
            flapping: false,
        }
    }

    fn has(text: &str, line: &str) {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }

    #[test]
    fn open_alerts_are_counted_by_state_and_severity_and_recounted_each_time() {
        let metrics = Metrics::new();
        let text = metrics.encode(0);
        has(&text, "# TYPE procmon_alerts_open gauge");
        has(
            &text,
            "procmon_alerts_open{state=\"firing\",severity=\"info\"} 0",
        );
        metrics.alerts.set_open(&[
            alert(AlertState::Firing, Severity::Critical),
            alert(AlertState::Firing, Severity::Critical),
            alert(AlertState::Pending, Severity::Warning),
        ]);
        let text = metrics.encode(0);
        has(
            &text,
            "procmon_alerts_open{state=\"firing\",severity=\"critical\"} 2",
        );
        has(
            &text,
            "procmon_alerts_open{state=\"pending\",severity=\"warning\"} 1",
        );
        has(
            &text,
            "procmon_alerts_open{state=\"pending\",severity=\"critical\"} 0",
        );
        metrics.alerts.set_open(&[]);
        let text = metrics.encode(0);
        has(
            &text,
            "procmon_alerts_open{state=\"firing\",severity=\"critical\"} 0",
        );
    }

    #[test]
    fn evaluations_and_sends_are_counted_by_outcome() {
        let metrics = Metrics::new();
        metrics.alerts.evaluated(true, Duration::from_micros(300));
        metrics.alerts.evaluated(false, Duration::from_millis(3));
        metrics.alerts.sent(SendOutcome::Retrying);
        metrics.alerts.sent(SendOutcome::Retrying);
        metrics.alerts.sent(SendOutcome::GivenUp);
        let text = metrics.encode(0);
        has(&text, "# TYPE procmon_alert_evaluation_seconds histogram");
        has(&text, "procmon_alert_evaluation_seconds_count 2");
        has(
            &text,
            "procmon_alert_evaluation_seconds_bucket{le=\"0.0005\"} 1",
        );
        has(&text, "procmon_alert_evaluations_total{outcome=\"ok\"} 1");
        has(
            &text,
            "procmon_alert_evaluations_total{outcome=\"error\"} 1",
        );
        has(
            &text,
            "procmon_alert_notifications_total{outcome=\"delivered\"} 0",
        );
        has(
            &text,
            "procmon_alert_notifications_total{outcome=\"retrying\"} 2",
        );
        has(
            &text,
            "procmon_alert_notifications_total{outcome=\"given_up\"} 1",
        );
    }
}
