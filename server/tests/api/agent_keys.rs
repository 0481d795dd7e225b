//! Agent keys: one per host, bound to it, revocable, stored only as
//! hashes; and enrollment, which hands a host its own key.

use procmon_model::{EnrollResponse, ErrorBody};
use secrecy::ExposeSecret;

use crate::common::{sample_snapshot, spawn_app, TestApp};

async fn post_as(app: &TestApp, key: &str, host: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/processes/", app.address))
        .bearer_auth(key)
        .json(&sample_snapshot(host, 2))
        .send()
        .await
        .unwrap()
}

async fn enroll(app: &TestApp, secret: &str, host: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/enroll/", app.address))
        .json(&serde_json::json!({"enroll_secret": secret, "host_id": host, "hostname": host}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_of_one_host_cannot_send_as_another() {
    let app = spawn_app().await;
    let a = app.key_for("host-a").await;
    assert_eq!(post_as(&app, &a, "host-a").await.status(), 201);
    let response = post_as(&app, &a, "host-b").await;
    assert_eq!(response.status(), 403);
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "key_for_other_host");
    assert!(error.message.contains("host-a") && error.message.contains("host-b"));
    assert!(app.state.store.host("host-b").await.unwrap().is_none());
    assert_eq!(app.stored_snapshots().await, 1);
}

#[tokio::test]
async fn a_new_key_is_bound_by_its_first_snapshot() {
    let app = spawn_app().await;
    let key = app.unbound_key().await;
    assert_eq!(post_as(&app, &key, "first").await.status(), 201);
    assert_eq!(post_as(&app, &key, "first").await.status(), 201);
    assert_eq!(post_as(&app, &key, "second").await.status(), 403);
}

#[tokio::test]
async fn missing_wrong_and_revoked_keys_get_the_same_401() {
    let app = spawn_app().await;
    let key = app.key_for("host-a").await;
    assert_eq!(post_as(&app, &key, "host-a").await.status(), 201);
    let id = key.trim_start_matches("pmk_").split('_').next().unwrap();
    assert!(app
        .state
        .agent_keys
        .store()
        .revoke_key(id, chrono::Utc::now())
        .await
        .unwrap());

    let mut wrong_secret = key.clone();
    wrong_secret.pop();
    wrong_secret.push('x');
    let mut bodies = Vec::new();
    for given in [
        None,
        Some("nonsense"),
        Some(wrong_secret.as_str()),
        Some(key.as_str()),
    ] {
        let mut request = app
            .client
            .post(format!("{}/api/processes/", app.address))
            .json(&sample_snapshot("host-a", 1));
        if let Some(given) = given {
            request = request.bearer_auth(given);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{given:?}");
        bodies.push(response.text().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(app.stored_snapshots().await, 1);
}

#[tokio::test]
async fn enrollment_hands_a_host_its_own_key_and_a_second_one_replaces_it() {
    let app = spawn_app().await;
    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();
    let secret = secret.expose_secret();

    let response = enroll(&app, secret, "web-1").await;
    assert_eq!(response.status(), 201);
    let first: EnrollResponse = response.json().await.unwrap();
    assert_eq!(first.host_id, "web-1");
    assert_eq!(post_as(&app, &first.key, "web-1").await.status(), 201);
    // Bound at enrollment: it cannot send as another host.
    assert_eq!(post_as(&app, &first.key, "web-2").await.status(), 403);

    // The same host enrolling again (reinstalled, key file lost) gets a new
    // key; the previous one stops working.
    let second: EnrollResponse = enroll(&app, secret, "web-1").await.json().await.unwrap();
    assert_ne!(second.key, first.key);
    assert_eq!(post_as(&app, &second.key, "web-1").await.status(), 201);
    assert_eq!(post_as(&app, &first.key, "web-1").await.status(), 401);

    // A wrong secret, and after rotation the old one, are refused alike.
    let wrong = enroll(&app, "pme_wrong", "web-3").await;
    assert_eq!(wrong.status(), 401);
    let wrong: ErrorBody = wrong.json().await.unwrap();
    assert!(
        wrong.message.contains("enrollment secret"),
        "{}",
        wrong.message
    );
    app.state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(enroll(&app, secret, "web-3").await.status(), 401);
    assert_eq!(enroll(&app, secret, " spaced ").await.status(), 422);
}

/// Agents are often pointed at a name the server was never told about (a
/// load balancer's): enrolling, like sending, does not depend on it.
#[tokio::test]
async fn enrollment_works_whatever_name_the_agent_uses_for_the_server() {
    let app = spawn_app().await;
    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();
    let response = app
        .client
        .post(format!("{}/api/enroll/", app.address))
        .header("host", "procmon.internal.example:8000")
        .json(&serde_json::json!({
            "enroll_secret": secret.expose_secret(), "host_id": "web-9", "hostname": "w"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // Reading under that name is still refused (DNS rebinding guard).
    let read = app
        .client
        .get(format!("{}/api/hosts/", app.address))
        .header("host", "procmon.internal.example:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 421);
}

#[tokio::test]
async fn the_database_holds_no_plain_key() {
    let app = spawn_app().await;
    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();
    let enrolled: EnrollResponse = enroll(&app, secret.expose_secret(), "web-1")
        .await
        .json()
        .await
        .unwrap();
    let made = app.key_for("host-b").await;
    assert_eq!(post_as(&app, &made, "host-b").await.status(), 201);
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
        on_disk.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for secret_part in [
        enrolled.key.rsplit('_').next().unwrap(),
        made.rsplit('_').next().unwrap(),
        secret.expose_secret().trim_start_matches("pme_"),
    ] {
        assert!(
            !on_disk
                .windows(secret_part.len())
                .any(|w| w == secret_part.as_bytes()),
            "a secret is on disk in plain"
        );
    }
}
