//! Stores an alert rule the way the API would, for the alerts bench's two
//! parts: version 1, made "now" by the bench.

use chrono::{DateTime, Utc};
use procmon_model::alerts::{AlertRule, AlertRuleSpec};
use procmon_server::startup::AppState;

/// Stores `spec` as rule `id`, made at `now`.
pub async fn store(state: &AppState, id: String, spec: AlertRuleSpec, now: DateTime<Utc>) {
    let rule = AlertRule {
        id,
        version: 1,
        created_at: now,
        updated_at: now,
        updated_by: "bench".into(),
        spec,
    };
    state
        .alerts
        .store()
        .create_rule(&rule)
        .await
        .expect("a rule");
}
