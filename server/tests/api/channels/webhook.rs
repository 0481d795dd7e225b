//! The webhook: a queued notification arrives once, signed; a receiver
//! that cannot be reached is retried with backoff, its error shown, and
//! holds up no other channel.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use procmon_model::alerts::AlertNotification;
use procmon_model::channels::DeliveryStatus;
use procmon_server::clock::{Clock, ManualClock};
use serde_json::json;
use sha2::Sha256;

use super::receiver::{Received, Receiver};
use super::{channel, closed_port, delivery, make_channel, queue, test_button, wait_for};
use crate::common::{metric, spawn_app, spawn_app_with_clock};

const SECRET: &str = "whsec-7f3a9c1e-do-not-show";

/// Checks the request's signature as a receiver would: the HMAC-SHA256 of
/// `<timestamp>.<body>` keyed with the secret, and a fresh timestamp.
fn assert_signed(request: &Received, secret: &str) {
    let timestamp = request
        .header("x-procmon-timestamp")
        .expect("x-procmon-timestamp");
    let signature = request
        .header("x-procmon-signature")
        .expect("x-procmon-signature");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature, format!("sha256={expected}"));
    let sent: i64 = timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent).abs() < 60, "{sent}");
}

#[tokio::test]
async fn a_queued_notification_reaches_the_webhook_once_signed() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let hook = make_channel(
        &app,
        json!({
            "name": "ops hook",
            "kind": {"type": "webhook", "url": format!("{}/hooks/procmon", receiver.base)},
            "secret": SECRET,
        }),
    )
    .await;
    assert!(hook.has_secret);
    let queued = queue(&app, "alert-1", &[("n-1", &hook.id)]).await;

    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request.path, "/hooks/procmon");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_signed(request, SECRET);
    let body: AlertNotification = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, queued[0]);
    assert_eq!(body.id, "n-1");

    let done = wait_for(&app, "n-1", Duration::from_secs(5), |d| {
        d.status == DeliveryStatus::Delivered
    })
    .await;
    assert_eq!(done.attempts, 1);
    assert_eq!(done.channel_name.as_deref(), Some("ops hook"));
    assert!(done.last_error.is_none());
    let health = channel(&app, &hook.id).await.health;
    assert_eq!(health.failing, 0);
    assert!(health.last_success_at.is_some());
    // Three more of the worker's rounds send nothing again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn the_test_button_sends_a_signed_notification_and_says_how_it_went() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let hook = make_channel(
        &app,
        json!({
            "name": "hook",
            "kind": {"type": "webhook", "url": format!("{}/in", receiver.base)},
            "secret": SECRET,
        }),
    )
    .await;
    let result = test_button(&app, &hook.id).await;
    assert!(result.ok, "{result:?}");
    assert_eq!(result.error, None);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_signed(&received[0], SECRET);
    let body: AlertNotification = serde_json::from_value(received[0].json()).unwrap();
    assert_eq!(body.id, result.notification_id);
    assert!(
        body.alert.summary.contains("test"),
        "{}",
        body.alert.summary
    );
    assert!(body.link.starts_with("http://127.0.0.1:"), "{}", body.link);

    // A receiver that answers an error: the answer says so, with its words.
    receiver.answer(503);
    let result = test_button(&app, &hook.id).await;
    assert!(!result.ok);
    let error = result.error.unwrap();
    assert!(error.contains("503"), "{error}");
    assert!(error.contains("down for maintenance"), "{error}");
    assert!(
        !error.contains("/in"),
        "the URL's path is not shown: {error}"
    );

    // No secret: sent unsigned, still with the timestamp.
    let unsigned = make_channel(
        &app,
        json!({"name": "plain", "kind": {"type": "webhook", "url": format!("{}/plain", receiver.base)}}),
    )
    .await;
    receiver.answer(200);
    assert!(test_button(&app, &unsigned.id).await.ok);
    let last = receiver.received().pop().unwrap();
    assert_eq!(last.path, "/plain");
    assert!(last.header("x-procmon-signature").is_none());
    assert!(last.header("x-procmon-timestamp").is_some());
}

#[tokio::test]
async fn an_unreachable_webhook_is_retried_with_backoff_shows_its_error_and_holds_up_no_one() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(Some(clock.clone()), |_| {}).await;
    let receiver = Receiver::start().await;
    let port = closed_port();
    let dead = make_channel(
        &app,
        json!({"name": "dead", "kind": {"type": "webhook", "url": format!("http://127.0.0.1:{port}/hook")}}),
    )
    .await;
    let alive = make_channel(
        &app,
        json!({"name": "alive", "kind": {"type": "webhook", "url": format!("{}/hook", receiver.base)}}),
    )
    .await;
    queue(
        &app,
        "alert-1",
        &[("to-dead", &dead.id), ("to-alive", &alive.id)],
    )
    .await;
    // The queue stamps deliveries with the system clock; the server's
    // clock, which the worker goes by, is moved past that.
    clock.set(chrono::Utc::now() + chrono::TimeDelta::seconds(1));
    let start = clock.now();

    let failing = wait_for(&app, "to-dead", Duration::from_secs(10), |d| {
        d.attempts == 1
    })
    .await;
    assert_eq!(failing.status, DeliveryStatus::Failing);
    let expected = format!("connection refused by 127.0.0.1:{port}");
    assert_eq!(failing.last_error.as_deref(), Some(expected.as_str()));
    assert_eq!(
        failing.next_attempt_at,
        Some(start + chrono::TimeDelta::seconds(10))
    );
    // The other channel's notification went at once.
    let sent = delivery(&app, "to-alive").await;
    assert_eq!(sent.status, DeliveryStatus::Delivered);
    assert_eq!(receiver.received().len(), 1);
    let health = channel(&app, &dead.id).await.health;
    assert_eq!(health.failing, 1);
    assert_eq!(health.last_error.as_deref(), Some(expected.as_str()));
    assert!(health.last_success_at.is_none());

    // Not tried again before its time...
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(delivery(&app, "to-dead").await.attempts, 1);
    // ...and once it comes, tried again, then twice as long to wait.
    clock.advance(chrono::TimeDelta::seconds(10));
    let again = wait_for(&app, "to-dead", Duration::from_secs(10), |d| {
        d.attempts == 2
    })
    .await;
    assert_eq!(
        again.next_attempt_at,
        Some(start + chrono::TimeDelta::seconds(10 + 20))
    );
    assert_eq!(channel(&app, &dead.id).await.health.failing, 2);

    // A day later, the next failure gives up, and says so.
    clock.advance(chrono::TimeDelta::hours(25));
    // Sessions age by the server's clock too: a day idle ended this one.
    let signed_in = app
        .sign_in_with(
            &app.client,
            crate::common::TEST_USER,
            crate::common::TEST_PASSWORD,
        )
        .await;
    assert_eq!(signed_in.status(), 201);
    let given_up = wait_for(&app, "to-dead", Duration::from_secs(10), |d| {
        d.status == DeliveryStatus::GivenUp
    })
    .await;
    assert_eq!(given_up.attempts, 3);
    assert_eq!(given_up.next_attempt_at, None);
    assert_eq!(
        given_up.last_error.as_deref(),
        Some(format!("given up: {expected}").as_str())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(delivery(&app, "to-dead").await.attempts, 3);
    // And /metrics counted each attempt by how it went.
    for (outcome, count) in [("delivered", 1.0), ("retrying", 2.0), ("given_up", 1.0)] {
        let series = format!("procmon_alert_notifications_total{{outcome=\"{outcome}\"}}");
        assert_eq!(metric(&app, &series).await, count, "{series}");
    }
}

#[tokio::test]
async fn a_notification_for_a_deleted_channel_is_given_up_visibly() {
    let app = spawn_app().await;
    queue(&app, "alert-1", &[("orphan", "no-such-channel")]).await;
    let d = wait_for(&app, "orphan", Duration::from_secs(10), |d| {
        d.status == DeliveryStatus::GivenUp
    })
    .await;
    let error = d.last_error.unwrap();
    assert!(
        error.contains("\"no-such-channel\" does not exist"),
        "{error}"
    );
}
