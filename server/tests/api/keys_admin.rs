//! Admins manage agent keys, the enrollment secret and hosts over the API
//! (as the page does): keys are shown once and never listed, revoked keys
//! are refused, viewers and strangers are turned away, and every change
//! needs the CSRF header.

use procmon_model::{AgentKeyInfo, CreatedAgentKey, EnrollResponse, EnrollSecret, ErrorBody};
use procmon_server::store::accounts::Role;
use serde_json::{json, Value};

use crate::common::{
    browser_like_client, sample_snapshot, spawn_app, TestApp, TEST_PASSWORD, TEST_USER,
};

fn url(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.address)
}

async fn make_key(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(url(app, "/api/keys/"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn list_keys(app: &TestApp) -> Vec<AgentKeyInfo> {
    let response = app.client.get(url(app, "/api/keys/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `POST /api/processes/` of a small snapshot of `host`, sent with `key`.
async fn send_as(app: &TestApp, key: &str, host: &str) -> u16 {
    app.anonymous()
        .post(url(app, "/api/processes/"))
        .bearer_auth(key)
        .json(&sample_snapshot(host, 2))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn enroll(app: &TestApp, secret: &str, host: &str) -> reqwest::Response {
    app.anonymous()
        .post(url(app, "/api/enroll/"))
        .json(&json!({"enroll_secret": secret, "host_id": host, "hostname": host}))
        .send()
        .await
        .unwrap()
}

async fn error_kind(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: ErrorBody = response.json().await.expect("an ErrorBody");
    (status, body.error)
}

#[tokio::test]
async fn an_admin_makes_a_key_that_works_for_its_host_and_is_never_listed() {
    let app = spawn_app().await;
    let response = make_key(&app, json!({"host_id": "web-9", "label": "rack 3"})).await;
    assert_eq!(response.status(), 201);
    let made: CreatedAgentKey = response.json().await.unwrap();
    assert!(made.key.starts_with(&format!("pmk_{}_", made.record.id)));
    assert_eq!(made.record.host_id.as_deref(), Some("web-9"));
    assert_eq!(made.record.label, "rack 3");
    assert_eq!(made.record.revoked_at, None);

    assert_eq!(send_as(&app, &made.key, "web-9").await, 201);
    assert_eq!(send_as(&app, &made.key, "web-10").await, 403);

    // The list has the record and no secret, in any field.
    let listed = app
        .client
        .get(url(&app, "/api/keys/"))
        .send()
        .await
        .unwrap();
    let text = listed.text().await.unwrap();
    let secret = made.key.rsplit('_').next().unwrap();
    assert!(!text.contains(secret), "the list shows a key: {text}");
    let keys: Vec<Value> = serde_json::from_str(&text).unwrap();
    let record = keys
        .iter()
        .find(|k| k["id"] == made.record.id.as_str())
        .expect("the new key is listed");
    let mut fields: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["created_at", "host_id", "id", "label", "revoked_at"]
    );

    // Without a host or label: bound by its first snapshot, labelled with
    // who made it.
    let unbound: CreatedAgentKey = make_key(&app, json!({})).await.json().await.unwrap();
    assert_eq!(unbound.record.host_id, None);
    assert_eq!(unbound.record.label, format!("made by {TEST_USER}"));
    assert_eq!(send_as(&app, &unbound.key, "db-1").await, 201);
    assert_eq!(send_as(&app, &unbound.key, "db-2").await, 403);
    let bound = list_keys(&app).await;
    let bound = bound.iter().find(|k| k.id == unbound.record.id).unwrap();
    assert_eq!(bound.host_id.as_deref(), Some("db-1"));
}

#[tokio::test]
async fn bad_key_requests_are_refused_with_a_reason() {
    let app = spawn_app().await;
    for body in [
        json!({"host_id": " web "}),
        json!({"host_id": ""}),
        json!({"host_id": "h".repeat(257)}),
        json!({"label": "l".repeat(257)}),
        json!({"host": "web"}),
    ] {
        let (status, _) = error_kind(make_key(&app, body.clone()).await).await;
        assert_eq!(status, 422, "{body}");
    }
    let (status, kind) = error_kind(
        app.client
            .post(url(&app, "/api/keys/"))
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (400, "invalid_json"));
    assert_eq!(list_keys(&app).await.len(), 1, "only spawn_app's own key");
}

#[tokio::test]
async fn a_revoked_key_is_refused_and_cannot_be_revoked_twice() {
    let app = spawn_app().await;
    let made: CreatedAgentKey = make_key(&app, json!({"host_id": "web-1"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(send_as(&app, &made.key, "web-1").await, 201);

    let revoke = |id: String| {
        let client = app.client.clone();
        let address = app.address.clone();
        async move {
            client
                .delete(format!("{address}/api/keys/{id}"))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(revoke(made.record.id.clone()).await.status(), 204);
    assert_eq!(send_as(&app, &made.key, "web-1").await, 401);
    let listed = list_keys(&app).await;
    let record = listed.iter().find(|k| k.id == made.record.id).unwrap();
    assert!(record.revoked_at.is_some());

    let (status, kind) = error_kind(revoke(made.record.id.clone()).await).await;
    assert_eq!((status, kind.as_str()), (404, "unknown_key"));
    let (status, _) = error_kind(revoke("nothing".into()).await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn rotating_the_enrollment_secret_answers_a_working_one_and_retires_the_old() {
    let app = spawn_app().await;
    let rotate = || app.client.post(url(&app, "/api/enroll-secret/")).send();
    let response = rotate().await.unwrap();
    assert_eq!(response.status(), 201);
    let first: EnrollSecret = response.json().await.unwrap();
    assert!(first.enroll_secret.starts_with("pme_"));
    let enrolled = enroll(&app, &first.enroll_secret, "new-1").await;
    assert_eq!(enrolled.status(), 201);
    let enrolled: EnrollResponse = enrolled.json().await.unwrap();
    assert_eq!(send_as(&app, &enrolled.key, "new-1").await, 201);

    let second: EnrollSecret = rotate().await.unwrap().json().await.unwrap();
    assert_ne!(second.enroll_secret, first.enroll_secret);
    assert_eq!(
        enroll(&app, &first.enroll_secret, "new-2").await.status(),
        401
    );
    assert_eq!(
        enroll(&app, &second.enroll_secret, "new-2").await.status(),
        201
    );
    // Keys already handed out keep working.
    assert_eq!(send_as(&app, &enrolled.key, "new-1").await, 201);
}

#[tokio::test]
async fn removing_a_host_deletes_its_history_and_stops_its_keys() {
    let app = spawn_app().await;
    let key_x = app.key_for("host-x").await;
    for _ in 0..3 {
        assert_eq!(
            app.post_snapshot(&sample_snapshot("host-x", 4))
                .await
                .status(),
            201
        );
    }
    assert_eq!(
        app.post_snapshot(&sample_snapshot("host-y", 4))
            .await
            .status(),
        201
    );
    // A second key of the same host, made by the admin.
    let second: CreatedAgentKey = make_key(&app, json!({"host_id": "host-x"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.stored_snapshots().await, 4);

    let remove = || app.client.delete(url(&app, "/api/hosts/host-x")).send();
    assert_eq!(remove().await.unwrap().status(), 204);

    let hosts: Vec<procmon_model::HostSummary> = app.get_hosts().await.json().await.unwrap();
    let ids: Vec<&str> = hosts.iter().map(|h| h.host.id.as_str()).collect();
    assert_eq!(ids, ["host-y"]);
    assert_eq!(app.get_processes("host-x").await.status(), 404);
    let history = app
        .get_with_query("/api/history/host/", &[("host", "host-x")])
        .await;
    assert_eq!(history.status(), 404);
    assert_eq!(
        app.stored_snapshots().await,
        1,
        "only host-y's snapshot is left"
    );
    assert_eq!(app.stored_hosts().await, 1);

    // Its keys are revoked: its agent cannot bring it back.
    assert_eq!(send_as(&app, &key_x, "host-x").await, 401);
    assert_eq!(send_as(&app, &second.key, "host-x").await, 401);
    assert!(list_keys(&app)
        .await
        .iter()
        .filter(|k| k.host_id.as_deref() == Some("host-x"))
        .all(|k| k.revoked_at.is_some()));
    assert_eq!(app.stored_hosts().await, 1);

    let (status, kind) = error_kind(remove().await.unwrap()).await;
    assert_eq!((status, kind.as_str()), (404, "unknown_host"));
}

/// Every admin route, as (method, path), with a body where one is needed.
fn admin_routes() -> [(&'static str, &'static str, Option<Value>); 5] {
    [
        ("GET", "/api/keys/", None),
        ("POST", "/api/keys/", Some(json!({"host_id": "sneaky"}))),
        ("DELETE", "/api/keys/KEYID", None),
        ("POST", "/api/enroll-secret/", None),
        ("DELETE", "/api/hosts/host-a", None),
    ]
}

#[tokio::test]
async fn viewers_get_403_and_strangers_401_on_every_admin_route() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_snapshot(&sample_snapshot("host-a", 2))
            .await
            .status(),
        201
    );
    let key_id = list_keys(&app).await[0].id.clone();
    app.add_user("vi", Role::Viewer, "viewer-pass-1").await;
    let viewer = app.signed_in_client("vi", "viewer-pass-1").await;
    let anonymous = browser_like_client();
    let keys_before = list_keys(&app).await;

    for (client, expected, kind) in [
        (&viewer, 403, "forbidden"),
        (&anonymous, 401, "unauthorized"),
    ] {
        for (method, path, body) in admin_routes() {
            let path = path.replace("KEYID", &key_id);
            let mut request = client.request(method.parse().unwrap(), url(&app, &path));
            if let Some(body) = body {
                request = request.json(&body);
            }
            let (status, got) = error_kind(request.send().await.unwrap()).await;
            assert_eq!((status, got.as_str()), (expected, kind), "{method} {path}");
        }
    }
    // Nothing changed.
    assert_eq!(list_keys(&app).await, keys_before);
    assert_eq!(app.stored_hosts().await, 1);
    assert_eq!(send_as(&app, &app.agent_key, "host-a").await, 201);
}

#[tokio::test]
async fn an_admin_change_without_the_csrf_header_is_refused() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_snapshot(&sample_snapshot("host-a", 2))
            .await
            .status(),
        201
    );
    let key_id = list_keys(&app).await[0].id.clone();
    // The admin's session cookie, but no X-Procmon-Csrf header: what a
    // form on another site could make a browser send.
    let bare = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let signed_in = bare
        .post(url(&app, "/api/session/"))
        .header("x-procmon-csrf", "1")
        .json(&json!({"name": TEST_USER, "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 201);

    for (method, path, body) in admin_routes() {
        let path = path.replace("KEYID", &key_id);
        let mut request = bare.request(method.parse().unwrap(), url(&app, &path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        if method == "GET" {
            assert_eq!(response.status(), 200, "reads need no header");
            continue;
        }
        let (status, kind) = error_kind(response).await;
        assert_eq!(
            (status, kind.as_str()),
            (403, "csrf_header_missing"),
            "{method} {path}"
        );
    }
    assert_eq!(list_keys(&app).await.len(), 1);
    assert_eq!(app.stored_hosts().await, 1);
    assert_eq!(send_as(&app, &app.agent_key, "host-a").await, 201);
}
