//! The channels API itself: who may do what, the checks a channel must
//! pass (with messages that say what is wrong), changes and deletion,
//! and that the secret is never answered.

use procmon_model::channels::{Channel, ChannelKind};
use procmon_model::ErrorBody;
use procmon_server::store::accounts::Role;
use serde_json::{json, Value};

use super::{make_channel, test_button};
use crate::common::{spawn_app, TestApp};

const SECRET: &str = "s3cr3t-never-answered";

async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = client.request(method.parse().unwrap(), format!("{}{path}", app.address));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The error of a refused request, which must have `status`.
fn refused(answer: (u16, String), status: u16) -> ErrorBody {
    assert_eq!(answer.0, status, "{}", answer.1);
    serde_json::from_str(&answer.1).unwrap()
}

async fn post_channel(app: &TestApp, spec: Value) -> (u16, String) {
    send(
        app,
        &app.client,
        "POST",
        "/api/alerts/channels/",
        Some(spec),
    )
    .await
}

#[tokio::test]
async fn bad_channels_are_refused_with_what_is_wrong() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "x", "kind": {"type": "webhook", "url": "ftp://example.com/x"}}),
            "not ftp://",
        ),
        (
            json!({"name": "x", "kind": {"type": "slack", "url": "hooks.slack.com/x"}}),
            "the URL is not valid",
        ),
        (
            json!({"name": " ", "kind": {"type": "ntfy", "url": "https://ntfy.sh/t"}}),
            "needs a name",
        ),
        (
            json!({"name": "x".repeat(201), "kind": {"type": "ntfy", "url": "https://ntfy.sh/t"}}),
            "longer than 200",
        ),
        (
            json!({"name": "m", "kind": {"type": "email", "smtp_host": "mail.example.com", "smtp_port": 587,
                   "security": "starttls", "from": "p@example.com", "to": []}}),
            "at least one recipient",
        ),
        (
            json!({"name": "m", "kind": {"type": "email", "smtp_host": "mail.example.com", "smtp_port": 587,
                   "security": "starttls", "from": "nobody", "to": ["ops@example.com"]}}),
            "from: \"nobody\" is not an e-mail address",
        ),
        (
            json!({"name": "m", "kind": {"type": "email", "smtp_host": "mail.example.com:25", "smtp_port": 25,
                   "security": "none", "from": "p@example.com", "to": ["ops@example.com"]}}),
            "is not a host name",
        ),
    ];
    for (spec, expected) in cases {
        let error = refused(post_channel(&app, spec.clone()).await, 422);
        assert_eq!(error.error, "invalid_channel");
        assert!(
            error.message.contains(expected),
            "{spec}: {}",
            error.message
        );
    }
    // Not the schema: a kind procmon does not know, a field that is not.
    let error = refused(
        post_channel(
            &app,
            json!({"name": "x", "kind": {"type": "pager", "url": "https://x"}}),
        )
        .await,
        422,
    );
    assert_eq!(error.error, "schema_mismatch");
    assert!(error.message.contains("pager"), "{}", error.message);
    let error = refused(
        post_channel(
            &app,
            json!({"name": "x", "kind": {"type": "webhook", "url": "https://x"}, "colour": 1}),
        )
        .await,
        422,
    );
    assert!(error.message.contains("colour"), "{}", error.message);
    assert!(app.state.channels.channels().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_channels_are_named_in_the_error() {
    let app = spawn_app().await;
    let spec = json!({"name": "x", "kind": {"type": "webhook", "url": "https://example.com/"}});
    for (method, path, body) in [
        ("PUT", "/api/alerts/channels/nope", Some(spec)),
        ("DELETE", "/api/alerts/channels/nope", None),
        ("POST", "/api/alerts/channels/nope/test", None),
    ] {
        let error = refused(send(&app, &app.client, method, path, body).await, 404);
        assert_eq!(error.error, "unknown_channel");
        assert!(error.message.contains("\"nope\""), "{}", error.message);
    }
    let error = refused(
        send(
            &app,
            &app.client,
            "GET",
            "/api/alerts/deliveries/?status=lost",
            None,
        )
        .await,
        400,
    );
    assert!(
        error
            .message
            .contains("pending, failing, delivered, given_up"),
        "{}",
        error.message
    );
    let error = refused(
        send(
            &app,
            &app.client,
            "GET",
            "/api/alerts/deliveries/?limit=0",
            None,
        )
        .await,
        400,
    );
    assert!(error.message.contains("1 to 1000"), "{}", error.message);
}

#[tokio::test]
async fn admins_change_channels_viewers_only_read_and_the_secret_is_never_answered() {
    let app = spawn_app().await;
    let made = make_channel(
        &app,
        json!({"name": "  hook  ", "kind": {"type": "webhook", "url": "https://hooks.example.com/T0/secret-path"}, "secret": SECRET}),
    )
    .await;
    assert_eq!(made.name, "hook");
    assert!(made.has_secret);

    // Every answer, to an admin or a viewer, is without the secret.
    app.add_user("vi", Role::Viewer, "viewer-pass-1").await;
    let viewer = app.signed_in_client("vi", "viewer-pass-1").await;
    let mut answers = Vec::new();
    for client in [&app.client, &viewer] {
        let (status, text) = send(&app, client, "GET", "/api/alerts/channels/", None).await;
        assert_eq!(status, 200);
        answers.push(text);
    }
    let change = json!({"name": "hook 2", "kind": {"type": "webhook", "url": "https://hooks.example.com/T0/other"}});
    let (status, text) = send(
        &app,
        &app.client,
        "PUT",
        &format!("/api/alerts/channels/{}", made.id),
        Some(change.clone()),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    answers.push(text.clone());
    for answer in &answers {
        assert!(!answer.contains(SECRET), "{answer}");
    }
    // Left out, the secret stays.
    let changed: Channel = serde_json::from_str(&text).unwrap();
    assert_eq!(changed.name, "hook 2");
    assert!(changed.has_secret);
    assert!(changed.updated_at >= made.updated_at);
    assert_eq!(changed.created_at, made.created_at);

    // The viewer sees the URL without its path, which can be a credential.
    let seen: Vec<Channel> = serde_json::from_str(&answers[1]).unwrap();
    assert_eq!(
        seen[0].kind,
        ChannelKind::Webhook {
            url: "https://hooks.example.com/".into()
        }
    );
    let full: Vec<Channel> = serde_json::from_str(&answers[0]).unwrap();
    assert_eq!(
        full[0].kind,
        ChannelKind::Webhook {
            url: "https://hooks.example.com/T0/secret-path".into()
        }
    );

    // A viewer changes nothing.
    for (method, path, body) in [
        (
            "POST",
            "/api/alerts/channels/".to_owned(),
            Some(change.clone()),
        ),
        (
            "PUT",
            format!("/api/alerts/channels/{}", made.id),
            Some(change.clone()),
        ),
        ("DELETE", format!("/api/alerts/channels/{}", made.id), None),
        (
            "POST",
            format!("/api/alerts/channels/{}/test", made.id),
            None,
        ),
    ] {
        let error = refused(send(&app, &viewer, method, &path, body).await, 403);
        assert!(error.message.contains("only an admin"), "{}", error.message);
    }
    let (status, _) = send(&app, &viewer, "GET", "/api/alerts/deliveries/", None).await;
    assert_eq!(status, 200);
    // Nobody signed in reads nothing.
    let (status, _) = send(&app, &app.anonymous(), "GET", "/api/alerts/channels/", None).await;
    assert_eq!(status, 401);
    let (status, _) = send(
        &app,
        &app.anonymous(),
        "GET",
        "/api/alerts/deliveries/",
        None,
    )
    .await;
    assert_eq!(status, 401);
    // Without the CSRF header, an admin's session changes nothing either.
    let bare = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let signed_in = bare
        .post(format!("{}/api/session/", app.address))
        .header("x-procmon-csrf", "1")
        .json(&json!({"name": crate::common::TEST_USER, "password": crate::common::TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 201);
    let error = refused(
        send(
            &app,
            &bare,
            "DELETE",
            &format!("/api/alerts/channels/{}", made.id),
            None,
        )
        .await,
        403,
    );
    assert_eq!(error.error, "csrf_header_missing");

    // An empty secret removes it; then deletion.
    let remove = json!({"name": "hook 2", "kind": {"type": "webhook", "url": "https://hooks.example.com/T0/other"}, "secret": ""});
    let (status, text) = send(
        &app,
        &app.client,
        "PUT",
        &format!("/api/alerts/channels/{}", made.id),
        Some(remove),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!serde_json::from_str::<Channel>(&text).unwrap().has_secret);
    let (status, _) = send(
        &app,
        &app.client,
        "DELETE",
        &format!("/api/alerts/channels/{}", made.id),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, text) = send(&app, &app.client, "GET", "/api/alerts/channels/", None).await;
    assert_eq!(text, "[]");
}

#[tokio::test]
async fn the_test_button_says_what_is_wrong_with_an_unreachable_channel() {
    let app = spawn_app().await;
    let port = super::closed_port();
    let hook = make_channel(
        &app,
        json!({"name": "dead", "kind": {"type": "webhook", "url": format!("http://127.0.0.1:{port}/x")}}),
    )
    .await;
    let result = test_button(&app, &hook.id).await;
    assert!(!result.ok);
    assert_eq!(
        result.error,
        Some(format!("connection refused by 127.0.0.1:{port}"))
    );
    assert!(result.elapsed_ms < 5000, "{result:?}");
}
