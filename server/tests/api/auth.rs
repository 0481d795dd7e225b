//! Signing in: without a session only health, the API description and the
//! page's files are readable (on loopback too); a session reads until it
//! is signed out or expires; failures are throttled and say nothing about
//! which names exist; agents' keys send but never read; requests must name
//! this server.

use crate::common::error_of;
use std::sync::Arc;
use std::time::{Duration, Instant};

use procmon_server::clock::ManualClock;
use procmon_server::config::Settings;
use procmon_server::startup::Application;
use procmon_server::store::accounts::Role;

use crate::common::{
    browser_like_client, sample_snapshot, spawn_app, spawn_app_with, spawn_app_with_clock,
    too_many, TestApp, TEST_PASSWORD, TEST_USER,
};

/// Every read that needs a session.
const READ_PATHS: [&str; 8] = [
    "/api/hosts/",
    "/api/processes/?host=host-a",
    "/api/history/host/?host=host-a",
    "/api/history/changes/?host=host-a",
    "/api/history/process/?host=host-a&pid=1&start_time=2024-01-01T00:00:00Z",
    "/api/search/?q=proc",
    "/api/session/",
    "/api/users/",
];

async fn get_with(client: &reqwest::Client, app: &TestApp, path: &str) -> reqwest::Response {
    client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap()
}

/// The session cookie's value from a sign-in response.
fn cookie_of(response: &reqwest::Response) -> String {
    let set = response.headers()["set-cookie"].to_str().unwrap();
    let (pair, _) = set.split_once(';').unwrap();
    pair.to_owned()
}

#[tokio::test]
async fn without_a_session_only_health_the_document_and_the_page_are_readable() {
    let app = spawn_app().await;
    app.post_snapshot(&sample_snapshot("host-a", 2)).await;
    let anonymous = app.anonymous();
    for path in READ_PATHS {
        let error = error_of(get_with(&anonymous, &app, path).await, 401).await;
        assert!(
            error.message.contains("sign in"),
            "{path}: {}",
            error.message
        );
        assert_eq!(
            get_with(&app.client, &app, path).await.status(),
            200,
            "{path}"
        );
    }
    for path in [
        "/api/health",
        "/api/openapi.json",
        "/",
        "/js/main.js",
        "/css/style.css",
    ] {
        assert_eq!(
            get_with(&anonymous, &app, path).await.status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_agent_key_sends_but_cannot_read() {
    let app = spawn_app().await;
    app.post_snapshot(&sample_snapshot("host-a", 2)).await;
    for path in READ_PATHS {
        let response = app
            .anonymous()
            .get(format!("{}{path}", app.address))
            .bearer_auth(&app.agent_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "the agent key must not read {path}");
    }
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_says_who_and_until_when() {
    let app = spawn_app().await;
    let response = app
        .sign_in_with(&browser_like_client(), TEST_USER, TEST_PASSWORD)
        .await;
    assert_eq!(response.status(), 201);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("procmon_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");
    let token = cookie_of(&response).split_once('=').unwrap().1.to_owned();
    assert_eq!(token.len(), 64, "256 bits as hex");

    let who: serde_json::Value = app.get("/api/session/").await.json().await.unwrap();
    assert_eq!(who["name"], TEST_USER);
    assert_eq!(who["role"], "admin");
    assert_eq!(who["has_password"], true);
    let expires =
        chrono::DateTime::parse_from_rfc3339(who["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        left > chrono::Duration::hours(11) && left <= chrono::Duration::hours(12),
        "12 h idle by default: {left}"
    );
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    // A client without a cookie store, to send the old cookie again after
    // the browser would have dropped it.
    let plain = reqwest::Client::new();
    let response = app
        .sign_in_with(&browser_like_client(), TEST_USER, TEST_PASSWORD)
        .await;
    let cookie = cookie_of(&response);
    let read = |cookie: String| {
        plain
            .get(format!("{}/api/hosts/", app.address))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(read(cookie.clone()).await.unwrap().status(), 200);

    let out = plain
        .delete(format!("{}/api/session/", app.address))
        .header("cookie", cookie.clone())
        .header("x-procmon-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    let error = error_of(read(cookie).await.unwrap(), 401).await;
    assert!(
        error.message.contains("session has ended"),
        "{}",
        error.message
    );
    // The signed-in client of the test app is another session: still in.
    assert_eq!(app.get_hosts().await.status(), 200);
}

#[tokio::test]
async fn a_session_ends_after_its_idle_time_and_at_its_lifetime() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(Some(Arc::clone(&clock)), |s| {
        s.session_idle = Duration::from_secs(3600);
        s.session_lifetime = Duration::from_secs(3 * 3600);
    })
    .await;
    // Used every 50 minutes, it lives past the idle hour...
    for _ in 0..3 {
        clock.advance(chrono::Duration::minutes(50));
        assert_eq!(app.get_hosts().await.status(), 200);
    }
    // ... but not past its lifetime of 3 hours.
    clock.advance(chrono::Duration::minutes(40));
    let error = error_of(app.get_hosts().await, 401).await;
    assert!(
        error.message.contains("session has ended"),
        "{}",
        error.message
    );

    // A new one left unused for over an hour ends.
    let client = app.signed_in_client(TEST_USER, TEST_PASSWORD).await;
    clock.advance(chrono::Duration::minutes(61));
    assert_eq!(get_with(&client, &app, "/api/hosts/").await.status(), 401);
}

/// A session nobody uses again is deleted from the database once it has
/// ended, not only when someone presents it.
#[tokio::test]
async fn ended_sessions_are_swept_from_the_database() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(Some(Arc::clone(&clock)), |s| {
        s.session_idle = Duration::from_secs(3600);
    })
    .await;
    // The test client's session is the one in the store.
    let me = |client: reqwest::Client| {
        let url = format!("{}/api/session/", app.address);
        async move { client.get(url).send().await.unwrap().status() }
    };
    assert_eq!(me(app.client.clone()).await, 200);
    let lifetime = app.state.session_lifetime;
    assert_eq!(
        app.state
            .accounts
            .delete_ended(procmon_server::clock::Clock::now(clock.as_ref()), lifetime)
            .await
            .unwrap(),
        0
    );
    clock.advance(chrono::Duration::minutes(61));
    assert_eq!(
        app.state
            .accounts
            .delete_ended(procmon_server::clock::Clock::now(clock.as_ref()), lifetime)
            .await
            .unwrap(),
        1
    );
    // Swept: the session is gone for good, whatever the clock says.
    clock.set(chrono::Utc::now());
    assert_eq!(me(app.client.clone()).await, 401);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer_in_the_same_time() {
    let app = spawn_app().await;
    let client = browser_like_client();
    let mut answers = Vec::new();
    let mut took = Vec::new();
    for (name, password) in [(TEST_USER, "wrong-password"), ("nobody", "wrong-password")] {
        let started = Instant::now();
        let response = app.sign_in_with(&client, name, password).await;
        took.push(started.elapsed());
        assert_eq!(response.status(), 401, "{name}");
        answers.push(response.text().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0].contains("wrong user name or password"),
        "{}",
        answers[0]
    );
    // Both verify an argon2 hash (a stand-in one for the unknown name): a
    // shortcut for unknown names would answer many times faster.
    assert!(
        took[1] * 4 >= took[0],
        "an unknown name answered much faster: {took:?}"
    );
}

#[tokio::test]
async fn repeated_failures_are_refused_for_a_while_with_retry_after() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_app_with_clock(Some(Arc::clone(&clock)), |_| {}).await;
    let client = browser_like_client();
    for _ in 0..5 {
        let response = app.sign_in_with(&client, TEST_USER, "guess").await;
        assert_eq!(response.status(), 401);
    }
    // The right password too, now: the name is being guessed.
    let response = app.sign_in_with(&client, TEST_USER, TEST_PASSWORD).await;
    too_many(response, "too_many_sign_ins", 1..=60).await;
    // And from this address, another name.
    let response = app.sign_in_with(&client, "someone-else", "guess").await;
    assert_eq!(response.status(), 429);

    clock.advance(chrono::Duration::seconds(61));
    let response = app.sign_in_with(&client, TEST_USER, TEST_PASSWORD).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn changes_need_the_csrf_header() {
    let app = spawn_app().await;
    let plain = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let response = plain
        .post(format!("{}/api/session/", app.address))
        .json(&serde_json::json!({"name": TEST_USER, "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    let error = error_of(response, 403).await;
    assert_eq!(error.error, "csrf_header_missing");

    // A session's cookie alone does not change anything either.
    let cookie = cookie_of(
        &app.sign_in_with(&browser_like_client(), TEST_USER, TEST_PASSWORD)
            .await,
    );
    let response = plain
        .delete(format!("{}/api/session/", app.address))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response, 403).await.error, "csrf_header_missing");
    let response = plain
        .post(format!("{}/api/users/", app.address))
        .header("cookie", cookie.clone())
        .json(&serde_json::json!({"name": "eve", "role": "admin", "password": "password-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response, 403).await.error, "csrf_header_missing");
    // Reads need no header.
    let response = plain
        .get(format!("{}/api/hosts/", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_session_cannot_send_snapshots() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/processes/", app.address))
        .json(&sample_snapshot("host-a", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(app.stored_snapshots().await, 0);
}

#[tokio::test]
async fn a_request_for_another_host_name_is_refused() {
    let app = spawn_app_with(|s| s.allowed_hosts = vec!["procmon.example.org".into()]).await;
    let port = app.port;
    for path in ["/", "/api/hosts/", "/api/session/"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .header("host", format!("rebound.example:{port}"))
            .send()
            .await
            .unwrap();
        let error = error_of(response, 421).await;
        assert_eq!(error.error, "foreign_host", "{path}");
        assert!(error.message.contains("allowed_hosts"), "{}", error.message);
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "procmon.example.org".to_owned(),
    ] {
        let response = app
            .client
            .get(format!("{}/api/hosts/", app.address))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
    // Agents and monitors may use any name they were given.
    let response = app
        .anonymous()
        .get(format!("{}/api/health", app.address))
        .header("host", "rebound.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn no_login_reads_without_a_session_on_loopback_only() {
    let app = spawn_app_with(|s| s.no_login = true).await;
    app.post_snapshot(&sample_snapshot("host-a", 2)).await;
    let anonymous = app.anonymous();
    for path in &READ_PATHS[..6] {
        assert_eq!(
            get_with(&anonymous, &app, path).await.status(),
            200,
            "{path}"
        );
    }
    // Managing users still needs an admin's session.
    assert_eq!(
        get_with(&anonymous, &app, "/api/users/").await.status(),
        401
    );
    // And the Host check stands: no rebinding onto an open server.
    let response = anonymous
        .get(format!("{}/api/hosts/", app.address))
        .header("host", "rebound.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 421);

    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::with_data_dir(dir.path());
    settings.listen = "0.0.0.0:0".parse().unwrap();
    settings.no_login = true;
    let error = match settings.checked() {
        Ok(_) => panic!("no_login beyond loopback was accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("no_login is refused when listening on 0.0.0.0"),
        "{error}"
    );
}

#[tokio::test]
async fn beyond_loopback_a_session_is_needed_as_on_loopback() {
    let app = spawn_app_with(|s| s.listen = "0.0.0.0:0".parse().unwrap()).await;
    app.post_snapshot(&sample_snapshot("host-a", 2)).await;
    for path in READ_PATHS {
        assert_eq!(
            get_with(&app.anonymous(), &app, path).await.status(),
            401,
            "{path}"
        );
        assert_eq!(
            get_with(&app.client, &app, path).await.status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_database_holds_an_argon2_hash_not_the_password() {
    let app = spawn_app().await;
    app.add_user("viewer-1", Role::Viewer, "plain-text-check-77")
        .await;
    let hash = app
        .state
        .accounts
        .find_user("viewer-1")
        .await
        .unwrap()
        .expect("the user is stored")
        .password_hash
        .expect("with a password");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains("plain-text-check-77"));
    // Nor is it anywhere else in the file, nor a session token (SQLite:
    // the files; PostgreSQL keeps them on its own server).
    app.state.store.close().await;
    let dir = app.data_dir.path();
    for file in ["procmon.db", "procmon.db-wal"] {
        let Ok(bytes) = std::fs::read(dir.join(file)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("plain-text-check-77"), "{file}");
        assert!(!text.contains(TEST_PASSWORD), "{file}");
    }
}

#[tokio::test]
async fn the_first_start_makes_an_admin_without_a_password_and_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::with_data_dir(dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    let first = Application::build(settings.clone()).await.unwrap();
    use secrecy::ExposeSecret;
    let link = first
        .first_signin_link()
        .unwrap()
        .expose_secret()
        .to_owned();
    assert!(
        link.starts_with(&format!("{}#signin=", first.local_url())),
        "{link}"
    );
    let users = first.state().accounts.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, "admin");
    assert_eq!(users[0].role, Role::Admin);
    assert!(users[0].password_hash.is_none());
    first.state().store.close().await;
    drop(first);
    let second = Application::build(settings).await.unwrap();
    assert!(
        second.first_signin_link().is_none(),
        "the link is made once"
    );
}
