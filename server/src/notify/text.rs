//! What a notification says to people, for the channels that show text
//! (all but the webhook, which gets the notification's JSON).

use chrono::Utc;
use procmon_model::alerts::{Alert, AlertNotification, AlertState, Severity};

/// One line: state, severity and the rule, e.g.
/// `[FIRING] critical: nginx down`.
pub fn title(n: &AlertNotification) -> String {
    let state = match (n.state, n.repeat) {
        (AlertState::Resolved, _) => "RESOLVED",
        // The one notice a flapping alert sends until it settles.
        _ if n.alert.flapping => "FLAPPING",
        (_, true) => "STILL FIRING",
        _ => "FIRING",
    };
    format!(
        "[{state}] {}: {}",
        n.alert.severity.as_str(),
        n.alert.rule_name
    )
}

/// The alert's summary, where, since when, and the link to the page.
pub fn body(n: &AlertNotification) -> String {
    let alert = &n.alert;
    let mut text = format!("{}\nHost: {}", alert.summary, alert.host_id);
    if let Some(process) = &alert.process {
        text += &format!("\nProcess: {} (pid {})", process.name, process.pid);
    }
    text += &format!("\nSince: {}", alert.since.to_rfc3339());
    if let Some(resolved) = alert.resolved_at {
        text += &format!("\nResolved: {}", resolved.to_rfc3339());
    }
    if !n.link.is_empty() {
        text += &format!("\n{}", n.link);
    }
    text
}

/// The notification the test button sends: a made-up alert that says it
/// is a test, with a fresh id.
pub fn test_notification(channel_name: &str, link: &str) -> AlertNotification {
    let now = Utc::now();
    let id = format!("test-{}", uuid::Uuid::new_v4());
    AlertNotification {
        id: id.clone(),
        state: AlertState::Firing,
        repeat: false,
        link: link.to_owned(),
        alert: Alert {
            id,
            rule_id: "test".into(),
            rule_name: "Test notification".into(),
            severity: Severity::Info,
            host_id: "procmon".into(),
            process: None,
            state: AlertState::Firing,
            since: now,
            fired_at: Some(now),
            resolved_at: None,
            value: 0.0,
            summary: format!(
                "A test of the channel {channel_name:?} from procmon: if you read this, it works."
            ),
            silenced_until: None,
            flapping: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_says_firing_repeated_flapping_or_resolved() {
        let mut n = test_notification("hook", "");
        assert_eq!(title(&n), "[FIRING] info: Test notification");
        n.repeat = true;
        assert_eq!(title(&n), "[STILL FIRING] info: Test notification");
        n.alert.flapping = true;
        assert_eq!(title(&n), "[FLAPPING] info: Test notification");
        n.state = AlertState::Resolved;
        assert_eq!(title(&n), "[RESOLVED] info: Test notification");
    }
}
