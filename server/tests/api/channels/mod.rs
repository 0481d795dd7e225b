//! Notification channels end to end: a real server sends to real local
//! receivers (HTTP servers in the test, a real SMTP server), through the
//! test button and through the queue the alerts fill.

mod api;
mod chat;
mod email;
pub mod receiver;
mod webhook;

use std::time::Duration;

use procmon_model::alerts::{Alert, AlertNotification, AlertState, Severity};
use procmon_model::channels::{Channel, ChannelTestResult, Delivery};
use procmon_server::store::alerts::{AlertRecord, AlertWrite, QueuedDelivery};
use serde_json::Value;

use crate::common::TestApp;

/// `POST /api/alerts/channels/` with `spec`, which must be made.
pub async fn make_channel(app: &TestApp, spec: Value) -> Channel {
    let response = app
        .client
        .post(format!("{}/api/alerts/channels/", app.address))
        .json(&spec)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `POST /api/alerts/channels/{id}/test`, which answers 200 either way.
pub async fn test_button(app: &TestApp, id: &str) -> ChannelTestResult {
    let response = app
        .client
        .post(format!("{}/api/alerts/channels/{id}/test", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `GET /api/alerts/deliveries/`.
pub async fn deliveries(app: &TestApp) -> Vec<Delivery> {
    let response = app.get("/api/alerts/deliveries/").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The delivery `id` as listed.
pub async fn delivery(app: &TestApp, id: &str) -> Delivery {
    deliveries(app)
        .await
        .into_iter()
        .find(|d| d.id == id)
        .unwrap_or_else(|| panic!("delivery {id} is not listed"))
}

/// `GET /api/alerts/channels/` and the one with `id`.
pub async fn channel(app: &TestApp, id: &str) -> Channel {
    let response = app.get("/api/alerts/channels/").await;
    assert_eq!(response.status(), 200);
    let channels: Vec<Channel> = response.json().await.unwrap();
    channels
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("channel {id} is not listed"))
}

/// Waits up to `within` for `check` to hold of the delivery `id`.
pub async fn wait_for(
    app: &TestApp,
    id: &str,
    within: Duration,
    check: impl Fn(&Delivery) -> bool,
) -> Delivery {
    let deadline = std::time::Instant::now() + within;
    loop {
        let d = delivery(app, id).await;
        if check(&d) {
            return d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivery {id} is still {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A firing notification of a new alert `alert_id`.
pub fn notification(id: &str, alert_id: &str) -> AlertNotification {
    let now = chrono::Utc::now();
    AlertNotification {
        id: id.into(),
        state: AlertState::Firing,
        repeat: false,
        link: "http://procmon.example/#host=host-a".into(),
        alert: Alert {
            id: alert_id.into(),
            rule_id: "rule-1".into(),
            rule_name: "nginx down".into(),
            severity: Severity::Critical,
            host_id: "host-a".into(),
            process: None,
            state: AlertState::Firing,
            since: now,
            fired_at: Some(now),
            resolved_at: None,
            value: 0.0,
            summary: format!("no nginx runs on host-a ({alert_id})"),
            silenced_until: None,
            flapping: false,
        },
    }
}

/// Queues, as the evaluator does when an alert fires, one notification
/// per `(delivery id, channel id)`, in the alert's own write; the
/// notifications, as queued.
pub async fn queue(
    app: &TestApp,
    alert_id: &str,
    deliveries: &[(&str, &str)],
) -> Vec<AlertNotification> {
    let first = notification("-", alert_id);
    let notifications: Vec<AlertNotification> = deliveries
        .iter()
        .map(|(id, _)| notification(id, alert_id))
        .collect();
    let write = AlertWrite {
        record: AlertRecord {
            alert: first.alert.clone(),
            subject: String::new(),
            revision: 0,
            observed_at: first.alert.since,
            clear_since: None,
            notified_at: Some(first.alert.since),
        },
        forget: false,
        deliveries: deliveries
            .iter()
            .zip(&notifications)
            .map(|((id, channel), n)| QueuedDelivery {
                id: (*id).into(),
                channel_id: (*channel).into(),
                body: serde_json::to_string(n).unwrap(),
            })
            .collect(),
    };
    let applied = app
        .state
        .alerts
        .store()
        .write_alerts(vec![write])
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    notifications
}

/// A port on 127.0.0.1 that nothing listens on (bound, then let go).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
