//! Acting on a process: an operator asks, the host's agent hears of it in
//! its ingest answer, fetches it signed (once), and reports; the audit log
//! shows who asked what of which process, why, and how it ended. And every
//! refusal: the wrong role, no CSRF header, no session, a host or process
//! that is not there, a bad reason, a second result, another host's agent,
//! an action that expired unanswered.

use std::sync::Arc;

use chrono::{Duration, Utc};
use procmon_model::actions::{
    ActionEntry, ActionOutcome, ActionResultCode, SignedAction, ACTION_LIFETIME_SECS, KEY_PREFIX,
};
use procmon_model::changes::diff;
use procmon_model::{EnrollResponse, IngestResponse, ProcessSample, Snapshot};
use procmon_server::clock::ManualClock;
use procmon_server::store::accounts::Role;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::common::{error_of, metric, sample_snapshot, spawn_app, spawn_app_with_clock, TestApp};

const OPERATOR: &str = "otto";
const OPERATOR_PASSWORD: &str = "operator-pass-1";
const VIEWER: &str = "vera";
const VIEWER_PASSWORD: &str = "viewer-pass-1";

/// A client signed in as an operator.
async fn operator(app: &TestApp) -> reqwest::Client {
    app.add_user(OPERATOR, Role::Operator, OPERATOR_PASSWORD)
        .await;
    app.signed_in_client(OPERATOR, OPERATOR_PASSWORD).await
}

/// Sends `snapshot` as its host's agent; its answer.
async fn ingest(app: &TestApp, snapshot: &Snapshot) -> IngestResponse {
    let response = app.post_snapshot(snapshot).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// The body of `POST /api/actions/` for `process` of `host`.
fn ask(host: &str, process: &ProcessSample, kind: &str, reason: &str) -> Value {
    json!({
        "host_id": host,
        "pid": process.pid,
        "started_at": process.start_time,
        "kind": kind,
        "reason": reason,
    })
}

async fn post_action(app: &TestApp, client: &reqwest::Client, body: &Value) -> reqwest::Response {
    client
        .post(format!("{}/api/actions/", app.address))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `GET /api/agent/actions/` with `host`'s key.
async fn fetch(app: &TestApp, host: &str) -> Vec<SignedAction> {
    let response = app
        .anonymous()
        .get(format!("{}/api/agent/actions/", app.address))
        .bearer_auth(app.key_for(host).await)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// `POST /api/agent/actions/{id}/result` with `host`'s key.
async fn report(app: &TestApp, host: &str, id: &str, body: &Value) -> reqwest::Response {
    app.anonymous()
        .post(format!("{}/api/agent/actions/{id}/result", app.address))
        .bearer_auth(app.key_for(host).await)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn entry(app: &TestApp, id: impl std::fmt::Display) -> ActionEntry {
    let response = app.get(&format!("/api/actions/{id}")).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// Whether `action` is signed by the key `public` (`ed25519:<base64>`),
/// checked as an agent checks it.
fn verifies(public: &str, action: &SignedAction) -> bool {
    procmon_agent::actions::ServerKey::parse(public)
        .expect("a public key in its published form")
        .verify(&action.signing_bytes(), &action.signature)
        .is_ok()
}

/// The server's action key as an enrolling agent gets it.
async fn enrolled_key(app: &TestApp) -> String {
    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(Utc::now())
        .await
        .unwrap();
    let response = app
        .anonymous()
        .post(format!("{}/api/enroll/", app.address))
        .json(&json!({
            "enroll_secret": secret.expose_secret(),
            "host_id": "enrolled-host",
            "hostname": "enrolled",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let enrolled: EnrollResponse = response.json().await.unwrap();
    enrolled
        .action_key
        .expect("the server gives its action key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_asks_the_agent_fetches_once_acts_and_the_audit_log_shows_it() {
    let app = spawn_app().await;
    let otto = operator(&app).await;
    let first = sample_snapshot("host-a", 5);
    assert_eq!(ingest(&app, &first).await.pending_actions, 0);
    let target = first.processes[2].clone();

    let response = post_action(&app, &otto, &ask("host-a", &target, "terminate", "stuck")).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let asked: ActionEntry = response.json().await.unwrap();
    assert_eq!(asked.outcome, ActionOutcome::Pending);
    assert_eq!(asked.requested_by, OPERATOR);
    assert_eq!(asked.host_id, "host-a");
    assert_eq!(asked.hostname, first.host.hostname);
    assert_eq!(
        (asked.pid, asked.started_at),
        (target.pid, target.start_time)
    );
    assert_eq!(asked.process_name, target.name);
    assert_eq!(asked.process_user, target.user);
    assert_eq!(asked.reason, "stuck");
    assert_eq!(
        asked.expires_at - asked.requested_at,
        Duration::seconds(ACTION_LIFETIME_SECS)
    );

    // The agent's next answers say one waits: to a whole snapshot and to a
    // change batch.
    let second = Snapshot {
        id: uuid::Uuid::new_v4(),
        collected_at: first.collected_at + Duration::seconds(2),
        ..first.clone()
    };
    assert_eq!(ingest(&app, &second).await.pending_actions, 1);
    let mut third = second.clone();
    third.id = uuid::Uuid::new_v4();
    third.collected_at += Duration::seconds(2);
    third.processes[0].cpu_percent = 7.5;
    let response = app.post_changes(&diff(&second, &third)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let answer: IngestResponse = response.json().await.unwrap();
    assert_eq!(answer.pending_actions, 1);

    // It fetches it, signed with the key it pinned at enrollment (which
    // `procmon-server action-key` prints too).
    let fetched = fetch(&app, "host-a").await;
    assert_eq!(fetched.len(), 1);
    let action = &fetched[0];
    assert_eq!(action.id, asked.id);
    assert_eq!(action.host_id, "host-a");
    assert_eq!(
        (action.pid, action.started_at),
        (target.pid, target.start_time)
    );
    assert_eq!(action.expires_at, asked.expires_at);
    assert_eq!(action.nonce.len(), 32);
    let public = enrolled_key(&app).await;
    assert_eq!(public, app.state.action_signer.public_key());
    assert!(verifies(&public, action), "the signature verifies");
    let mut forged = action.clone();
    forged.pid += 1;
    assert!(!verifies(&public, &forged));

    // Handed out once: neither the next fetch nor the next answer has it.
    assert!(fetch(&app, "host-a").await.is_empty());
    let mut fourth = third.clone();
    fourth.id = uuid::Uuid::new_v4();
    fourth.collected_at += Duration::seconds(2);
    assert_eq!(ingest(&app, &fourth).await.pending_actions, 0);
    assert_eq!(
        entry(&app, asked.id).await.outcome,
        ActionOutcome::Delivered
    );

    let done = json!({"code": "done", "message": "sent SIGTERM"});
    let response = report(&app, "host-a", &asked.id.to_string(), &done).await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    let again = json!({"code": "failed", "message": "second thoughts"});
    let error = error_of(
        report(&app, "host-a", &asked.id.to_string(), &again).await,
        409,
    )
    .await;
    assert_eq!(error.error, "result_already_recorded");

    let logged = entry(&app, asked.id).await;
    assert_eq!(logged.outcome, ActionOutcome::Done);
    assert_eq!(logged.code, Some(ActionResultCode::Done));
    assert_eq!(logged.message.as_deref(), Some("sent SIGTERM"));
    assert_eq!(logged.requested_by, OPERATOR);
    assert_eq!(logged.reason, "stuck");
    assert_eq!(logged.process_name, target.name);
    assert!(logged.delivered_at.is_some() && logged.finished_at.is_some());
    let listed: Vec<ActionEntry> = app
        .get_with_query("/api/actions/", &[("host", "host-a")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, vec![logged.clone()]);
    let none: Vec<ActionEntry> = app
        .get_with_query("/api/actions/", &[("host", "host-b")])
        .await
        .json()
        .await
        .unwrap();
    assert!(none.is_empty());

    assert_eq!(
        metric(&app, "procmon_actions_requested_total{kind=\"terminate\"}").await,
        1.0
    );
    assert_eq!(
        metric(&app, "procmon_action_results_total{outcome=\"done\"}").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_is_refused_without_the_role_the_header_the_host_or_the_process() {
    let app = spawn_app().await;
    let otto = operator(&app).await;
    let snapshot = sample_snapshot("host-a", 5);
    ingest(&app, &snapshot).await;
    let target = snapshot.processes[1].clone();
    let body = ask("host-a", &target, "kill", "runaway");

    app.add_user(VIEWER, Role::Viewer, VIEWER_PASSWORD).await;
    let viewer = app.signed_in_client(VIEWER, VIEWER_PASSWORD).await;
    let error = error_of(post_action(&app, &viewer, &body).await, 403).await;
    assert_eq!(error.error, "forbidden");
    assert!(error.message.contains("operator"), "{}", error.message);

    // The operator's cookie, but no CSRF header: what another site's page
    // could make a browser send.
    let no_header = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let signed_in = no_header
        .post(format!("{}/api/session/", app.address))
        .header("x-procmon-csrf", "1")
        .json(&json!({"name": OPERATOR, "password": OPERATOR_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 201);
    let error = error_of(post_action(&app, &no_header, &body).await, 403).await;
    assert_eq!(error.error, "csrf_header_missing");

    let error = error_of(post_action(&app, &app.anonymous(), &body).await, 401).await;
    assert_eq!(error.error, "unauthorized");

    let unknown = ask("host-z", &target, "kill", "runaway");
    let error = error_of(post_action(&app, &otto, &unknown).await, 404).await;
    assert_eq!(error.error, "unknown_host");

    let mut gone = target.clone();
    gone.pid = 999;
    let error = error_of(
        post_action(&app, &otto, &ask("host-a", &gone, "kill", "x")).await,
        409,
    )
    .await;
    assert_eq!(error.error, "no_such_process");
    assert!(
        error.message.contains("no process with pid 999"),
        "{}",
        error.message
    );

    let mut reused = target.clone();
    reused.start_time += Duration::nanoseconds(1);
    let error = error_of(
        post_action(&app, &otto, &ask("host-a", &reused, "kill", "x")).await,
        409,
    )
    .await;
    assert_eq!(error.error, "no_such_process");
    assert!(
        error
            .message
            .contains(&format!("started at {}", target.start_time.to_rfc3339())),
        "{}",
        error.message
    );

    for reason in ["", "   ", &"x".repeat(501)] {
        let error = error_of(
            post_action(&app, &otto, &ask("host-a", &target, "kill", reason)).await,
            422,
        )
        .await;
        assert_eq!(error.error, "invalid_action", "{reason:?}");
    }
    let error = error_of(
        post_action(&app, &otto, &ask("host-a", &target, "reboot", "x")).await,
        422,
    )
    .await;
    assert_eq!(error.error, "schema_mismatch");

    // Nothing of that was asked; an admin may act too.
    assert!(app
        .state
        .actions
        .actions(None, 10, Utc::now())
        .await
        .unwrap()
        .is_empty());
    let response = post_action(&app, &app.client, &ask("host-a", &target, "suspend", "x")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.json::<ActionEntry>().await.unwrap().requested_by,
        crate::common::TEST_USER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_hosts_own_agent_fetches_and_reports_and_only_what_it_may() {
    let app = spawn_app().await;
    let otto = operator(&app).await;
    let snapshot = sample_snapshot("host-a", 3);
    ingest(&app, &snapshot).await;
    ingest(&app, &sample_snapshot("host-b", 3)).await;
    let response = post_action(
        &app,
        &otto,
        &ask("host-a", &snapshot.processes[0], "resume", "go on"),
    )
    .await;
    let asked: ActionEntry = response.json().await.unwrap();
    let id = asked.id.to_string();

    // Another host's agent neither sees it nor can report on it.
    assert!(fetch(&app, "host-b").await.is_empty());
    let done = json!({"code": "done", "message": "sent SIGCONT"});
    let error = error_of(report(&app, "host-b", &id, &done).await, 404).await;
    assert_eq!(error.error, "unknown_action");
    assert_eq!(entry(&app, &id).await.outcome, ActionOutcome::Pending);

    // Its own agent may not report what only the server says, nor at
    // length, nor on an id that is no action.
    let unanswered = json!({"code": "unanswered", "message": ""});
    let error = error_of(report(&app, "host-a", &id, &unanswered).await, 422).await;
    assert_eq!(error.error, "invalid_report");
    let long = json!({"code": "done", "message": "x".repeat(1001)});
    let error = error_of(report(&app, "host-a", &id, &long).await, 422).await;
    assert_eq!(error.error, "invalid_report");
    for other in [uuid::Uuid::new_v4().to_string(), "not-an-id".into()] {
        let error = error_of(report(&app, "host-a", &other, &done).await, 404).await;
        assert_eq!(error.error, "unknown_action");
    }
    let no_key = app
        .anonymous()
        .get(format!("{}/api/agent/actions/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let with_a_session = app
        .client
        .get(format!("{}/api/agent/actions/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(with_a_session.status(), 401, "a person is not an agent");

    let fetched = fetch(&app, "host-a").await;
    assert_eq!(fetched.len(), 1);
    let refused = json!({"code": "not_allowed", "message": "resume is not in the allowlist"});
    assert_eq!(report(&app, "host-a", &id, &refused).await.status(), 204);
    let logged = entry(&app, &id).await;
    assert_eq!(logged.outcome, ActionOutcome::Refused);
    assert_eq!(logged.code, Some(ActionResultCode::NotAllowed));

    // Reads: one unknown, one not an id, limits.
    for missing in [uuid::Uuid::new_v4().to_string(), "nope".into()] {
        let error = error_of(app.get(&format!("/api/actions/{missing}")).await, 404).await;
        assert_eq!(error.error, "unknown_action");
    }
    for limit in ["0", "1001"] {
        let response = app
            .get_with_query("/api/actions/", &[("limit", limit)])
            .await;
        assert_eq!(response.status(), 400, "{limit}");
    }
    let anonymous = app
        .anonymous()
        .get(format!("{}/api/actions/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let viewer_reads = {
        app.add_user(VIEWER, Role::Viewer, VIEWER_PASSWORD).await;
        let viewer = app.signed_in_client(VIEWER, VIEWER_PASSWORD).await;
        viewer
            .get(format!("{}/api/actions/{id}", app.address))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(viewer_reads, 200, "viewers read the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_no_agent_answered_in_time_reads_failed_unanswered() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(Some(Arc::clone(&clock)), |_| {}).await;
    let otto = operator(&app).await;
    let snapshot = sample_snapshot("host-a", 3);
    ingest(&app, &snapshot).await;
    let asked: ActionEntry = post_action(
        &app,
        &otto,
        &ask(
            "host-a",
            &snapshot.processes[1],
            "lower_priority",
            "batch job",
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    clock.advance(Duration::seconds(ACTION_LIFETIME_SECS));

    // Expired: not counted, not handed out, and the log says so.
    let mut later = snapshot.clone();
    later.id = uuid::Uuid::new_v4();
    assert_eq!(ingest(&app, &later).await.pending_actions, 0);
    assert!(fetch(&app, "host-a").await.is_empty());
    let logged = entry(&app, asked.id).await;
    assert_eq!(logged.outcome, ActionOutcome::Failed);
    assert_eq!(logged.code, Some(ActionResultCode::Unanswered));
    assert_eq!(logged.finished_at, Some(asked.expires_at));
    assert_eq!(logged.delivered_at, None);
    assert!(logged.message.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_read_and_act_but_manage_nothing() {
    let app = spawn_app().await;
    // Admins make operators through the API.
    let response = app
        .client
        .post(format!("{}/api/users/", app.address))
        .json(&json!({"name": OPERATOR, "role": "operator", "password": OPERATOR_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.json::<Value>().await.unwrap()["role"], "operator");
    let otto = app.signed_in_client(OPERATOR, OPERATOR_PASSWORD).await;
    ingest(&app, &sample_snapshot("host-a", 2)).await;
    let session: Value = otto
        .get(format!("{}/api/session/", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["role"], "operator");
    for path in [
        "/api/hosts/",
        "/api/processes/?host=host-a",
        "/api/alerts/rules/",
    ] {
        let status = otto
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path}");
    }
    let refused = [
        ("GET", "/api/users/", json!(null)),
        (
            "POST",
            "/api/users/",
            json!({"name": "x", "role": "admin", "password": "password-x1"}),
        ),
        ("GET", "/api/keys/", json!(null)),
        ("POST", "/api/keys/", json!({})),
        ("POST", "/api/enroll-secret/", json!(null)),
        ("DELETE", "/api/hosts/host-a", json!(null)),
        (
            "POST",
            "/api/alerts/rules/",
            json!({"name": "r", "condition": {"kind": "host_offline"}}),
        ),
        (
            "POST",
            "/api/alerts/channels/",
            json!({"name": "c", "kind": {"type": "webhook", "url": "http://127.0.0.1:9/"}}),
        ),
        (
            "POST",
            "/api/alerts/silences/",
            json!({"until": (Utc::now() + Duration::hours(1)).to_rfc3339(), "reason": "r"}),
        ),
        ("GET", "/metrics", json!(null)),
    ];
    for (method, path, body) in refused {
        let mut request = otto.request(method.parse().unwrap(), format!("{}{path}", app.address));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert!(
            status == 403 || (path == "/metrics" && status == 401),
            "{method} {path}: {status} {}",
            response.text().await.unwrap()
        );
    }
    assert_eq!(app.stored_hosts().await, 1, "nothing was removed");
}

/// `procmon-server action-key` prints the key enrolled agents are given,
/// and `users add --role operator` makes an operator, on the database the
/// running server uses (SQLite or PostgreSQL, as the test run says).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_print_the_action_key_and_add_operators() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let url = crate::common::postgres::database_for_api_tests().await;
    let app = crate::common::spawn_app_with(|settings| {
        if let Some(url) = &url {
            settings.database = url.parse().unwrap();
        }
    })
    .await;
    let cli = |args: &[&str], stdin: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_procmon-server"));
        command
            .args(args)
            .arg("--data-dir")
            .arg(app.data_dir.path());
        if let Some(url) = &url {
            command.args(["--database", url]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = cli(&["action-key"], "");
    assert_eq!(printed.trim(), enrolled_key(&app).await);
    assert!(printed.starts_with(KEY_PREFIX), "{printed}");

    cli(
        &[
            "users",
            "add",
            "cli-op",
            "--role",
            "operator",
            "--password-stdin",
        ],
        "operator-pass-2\n",
    );
    let client = app.signed_in_client("cli-op", "operator-pass-2").await;
    let snapshot = sample_snapshot("host-a", 2);
    ingest(&app, &snapshot).await;
    let response = post_action(
        &app,
        &client,
        &ask(
            "host-a",
            &snapshot.processes[1],
            "terminate",
            "from the shell",
        ),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}
