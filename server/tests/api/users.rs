//! Managing users over the API: admins list, add, remove and reset
//! passwords; viewers read but manage nothing; everyone may change their
//! own password, knowing the current one.

use crate::common::error_of;
use procmon_server::store::accounts::Role;
use serde_json::{json, Value};

use crate::common::{spawn_app, TestApp, TEST_USER};

async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = client.request(method.parse().unwrap(), format!("{}{path}", app.address));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn an_admin_adds_lists_and_removes_users() {
    let app = spawn_app().await;
    let admin = &app.client;
    let added = send(
        &app,
        admin,
        "POST",
        "/api/users/",
        Some(json!({"name": "vi", "role": "viewer", "password": "viewer-pass-1"})),
    )
    .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["name"], "vi");
    assert_eq!(added["role"], "viewer");
    assert_eq!(added["has_password"], true);
    assert!(added.get("password_hash").is_none());

    let again = send(
        &app,
        admin,
        "POST",
        "/api/users/",
        Some(json!({"name": "vi", "role": "admin", "password": "viewer-pass-2"})),
    )
    .await;
    assert_eq!(error_of(again, 409).await.error, "user_exists");
    for (name, password) in [("a b", "long-enough-1"), ("ok", "short")] {
        let bad = send(
            &app,
            admin,
            "POST",
            "/api/users/",
            Some(json!({"name": name, "role": "viewer", "password": password})),
        )
        .await;
        assert_eq!(error_of(bad, 422).await.error, "invalid_account", "{name}");
    }

    let list: Vec<Value> = send(&app, admin, "GET", "/api/users/", None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<_> = list.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", TEST_USER, "vi"]);

    let viewer = app.signed_in_client("vi", "viewer-pass-1").await;
    assert_eq!(
        send(&app, &viewer, "GET", "/api/hosts/", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&app, admin, "DELETE", "/api/users/vi", None)
            .await
            .status(),
        204
    );
    // Removed means signed out too.
    assert_eq!(
        send(&app, &viewer, "GET", "/api/hosts/", None)
            .await
            .status(),
        401
    );
    let gone = send(&app, admin, "DELETE", "/api/users/vi", None).await;
    assert_eq!(error_of(gone, 404).await.error, "unknown_user");
}

#[tokio::test]
async fn the_only_admin_cannot_be_removed() {
    let app = spawn_app().await;
    // The first-start admin and the test's admin: one may go, then not the other.
    assert_eq!(
        send(&app, &app.client, "DELETE", "/api/users/admin", None)
            .await
            .status(),
        204
    );
    let last = send(
        &app,
        &app.client,
        "DELETE",
        &format!("/api/users/{TEST_USER}"),
        None,
    )
    .await;
    assert_eq!(error_of(last, 409).await.error, "last_admin");
}

#[tokio::test]
async fn a_viewer_reads_but_manages_no_one() {
    let app = spawn_app().await;
    app.add_user("vi", Role::Viewer, "viewer-pass-1").await;
    let viewer = app.signed_in_client("vi", "viewer-pass-1").await;
    assert_eq!(
        send(&app, &viewer, "GET", "/api/hosts/", None)
            .await
            .status(),
        200
    );
    for (method, path, body) in [
        ("GET", "/api/users/".to_owned(), None),
        (
            "POST",
            "/api/users/".to_owned(),
            Some(json!({"name": "x", "role": "admin", "password": "password-x1"})),
        ),
        ("DELETE", format!("/api/users/{TEST_USER}"), None),
        (
            "PUT",
            format!("/api/users/{TEST_USER}/password"),
            Some(json!({"password": "taken-over-1"})),
        ),
    ] {
        let error = error_of(send(&app, &viewer, method, &path, body).await, 403).await;
        assert_eq!(error.error, "forbidden", "{method} {path}");
        assert!(error.message.contains("admin"), "{}", error.message);
    }
}

#[tokio::test]
async fn users_change_their_own_password_knowing_the_current_one() {
    let app = spawn_app().await;
    app.add_user("vi", Role::Viewer, "viewer-pass-1").await;
    let viewer = app.signed_in_client("vi", "viewer-pass-1").await;
    let other = app.signed_in_client("vi", "viewer-pass-1").await;
    let path = "/api/users/vi/password";
    let missing = send(
        &app,
        &viewer,
        "PUT",
        path,
        Some(json!({"password": "viewer-pass-2"})),
    )
    .await;
    assert_eq!(error_of(missing, 403).await.error, "current_password_wrong");
    let wrong = send(
        &app,
        &viewer,
        "PUT",
        path,
        Some(json!({"password": "viewer-pass-2", "current_password": "nope-nope"})),
    )
    .await;
    assert_eq!(error_of(wrong, 403).await.error, "current_password_wrong");
    let right = send(
        &app,
        &viewer,
        "PUT",
        path,
        Some(json!({"password": "viewer-pass-2", "current_password": "viewer-pass-1"})),
    )
    .await;
    assert_eq!(right.status(), 204);
    // This session goes on; the other one, maybe someone else's, ends.
    assert_eq!(
        send(&app, &viewer, "GET", "/api/hosts/", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&app, &other, "GET", "/api/hosts/", None)
            .await
            .status(),
        401
    );
    let old = app
        .sign_in_with(&crate::common::browser_like_client(), "vi", "viewer-pass-1")
        .await;
    assert_eq!(old.status(), 401);
    app.signed_in_client("vi", "viewer-pass-2").await;

    // An admin resets it without knowing it.
    let reset = send(
        &app,
        &app.client,
        "PUT",
        path,
        Some(json!({"password": "viewer-pass-3"})),
    )
    .await;
    assert_eq!(reset.status(), 204);
    assert_eq!(
        send(&app, &viewer, "GET", "/api/hosts/", None)
            .await
            .status(),
        401
    );
    app.signed_in_client("vi", "viewer-pass-3").await;
    let unknown = send(
        &app,
        &app.client,
        "PUT",
        "/api/users/nobody/password",
        Some(json!({"password": "whatever-1"})),
    )
    .await;
    assert_eq!(error_of(unknown, 404).await.error, "unknown_user");
}
