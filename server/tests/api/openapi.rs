//! `GET /api/openapi.json` describes the API exactly as served: every route
//! the server answers under /api is in it (and nothing else is), and real
//! responses, errors included, match the schemas it gives for their status.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::{sample_snapshot, spawn_app_with, TestApp};

/// Every endpoint the API promises, as (method, path).
const ENDPOINTS: &[(&str, &str)] = &[
    ("get", "/api/health"),
    ("post", "/api/enroll/"),
    ("post", "/api/enroll-secret/"),
    ("get", "/api/keys/"),
    ("post", "/api/keys/"),
    ("delete", "/api/keys/{id}"),
    ("delete", "/api/hosts/{id}"),
    ("delete", "/api/session/"),
    ("get", "/api/session/"),
    ("post", "/api/session/"),
    ("get", "/api/users/"),
    ("post", "/api/users/"),
    ("delete", "/api/users/{name}"),
    ("put", "/api/users/{name}/password"),
    ("get", "/api/history/changes/"),
    ("get", "/api/history/host/"),
    ("get", "/api/history/process/"),
    ("get", "/api/search/"),
    ("get", "/api/live/load/"),
    ("get", "/api/hosts/"),
    ("get", "/api/live/"),
    ("get", "/api/openapi.json"),
    ("get", "/api/processes/"),
    ("post", "/api/processes/"),
    ("post", "/api/changes/"),
    ("get", "/metrics"),
    ("get", "/api/alerts/"),
    ("get", "/api/alerts/{id}"),
    ("get", "/api/alerts/rules/"),
    ("post", "/api/alerts/rules/"),
    ("get", "/api/alerts/rules/{id}"),
    ("put", "/api/alerts/rules/{id}"),
    ("delete", "/api/alerts/rules/{id}"),
    ("get", "/api/alerts/rules/{id}/versions"),
    ("post", "/api/alerts/preview/"),
    ("get", "/api/alerts/silences/"),
    ("post", "/api/alerts/silences/"),
    ("delete", "/api/alerts/silences/{id}"),
    ("get", "/api/alerts/channels/"),
    ("post", "/api/alerts/channels/"),
    ("put", "/api/alerts/channels/{id}"),
    ("delete", "/api/alerts/channels/{id}"),
    ("post", "/api/alerts/channels/{id}/test"),
    ("get", "/api/alerts/deliveries/"),
    ("get", "/api/actions/"),
    ("post", "/api/actions/"),
    ("get", "/api/actions/{id}"),
    ("get", "/api/agent/actions/"),
    ("post", "/api/agent/actions/{id}/result"),
];

/// A rule, a silence and an alert for the routes that name one: made in
/// the store, so that only the routes under test are called.
async fn doomed_alerts(app: &TestApp) -> (String, String, String) {
    let store = app.state.alerts.store();
    let now = chrono::Utc::now();
    let spec: procmon_model::alerts::AlertRuleSpec = serde_json::from_value(serde_json::json!({
        "name": "doomed", "condition": { "kind": "host_offline" },
    }))
    .unwrap();
    let rule = procmon_model::alerts::AlertRule {
        id: "doomed-rule".into(),
        version: 1,
        created_at: now,
        updated_at: now,
        updated_by: "tester".into(),
        spec,
    };
    store.create_rule(&rule).await.unwrap();
    let silence = procmon_model::alerts::Silence {
        id: "doomed-silence".into(),
        rule_id: None,
        host_id: None,
        starts_at: now,
        until: now + chrono::TimeDelta::hours(1),
        reason: "test".into(),
        created_by: "tester".into(),
        created_at: now,
    };
    store.create_silence(&silence).await.unwrap();
    let alert: procmon_model::alerts::Alert = serde_json::from_value(serde_json::json!({
        "id": "doomed-alert", "rule_id": "doomed-rule", "rule_name": "doomed",
        "severity": "warning", "host_id": "doomed-host", "state": "resolved",
        "since": now, "resolved_at": now, "value": 0.0, "summary": "doomed",
    }))
    .unwrap();
    let record = procmon_server::store::alerts::AlertRecord {
        alert,
        subject: String::new(),
        revision: 0,
        observed_at: now,
        clear_since: None,
        notified_at: None,
    };
    let write = procmon_server::store::alerts::AlertWrite {
        record,
        forget: false,
        deliveries: vec![],
    };
    assert_eq!(store.write_alerts(vec![write]).await.unwrap(), [true]);
    (rule.id, silence.id, "doomed-alert".into())
}

async fn document(app: &TestApp) -> Value {
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    document
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_served() {
    let app = spawn_app_with(|_| {}).await;
    let document = document(&app).await;
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let promised: BTreeSet<(String, String)> = ENDPOINTS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, promised);

    // Each documented operation is served (not 404/405), and on each
    // documented path every other method is refused: the server serves
    // nothing there that the document does not describe. A user's, key's
    // or host's path names a real one (DELETE, last, removes it).
    app.add_user(
        "doomed",
        procmon_server::store::accounts::Role::Viewer,
        "doomed-pass-1",
    )
    .await;
    let doomed_snapshot = sample_snapshot("doomed-host", 1);
    assert_eq!(app.post_snapshot(&doomed_snapshot).await.status(), 201);
    let doomed_key = app
        .state
        .agent_keys
        .create(None, "doomed", chrono::Utc::now())
        .await
        .unwrap()
        .record
        .id;
    let (rule, silence, alert) = doomed_alerts(&app).await;
    let doomed_process = &doomed_snapshot.processes[0];
    let doomed_action = app
        .client
        .post(format!("{}/api/actions/", app.address))
        .json(&serde_json::json!({
            "host_id": "doomed-host", "pid": doomed_process.pid,
            "started_at": doomed_process.start_time, "kind": "terminate", "reason": "doomed",
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let doomed_channel = app
        .client
        .post(format!("{}/api/alerts/channels/", app.address))
        .json(&serde_json::json!({"name": "doomed", "kind": {"type": "webhook", "url": "http://127.0.0.1:9/"}}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        for path in promised.iter().map(|(_, p)| p).collect::<BTreeSet<_>>() {
            let real = match path.as_str() {
                "/api/keys/{id}" => path.replace("{id}", &doomed_key),
                "/api/hosts/{id}" => path.replace("{id}", "doomed-host"),
                "/api/alerts/rules/{id}" | "/api/alerts/rules/{id}/versions" => {
                    path.replace("{id}", &rule)
                }
                "/api/alerts/silences/{id}" => path.replace("{id}", &silence),
                "/api/alerts/{id}" => path.replace("{id}", &alert),
                p if p.contains("actions/{id}") => path.replace("{id}", &doomed_action),
                p if p.starts_with("/api/alerts/channels/{id}") => {
                    path.replace("{id}", &doomed_channel)
                }
                _ => path.replace("{name}", "doomed"),
            };
            let url = format!("{}{real}", app.address);
            let response = app
                .client
                .request(method.parse().unwrap(), url)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            if documented.contains(&(method.to_lowercase(), path.clone())) {
                assert!(
                    status != 404 && status != 405,
                    "{method} {path} is documented but answers {status}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is not documented but answers {status}"
                );
            }
        }
    }
    // Anything else under /api is a JSON 404.
    for path in [
        "/api",
        "/api/",
        "/api/processes",
        "/api/nothing/here",
        "/api/hosts/x/y",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let error: procmon_model::ErrorBody = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(error.error, "not_found");
    }

    // Operations name their auth: the agent key to send, the session
    // cookie to read.
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["agent_key"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["type"], "apiKey");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "procmon_session");
    assert_eq!(
        document["paths"]["/api/processes/"]["post"]["security"],
        serde_json::json!([{"agent_key": []}])
    );
    assert_eq!(
        document["paths"]["/api/hosts/"]["get"]["security"],
        serde_json::json!([{"session": []}])
    );
    let params = &document["paths"]["/api/processes/"]["get"]["parameters"];
    assert_eq!(params[0]["name"], "host");
    assert_eq!(params[0]["required"], true);
    assert_eq!(params[1]["name"], "at");
}

#[tokio::test]
async fn real_responses_match_the_documented_schemas() {
    let app = spawn_app_with(|s| s.body_limit = 64 * 1024).await;
    let document = document(&app).await;
    let snapshot = sample_snapshot("host-a", 3);
    let key = app.agent_key.clone();

    // The request body the agent sends matches the documented one.
    let request_schema = &document["paths"]["/api/processes/"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    let mut sent = serde_json::to_value(&snapshot).unwrap();
    validate(&document, request_schema, &sent, "request").unwrap();
    // And one with every optional field absent, too.
    sent["processes"][0]
        .as_object_mut()
        .unwrap()
        .remove("memory_private_bytes");
    validate(&document, request_schema, &sent, "request").unwrap();

    let mut checked = Vec::new();
    let mut check = |method: &str, path: &str, status: u16, body: Value| {
        let responses = &document["paths"][path][method]["responses"];
        let Some(response) = responses.get(status.to_string()) else {
            panic!("{method} {path} answered {status}, which the document does not list");
        };
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {path} {status} has no JSON schema"
        );
        validate(&document, schema, &body, "response")
            .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}\n{body:#}"));
        checked.push(format!("{method} {path} {status}"));
    };
    async fn answer(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    let (s, b) = answer(app.post_snapshot(&snapshot).await).await;
    check("post", "/api/processes/", s, b);
    let (s, b) = answer(
        app.post_raw("{", Some("application/json"), Some(&key))
            .await,
    )
    .await;
    check("post", "/api/processes/", s, b);
    let (s, b) = answer(
        app.post_raw("{}", Some("application/json"), Some(&key))
            .await,
    )
    .await;
    check("post", "/api/processes/", s, b);
    let (s, b) = answer(
        app.post_raw("{}", Some("application/json"), Some("wrong"))
            .await,
    )
    .await;
    check("post", "/api/processes/", s, b);
    let (s, b) = answer(app.post_raw("{}", Some("text/plain"), Some(&key)).await).await;
    check("post", "/api/processes/", s, b);
    let big = serde_json::to_vec(&sample_snapshot("host-a", 500)).unwrap();
    let (s, b) = answer(
        app.post_raw(big, Some("application/json"), Some(&key))
            .await,
    )
    .await;
    check("post", "/api/processes/", s, b);
    let mut stolen = sample_snapshot("host-b", 1);
    stolen.id = snapshot.id;
    let (s, b) = answer(app.post_snapshot(&stolen).await).await;
    check("post", "/api/processes/", s, b);

    // A change batch as the agent makes it, with a field that became
    // missing (null) and one that moved, matches its documented schema, and
    // its answers theirs: applied, a base not held, a pid not in the base.
    let mut next = snapshot.clone();
    next.id = uuid::Uuid::new_v4();
    next.collected_at += chrono::Duration::seconds(2);
    next.processes[1].exe = None;
    next.processes[1].cpu_percent = 7.5;
    next.processes.pop();
    let batch = procmon_model::changes::diff(&snapshot, &next);
    let batch_schema = &document["paths"]["/api/changes/"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    let sent = serde_json::to_value(&batch).unwrap();
    assert!(sent["changed"][0]["exe"].is_null(), "{sent:#}");
    validate(&document, batch_schema, &sent, "request").unwrap();
    let (s, b) = answer(app.post_changes(&batch).await).await;
    check("post", "/api/changes/", s, b);
    let (s, b) = answer(
        app.post_changes(&procmon_model::changes::diff(&snapshot, &next))
            .await,
    )
    .await;
    check("post", "/api/changes/", s, b);
    let mut later = next.clone();
    later.id = uuid::Uuid::new_v4();
    let mut unknown = procmon_model::changes::diff(&next, &later);
    unknown.exited.push(4_000_000);
    let (s, b) = answer(app.post_changes(&unknown).await).await;
    check("post", "/api/changes/", s, b);
    let mut lost = procmon_model::changes::diff(&next, &later);
    lost.base_id = uuid::Uuid::new_v4();
    let (s, b) = answer(app.post_changes(&lost).await).await;
    check("post", "/api/changes/", s, b);

    let (s, b) = answer(app.get_processes("host-a").await).await;
    check("get", "/api/processes/", s, b);
    let (s, b) = answer(app.get_processes("nobody").await).await;
    check("get", "/api/processes/", s, b);
    let (s, b) = answer(app.get("/api/processes/").await).await;
    check("get", "/api/processes/", s, b);
    let (s, b) = answer(app.get_hosts().await).await;
    check("get", "/api/hosts/", s, b);
    let (s, b) = answer(app.get("/api/health").await).await;
    check("get", "/api/health", s, b);
    let (s, b) = answer(app.get("/api/openapi.json").await).await;
    check("get", "/api/openapi.json", s, b);
    let metrics = app.anonymous().get(format!("{}/metrics", app.address));
    let (s, b) = answer(metrics.send().await.unwrap()).await;
    check("get", "/metrics", s, b);

    let p = &snapshot.processes[0];
    let start_time = p.start_time.to_rfc3339();
    let pid = p.pid.to_string();
    for (path, query) in [
        (
            "/api/history/process/",
            vec![
                ("host", "host-a"),
                ("pid", pid.as_str()),
                ("start_time", start_time.as_str()),
            ],
        ),
        (
            "/api/history/process/",
            vec![("host", "host-a"), ("pid", "x")],
        ),
        (
            "/api/history/process/",
            vec![
                ("host", "nobody"),
                ("pid", "1"),
                ("start_time", start_time.as_str()),
            ],
        ),
        ("/api/history/host/", vec![("host", "host-a")]),
        (
            "/api/history/host/",
            vec![("host", "host-a"), ("from", "soon")],
        ),
        ("/api/history/host/", vec![("host", "nobody")]),
        ("/api/history/changes/", vec![("host", "host-a")]),
        (
            "/api/history/changes/",
            vec![("host", "host-a"), ("limit", "0")],
        ),
        ("/api/history/changes/", vec![("host", "nobody")]),
        ("/api/search/", vec![("q", "proc")]),
        ("/api/search/", vec![("q", " ")]),
        ("/api/live/load/", vec![("host", "host-a")]),
        ("/api/live/load/", vec![("host", "nobody")]),
        ("/api/live/load/", vec![("host", " ")]),
    ] {
        let (s, b) = answer(app.get_with_query(path, &query).await).await;
        check("get", path, s, b);
    }

    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();
    for secret in [secrecy::ExposeSecret::expose_secret(&secret), "wrong"] {
        let (s, b) = answer(
            app.anonymous()
                .post(format!("{}/api/enroll/", app.address))
                .json(&serde_json::json!({"enroll_secret": secret, "host_id": "h-e", "hostname": "e"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        check("post", "/api/enroll/", s, b);
    }

    // Sessions and users.
    let url = |path: &str| format!("{}{path}", app.address);
    let fresh = crate::common::browser_like_client();
    let sign_in = |body: Value| fresh.post(url("/api/session/")).json(&body).send();
    let creds =
        |name: &str, password: &str| serde_json::json!({"name": name, "password": password});
    for body in [
        creds(crate::common::TEST_USER, crate::common::TEST_PASSWORD),
        creds("nobody", "wrong-password"),
        serde_json::json!({"link_token": "0000"}),
        serde_json::json!({}),
    ] {
        let (s, b) = answer(sign_in(body).await.unwrap()).await;
        check("post", "/api/session/", s, b);
    }
    let no_csrf = reqwest::Client::new()
        .post(url("/api/session/"))
        .json(&creds("x", "y"))
        .send()
        .await
        .unwrap();
    let (s, b) = answer(no_csrf).await;
    check("post", "/api/session/", s, b);
    let (s, b) = answer(app.get("/api/session/").await).await;
    check("get", "/api/session/", s, b);
    let (s, b) = answer(
        app.anonymous()
            .get(url("/api/session/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    check("get", "/api/session/", s, b);
    let (s, b) = answer(
        app.anonymous()
            .delete(url("/api/session/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    check("delete", "/api/session/", s, b);

    let admin = &app.client;
    let new_user = |name: &str, password: &str| serde_json::json!({"name": name, "role": "viewer", "password": password});
    for body in [
        new_user("vi", "viewer-pass-1"),
        new_user("vi", "viewer-pass-1"),
        new_user("v i", "viewer-pass-1"),
    ] {
        let (s, b) = answer(
            admin
                .post(url("/api/users/"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        check("post", "/api/users/", s, b);
    }
    let (s, b) = answer(admin.get(url("/api/users/")).send().await.unwrap()).await;
    check("get", "/api/users/", s, b);
    let viewer = app.signed_in_client("vi", "viewer-pass-1").await;
    let (s, b) = answer(viewer.get(url("/api/users/")).send().await.unwrap()).await;
    check("get", "/api/users/", s, b);
    let (s, b) = answer(
        app.anonymous()
            .get(url("/api/users/"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    check("get", "/api/users/", s, b);
    let users = "/api/users/{name}";
    let (s, b) = answer(admin.delete(url("/api/users/nobody")).send().await.unwrap()).await;
    check("delete", users, s, b);
    admin.delete(url("/api/users/admin")).send().await.unwrap();
    let me = format!("/api/users/{}", crate::common::TEST_USER);
    let (s, b) = answer(admin.delete(url(&me)).send().await.unwrap()).await;
    check("delete", users, s, b);
    let (s, b) = answer(viewer.delete(url(&me)).send().await.unwrap()).await;
    check("delete", users, s, b);
    let password = "/api/users/{name}/password";
    for (client, path, body) in [
        (
            admin,
            "/api/users/nobody/password",
            serde_json::json!({"password": "long-enough-1"}),
        ),
        (
            admin,
            "/api/users/vi/password",
            serde_json::json!({"password": "short"}),
        ),
        (
            &viewer,
            &*format!("{me}/password"),
            serde_json::json!({"password": "long-enough-1"}),
        ),
    ] {
        let (s, b) = answer(client.put(url(path)).json(&body).send().await.unwrap()).await;
        check("put", password, s, b);
    }

    // Agent keys, the enrollment secret, removing hosts: admins only.
    let stranger = app.anonymous();
    let keys = "/api/keys/";
    for (client, body) in [
        (
            admin,
            serde_json::json!({"host_id": "host-k", "label": "k"}),
        ),
        (admin, serde_json::json!({"host_id": " host-k"})),
        (&viewer, serde_json::json!({})),
        (&stranger, serde_json::json!({})),
    ] {
        let (s, b) = answer(client.post(url(keys)).json(&body).send().await.unwrap()).await;
        check("post", keys, s, b);
    }
    for (content_type, body) in [("application/json", "{"), ("text/plain", "{}")] {
        let response = admin
            .post(url(keys))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (s, b) = answer(response).await;
        check("post", keys, s, b);
    }
    for client in [admin, &viewer, &stranger] {
        let (s, b) = answer(client.get(url(keys)).send().await.unwrap()).await;
        check("get", keys, s, b);
        let (s, b) = answer(
            client
                .post(url("/api/enroll-secret/"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        check("post", "/api/enroll-secret/", s, b);
    }
    let made = app
        .state
        .agent_keys
        .create(None, "to revoke", chrono::Utc::now())
        .await
        .unwrap()
        .record
        .id;
    let key_path = format!("/api/keys/{made}");
    for client in [&viewer, &stranger] {
        let (s, b) = answer(client.delete(url(&key_path)).send().await.unwrap()).await;
        check("delete", "/api/keys/{id}", s, b);
    }
    let revoked = admin.delete(url(&key_path)).send().await.unwrap();
    // 204 has no body to check against a schema.
    assert_eq!(revoked.status(), 204);
    let (s, b) = answer(admin.delete(url(&key_path)).send().await.unwrap()).await;
    check("delete", "/api/keys/{id}", s, b);
    assert_eq!(
        app.post_snapshot(&sample_snapshot("host-gone", 1))
            .await
            .status(),
        201
    );
    for client in [&viewer, &stranger] {
        let (s, b) = answer(
            client
                .delete(url("/api/hosts/host-gone"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        check("delete", "/api/hosts/{id}", s, b);
    }
    let removed = admin
        .delete(url("/api/hosts/host-gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let (s, b) = answer(
        admin
            .delete(url("/api/hosts/host-gone"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    check("delete", "/api/hosts/{id}", s, b);

    // Channels, their test button and the deliveries.
    let hook = serde_json::json!({
        "name": "hook",
        "kind": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
        "secret": "k",
    });
    let (s, b) = answer(
        admin
            .post(url("/api/alerts/channels/"))
            .json(&hook)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let channel = b["id"].as_str().unwrap().to_owned();
    check("post", "/api/alerts/channels/", s, b);
    let bad = serde_json::json!({"name": "x", "kind": {"type": "webhook", "url": "ftp://x/"}});
    let (s, b) = answer(
        admin
            .post(url("/api/alerts/channels/"))
            .json(&bad)
            .send()
            .await
            .unwrap(),
    )
    .await;
    check("post", "/api/alerts/channels/", s, b);
    let (s, b) = answer(app.get("/api/alerts/channels/").await).await;
    check("get", "/api/alerts/channels/", s, b);
    let path = format!("/api/alerts/channels/{channel}");
    let (s, b) = answer(admin.put(url(&path)).json(&hook).send().await.unwrap()).await;
    check("put", "/api/alerts/channels/{id}", s, b);
    let (s, b) = answer(
        admin
            .put(url("/api/alerts/channels/nope"))
            .json(&hook)
            .send()
            .await
            .unwrap(),
    )
    .await;
    check("put", "/api/alerts/channels/{id}", s, b);
    let (s, b) = answer(
        admin
            .post(url(&format!("{path}/test")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    check("post", "/api/alerts/channels/{id}/test", s, b);
    let (s, b) = answer(app.get("/api/alerts/deliveries/").await).await;
    check("get", "/api/alerts/deliveries/", s, b);
    let (s, b) = answer(app.get("/api/alerts/deliveries/?status=lost").await).await;
    check("get", "/api/alerts/deliveries/", s, b);
    let (s, b) = answer(
        admin
            .delete(url("/api/alerts/channels/nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    check("delete", "/api/alerts/channels/{id}", s, b);

    app.state.store.close().await;
    let (s, b) = answer(app.get("/api/health").await).await;
    check("get", "/api/health", s, b);
    let (s, b) = answer(app.get_hosts().await).await;
    check("get", "/api/hosts/", s, b);

    for expected in [
        "post /api/processes/ 201",
        "post /api/processes/ 400",
        "post /api/processes/ 401",
        "post /api/processes/ 409",
        "post /api/processes/ 413",
        "post /api/processes/ 415",
        "post /api/processes/ 422",
        "post /api/changes/ 201",
        "post /api/changes/ 409",
        "post /api/changes/ 422",
        "get /api/processes/ 200",
        "get /api/processes/ 400",
        "get /api/processes/ 404",
        "get /api/hosts/ 200",
        "get /api/hosts/ 503",
        "get /api/history/process/ 200",
        "get /api/history/process/ 400",
        "get /api/history/process/ 404",
        "get /api/history/host/ 200",
        "get /api/history/host/ 400",
        "get /api/history/host/ 404",
        "get /api/history/changes/ 200",
        "get /api/history/changes/ 400",
        "get /api/history/changes/ 404",
        "get /api/search/ 200",
        "post /api/enroll/ 201",
        "post /api/enroll/ 401",
        "get /api/search/ 400",
        "get /api/health 200",
        "get /api/health 503",
        "post /api/session/ 201",
        "post /api/session/ 401",
        "post /api/session/ 403",
        "post /api/session/ 422",
        "get /api/session/ 200",
        "get /api/session/ 401",
        "delete /api/session/ 401",
        "get /api/users/ 200",
        "get /api/users/ 401",
        "get /api/users/ 403",
        "post /api/users/ 201",
        "post /api/users/ 409",
        "post /api/users/ 422",
        "delete /api/users/{name} 403",
        "delete /api/users/{name} 404",
        "delete /api/users/{name} 409",
        "put /api/users/{name}/password 403",
        "put /api/users/{name}/password 404",
        "put /api/users/{name}/password 422",
        "get /api/keys/ 200",
        "get /api/keys/ 401",
        "get /api/keys/ 403",
        "post /api/keys/ 201",
        "post /api/keys/ 400",
        "post /api/keys/ 401",
        "post /api/keys/ 403",
        "post /api/keys/ 415",
        "post /api/keys/ 422",
        "delete /api/keys/{id} 401",
        "delete /api/keys/{id} 403",
        "delete /api/keys/{id} 404",
        "post /api/enroll-secret/ 201",
        "post /api/enroll-secret/ 401",
        "post /api/enroll-secret/ 403",
        "delete /api/hosts/{id} 401",
        "delete /api/hosts/{id} 403",
        "delete /api/hosts/{id} 404",
        "get /metrics 401",
        "post /api/alerts/channels/ 201",
        "post /api/alerts/channels/ 422",
        "get /api/alerts/channels/ 200",
        "put /api/alerts/channels/{id} 200",
        "put /api/alerts/channels/{id} 404",
        "post /api/alerts/channels/{id}/test 200",
        "get /api/alerts/deliveries/ 200",
        "get /api/alerts/deliveries/ 400",
        "delete /api/alerts/channels/{id} 404",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} was not exercised: {checked:?}"
        );
    }
}

/// Every limit the server enforces on a snapshot is in the document, with
/// the server's numbers; at each bound the document and the server agree:
/// a value the document allows is stored, one past it is refused by both.
#[tokio::test]
async fn the_document_states_every_limit_the_server_enforces() {
    use procmon_model::limits::*;
    let app = spawn_app_with(|_| {}).await;
    let document = document(&app).await;
    let schemas = &document["components"]["schemas"];
    let snapshot = &schemas["Snapshot"]["properties"];
    assert_eq!(snapshot["version"]["enum"], serde_json::json!([1]));
    assert_eq!(snapshot["interval_ms"]["minimum"], *INTERVAL_MS.start());
    assert_eq!(snapshot["interval_ms"]["maximum"], *INTERVAL_MS.end());
    assert_eq!(snapshot["processes"]["maxItems"], MAX_PROCESSES);
    let host = &schemas["HostInfo"]["properties"];
    assert_eq!(host["id"]["minLength"], 1);
    for field in [
        "id",
        "hostname",
        "os_name",
        "os_version",
        "kernel",
        "arch",
        "agent_version",
    ] {
        assert_eq!(host[field]["maxLength"], MAX_HOST_FIELD, "{field}");
        let description = host[field]["description"].as_str().unwrap();
        assert!(description.contains("256 bytes of UTF-8"), "{description}");
    }
    // Labels, on a host and in a rule alike.
    for labels in [
        &host["labels"],
        &schemas["AlertRuleSpec"]["properties"]["host_labels"],
    ] {
        assert_eq!(labels["maxItems"], MAX_LABELS, "{labels:#}");
        assert_eq!(labels["items"]["minLength"], 1, "{labels:#}");
        assert_eq!(labels["items"]["maxLength"], MAX_LABEL, "{labels:#}");
        assert_eq!(labels["items"]["pattern"], LABEL_PATTERN, "{labels:#}");
    }
    // Exactly three load averages: serde refuses any other count.
    let load = &schemas["HostLoad"]["properties"];
    assert_eq!(
        load["load_average"]["minItems"], 3,
        "{:#}",
        load["load_average"]
    );
    assert_eq!(load["load_average"]["maxItems"], 3);
    let batch = &schemas["ChangeBatch"]["properties"];
    assert_eq!(batch["version"]["enum"], serde_json::json!([1]));
    assert_eq!(batch["interval_ms"]["minimum"], *INTERVAL_MS.start());
    assert_eq!(batch["host_id"]["maxLength"], MAX_HOST_FIELD);
    let update = &schemas["ProcessUpdate"]["properties"];
    assert_eq!(update["name"]["maxLength"], MAX_NAME);
    assert_eq!(update["exe"]["maxLength"], MAX_PATH);
    assert_eq!(update["cpu_percent"]["maximum"], f64::from(MAX_CPU_PERCENT));
    let process = &schemas["ProcessSample"]["properties"];
    assert_eq!(process["name"]["maxLength"], MAX_NAME);
    assert_eq!(process["user"]["maxLength"], MAX_NAME);
    assert_eq!(process["exe"]["maxLength"], MAX_PATH);
    assert_eq!(process["cmd"]["maxItems"], MAX_CMD_ARGS);
    assert_eq!(process["cmd"]["items"]["maxLength"], MAX_CMD_BYTES);
    assert_eq!(process["cpu_percent"]["minimum"], 0);
    assert_eq!(
        process["cpu_percent"]["maximum"],
        f64::from(MAX_CPU_PERCENT)
    );

    let request_schema = &document["paths"]["/api/processes/"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    type Change = fn(&mut procmon_model::Snapshot, bool);
    let cases: [(&str, Change); 8] = [
        ("version", |s, over| s.version = if over { 2 } else { 1 }),
        ("shortest interval", |s, over| {
            s.interval_ms = INTERVAL_MS.start() - u64::from(over)
        }),
        ("longest interval", |s, over| {
            s.interval_ms = INTERVAL_MS.end() + u64::from(over)
        }),
        ("longest host id", |s, over| {
            s.host.id = "h".repeat(MAX_HOST_FIELD + usize::from(over))
        }),
        ("host id with spaces", |s, over| {
            s.host.id = if over { " h".into() } else { "h h".into() }
        }),
        ("longest name", |s, over| {
            s.processes[0].name = "n".repeat(MAX_NAME + usize::from(over))
        }),
        ("most arguments", |s, over| {
            s.processes[0].cmd = vec!["a".into(); MAX_CMD_ARGS + usize::from(over)]
        }),
        ("highest CPU %", |s, over| {
            s.processes[0].cpu_percent = MAX_CPU_PERCENT + if over { 1.0 } else { 0.0 }
        }),
    ];
    for (case, change) in cases {
        for over in [false, true] {
            let mut snapshot = sample_snapshot("host-a", 2);
            change(&mut snapshot, over);
            let sent = serde_json::to_value(&snapshot).unwrap();
            let documented = validate(&document, request_schema, &sent, "request");
            let status = app.post_snapshot(&snapshot).await.status().as_u16();
            if over {
                assert!(
                    documented.is_err(),
                    "{case}: past the bound, the document allows it"
                );
                assert_eq!(status, 422, "{case}: past the bound");
            } else {
                assert_eq!(documented, Ok(()), "{case}: at the bound");
                assert_eq!(status, 201, "{case}: at the bound, the server refuses it");
            }
        }
    }
}

#[tokio::test]
async fn the_validator_catches_what_it_should() {
    let app = spawn_app_with(|_| {}).await;
    let document = document(&app).await;
    let error_body = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
    let good = serde_json::json!({"error": "x", "message": "y"});
    validate(&document, &error_body, &good, "").unwrap();
    for bad in [
        serde_json::json!({"error": "x"}),
        serde_json::json!({"error": "x", "message": "y", "extra": 1}),
        serde_json::json!({"error": 1, "message": "y"}),
    ] {
        assert!(validate(&document, &error_body, &bad, "").is_err(), "{bad}");
    }
}

/// Checks `value` against an OpenAPI 3.1 schema strictly: required keys
/// present, no keys the schema does not name, types, enums, formats.
fn validate(document: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{at}: unexpected $ref {reference}"))?;
        let target = &document["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: $ref to missing schema {name}"));
        }
        return validate(document, target, value, at);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let passing = options
                .iter()
                .filter(|o| validate(document, o, value, at).is_ok())
                .count();
            let ok = if key == "oneOf" {
                passing == 1
            } else {
                passing >= 1
            };
            if !ok {
                return Err(format!(
                    "{at}: {passing} of the {key} options match {value}"
                ));
            }
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all {
            validate(document, part, value, at)?;
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => return Err(format!("{at}: odd type {other}")),
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let fits = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
        if !fits {
            return Err(format!("{at}: {actual} where the schema says {types:?}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let (Some(format), Some(text)) =
        (schema.get("format").and_then(Value::as_str), value.as_str())
    {
        let ok = match format {
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: {text:?} is not a {format}"));
        }
    }
    if let (Some(minimum), Some(number)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if number < minimum {
            return Err(format!("{at}: {number} is below the minimum {minimum}"));
        }
    }
    if let (Some(maximum), Some(number)) = (
        schema.get("maximum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if number > maximum {
            return Err(format!("{at}: {number} is above the maximum {maximum}"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if chars > max {
                return Err(format!("{at}: {chars} characters, over maxLength {max}"));
            }
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if chars < min {
                return Err(format!("{at}: {chars} characters, under minLength {min}"));
            }
        }
        // The patterns in the document: no spaces around a host id and
        // no control character in it, a time in the years the store holds,
        // a user name.
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let matches = if pattern == procmon_server::api::schema_limits::HOST_ID {
                text.trim() == text && !text.is_empty() && !text.chars().any(char::is_control)
            } else if pattern == procmon_server::api::schema_limits::STORABLE_TIME {
                text.get(..5).is_some_and(|year| {
                    year.ends_with('-')
                        && year[..4]
                            .parse::<u32>()
                            .is_ok_and(|y| (1678..=2261).contains(&y))
                })
            } else if pattern.starts_with("^https?://") {
                // A channel's URL: the server checks it whole when stored.
                text.starts_with("http://") || text.starts_with("https://")
            } else if pattern.starts_with("^[A-Za-z0-9_%+-]+") {
                // A channel's e-mail address.
                text.contains('@') && !text.contains(char::is_whitespace)
            } else if pattern == "^[A-Za-z0-9.-]+$" {
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
            } else if pattern == "^[A-Za-z0-9._@-]+$" {
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
            } else {
                panic!("a pattern this validator cannot check: {pattern}")
            };
            if !matches {
                return Err(format!("{at}: {text:?} does not match {pattern}"));
            }
        }
    }
    if let (Some(max), Value::Array(items)) =
        (schema.get("maxItems").and_then(Value::as_u64), value)
    {
        if items.len() as u64 > max {
            return Err(format!("{at}: {} items, over maxItems {max}", items.len()));
        }
    }
    if let Value::Object(fields) = value {
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap();
                if !fields.contains_key(name) {
                    return Err(format!("{at}: required key {name:?} is missing"));
                }
            }
            for (name, field) in fields {
                let Some(property) = properties.get(name) else {
                    return Err(format!("{at}: key {name:?} is not in the schema"));
                };
                validate(document, property, field, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(document, item_schema, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
