//! Slack, Discord and ntfy: each gets the body its service reads, checked
//! at a local receiver, through the test button and through the queue.

use std::time::Duration;

use procmon_model::channels::DeliveryStatus;
use serde_json::json;

use super::receiver::Receiver;
use super::{make_channel, queue, test_button, wait_for};
use crate::common::spawn_app;

#[tokio::test]
async fn slack_gets_a_text_message() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let slack = make_channel(
        &app,
        json!({"name": "slack", "kind": {"type": "slack", "url": format!("{}/services/T0/B0/xyz", receiver.base)}}),
    )
    .await;
    let queued = queue(&app, "alert-s", &[("n-slack", &slack.id)]).await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/services/T0/B0/xyz");
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    let body = received[0].json();
    let object = body.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["text"]);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*[FIRING] critical: nginx down*\n"),
        "{text}"
    );
    assert!(text.contains(&queued[0].alert.summary), "{text}");
    assert!(text.contains(&queued[0].link), "{text}");
    wait_for(&app, "n-slack", Duration::from_secs(5), |d| {
        d.status == DeliveryStatus::Delivered
    })
    .await;
}

#[tokio::test]
async fn discord_gets_content_and_no_mentions() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let discord = make_channel(
        &app,
        json!({"name": "discord", "kind": {"type": "discord", "url": format!("{}/api/webhooks/1/tok", receiver.base)}}),
    )
    .await;
    let result = test_button(&app, &discord.id).await;
    assert!(result.ok, "{result:?}");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let body = received[0].json();
    let content = body["content"].as_str().unwrap();
    assert!(
        content.starts_with("**[FIRING] info: Test notification**\n"),
        "{content}"
    );
    assert!(content.contains("\"discord\""), "{content}");
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
}

#[tokio::test]
async fn ntfy_gets_plain_text_with_title_priority_tags_and_the_token() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let ntfy = make_channel(
        &app,
        json!({
            "name": "phone",
            "kind": {"type": "ntfy", "url": format!("{}/procmon-alerts", receiver.base)},
            "secret": "tk_ntfy_token_1",
        }),
    )
    .await;
    let queued = queue(&app, "alert-n", &[("n-ntfy", &ntfy.id)]).await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, "/procmon-alerts");
    assert_eq!(
        request.header("title"),
        Some("[FIRING] critical: nginx down")
    );
    assert_eq!(request.header("priority"), Some("5"));
    assert_eq!(request.header("tags"), Some("rotating_light"));
    assert_eq!(request.header("click"), Some(queued[0].link.as_str()));
    assert_eq!(
        request.header("authorization"),
        Some("Bearer tk_ntfy_token_1")
    );
    assert!(request
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = request.text();
    assert!(text.starts_with(&queued[0].alert.summary), "{text}");
    assert!(text.contains("Host: host-a"), "{text}");
    wait_for(&app, "n-ntfy", Duration::from_secs(5), |d| {
        d.status == DeliveryStatus::Delivered
    })
    .await;
}
