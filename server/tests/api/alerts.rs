//! Alert rules through the API against a real server: made, checked,
//! versioned; evaluated against the snapshots agents send and by the
//! clock; silenced; previewed against history.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use procmon_model::alerts::{Alert, AlertPreview, AlertRule, AlertState};
use procmon_model::Snapshot;
use procmon_server::clock::ManualClock;
use procmon_server::store::accounts::Role;
use serde_json::{json, Value};

use crate::common::{
    browser_like_client, error_of, metric, spawn_app, spawn_app_with_clock, TestApp, TEST_PASSWORD,
    TEST_USER,
};

/// A time well clear of the real clock's, so nothing else moves it.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn app_at(clock: &Arc<ManualClock>) -> TestApp {
    spawn_app_with_clock(Some(Arc::clone(clock)), |_| {}).await
}

/// A rule on processes named `name`, as `kind` (`process_absent`, ...).
fn on_name(kind: &str, name: &str, for_seconds: u64) -> Value {
    json!({
        "name": format!("{name} {kind}"),
        "severity": "critical",
        "condition": { "kind": kind, "process": { "name": { "equals": name } } },
        "for_seconds": for_seconds,
    })
}

/// `POST path` from the admin's client with `body` as JSON.
async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn make_rule(app: &TestApp, rule: &Value) -> AlertRule {
    let response = post(app, "/api/alerts/rules/", rule).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn alerts(app: &TestApp, state: &str) -> Vec<Alert> {
    let response = app
        .client
        .get(format!("{}/api/alerts/?state={state}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// Waits (at most 10 s) until the alerts of `state` satisfy `done`: each
/// snapshot is evaluated beside its answer, not before it.
async fn until(
    app: &TestApp,
    state: &str,
    what: &str,
    done: impl Fn(&[Alert]) -> bool,
) -> Vec<Alert> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = alerts(app, state).await;
        if done(&found) {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alerts never got to: {what}; they are {found:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A host's snapshot at `at`, with the processes of `base` and a process
/// named `nginx` (pid 100) when `nginx` is true.
fn snapshot(base: &Snapshot, at: DateTime<Utc>, nginx: bool) -> Snapshot {
    let mut s = base.clone();
    s.id = uuid::Uuid::new_v4();
    s.collected_at = at;
    if nginx {
        let mut p = procmon_model::fixtures::process(100, t0());
        p.name = "nginx".into();
        s.processes.push(p);
    }
    s
}

async fn send(app: &TestApp, snapshot: &Snapshot) {
    let response = app.post_snapshot(snapshot).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_rule_is_made_read_versioned_and_deleted() {
    let app = spawn_app().await;
    let rule = make_rule(&app, &on_name("process_absent", "nginx", 30)).await;
    assert_eq!(rule.version, 1);
    assert_eq!(rule.updated_by, TEST_USER);

    let mut changed = on_name("process_absent", "nginx", 60);
    changed["name"] = json!("nginx must run");
    let url = format!("{}/api/alerts/rules/{}", app.address, rule.id);
    let response = app
        .client
        .put(&url)
        .json(&json!({ "version": 1, "rule": changed }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let v2: AlertRule = response.json().await.unwrap();
    assert_eq!((v2.version, v2.spec.for_seconds), (2, 60));

    // A change against version 1 again: someone else changed it since.
    let stale = app
        .client
        .put(&url)
        .json(&json!({ "version": 1, "rule": changed }))
        .send()
        .await
        .unwrap();
    let error = error_of(stale, 409).await;
    assert_eq!(error.error, "rule_changed");
    assert!(error.message.contains("version 2"), "{}", error.message);

    let versions: Vec<AlertRule> = app
        .client
        .get(format!("{url}/versions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<_> = versions
        .iter()
        .map(|v| (v.version, v.spec.name.as_str()))
        .collect();
    assert_eq!(names, [(1, "nginx process_absent"), (2, "nginx must run")]);

    assert_eq!(app.client.delete(&url).send().await.unwrap().status(), 204);
    let gone = app.client.get(&url).send().await.unwrap();
    assert_eq!(error_of(gone, 404).await.error, "unknown_rule");
}

#[tokio::test]
async fn bad_rules_are_refused_with_what_is_wrong() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "name": "x", "condition": { "kind": "process_present", "process": { "name": { "regex": "(" } } } }),
            "process.name.regex is not a valid regular expression",
        ),
        (
            // Compiles to far more than a rule may cost.
            json!({ "name": "x", "condition": { "kind": "process_present", "process": { "cmd": { "regex": "(\\w{500}){500}" } } } }),
            "process.cmd.regex is not a valid regular expression",
        ),
        (
            json!({ "name": "x", "condition": { "kind": "process_present", "process": {} } }),
            "give at least one of name, exe, cmd, user",
        ),
        (
            json!({ "name": " ", "condition": { "kind": "host_offline" } }),
            "name is empty",
        ),
        (
            json!({ "name": "x", "condition": { "kind": "process_count", "process": { "name": { "equals": "a" } }, "min": 3, "max": 1 } }),
            "min (3) is above max (1)",
        ),
        (
            json!({ "name": "x", "condition": { "kind": "host_above", "metric": "cpu_percent", "above": 50.0, "clear_below": 80.0 } }),
            "clear_below (80) is above the threshold (50)",
        ),
        (
            json!({ "name": "x", "repeat_seconds": 5, "condition": { "kind": "host_offline" } }),
            "repeat_seconds is under 60",
        ),
    ];
    for (rule, expected) in cases {
        let response = post(&app, "/api/alerts/rules/", &rule).await;
        let error = error_of(response, 422).await;
        assert_eq!(error.error, "invalid_rule", "{rule}");
        assert!(
            error.message.contains(expected),
            "{rule}: {}",
            error.message
        );
    }
    // Unknown kinds and fields are named by the schema check.
    let response = app
        .client
        .post(format!("{}/api/alerts/rules/", app.address))
        .json(&json!({ "name": "x", "condition": { "kind": "process_gone" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response, 422).await.error, "schema_mismatch");
    assert!(app.state.alerts.store().rules().await.unwrap().is_empty());
}

#[tokio::test]
async fn only_admins_change_rules_and_only_with_the_csrf_header() {
    let app = spawn_app().await;
    app.add_user("watcher", Role::Viewer, "watcher-password")
        .await;
    let viewer = app.signed_in_client("watcher", "watcher-password").await;
    let rule = on_name("process_absent", "nginx", 0);
    let response = viewer
        .post(format!("{}/api/alerts/rules/", app.address))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response, 403).await.error, "forbidden");
    // A viewer reads them.
    let response = viewer
        .get(format!("{}/api/alerts/rules/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // An admin's session without the header (a cross-site form) is refused.
    let signed_in = app
        .sign_in_with(&browser_like_client(), TEST_USER, TEST_PASSWORD)
        .await;
    let set = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = set.split_once(';').unwrap().0.to_owned();
    let response = reqwest::Client::new()
        .post(format!("{}/api/alerts/rules/", app.address))
        .header("cookie", cookie)
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response, 403).await.error, "csrf_header_missing");
    let anonymous = app
        .anonymous()
        .get(format!("{}/api/alerts/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_process_that_stops_fires_once_and_resolves_once_when_it_is_back() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    let rule = make_rule(&app, &on_name("process_absent", "nginx", 10)).await;
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, t0());

    send(&app, &snapshot(&base, t0(), true)).await;
    clock.set(t0() + TimeDelta::seconds(5));
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(5), false)).await;
    let pending = until(&app, "open", "pending", |a| a.len() == 1).await;
    assert_eq!(pending[0].state, AlertState::Pending);
    assert_eq!(pending[0].rule_id, rule.id);
    assert!(
        pending[0]
            .summary
            .contains("no matching process runs on web-1-name"),
        "{}",
        pending[0].summary
    );

    // Still gone at +15 s: 10 s since it went, the rule's `for`.
    clock.set(t0() + TimeDelta::seconds(15));
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(15), false)).await;
    let firing = until(&app, "firing", "firing", |a| a.len() == 1).await;
    assert_eq!(firing[0].since, t0() + TimeDelta::seconds(5));
    assert_eq!(firing[0].fired_at, Some(t0() + TimeDelta::seconds(15)));

    clock.set(t0() + TimeDelta::seconds(20));
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(20), true)).await;
    let resolved = until(&app, "resolved", "resolved", |a| a.len() == 1).await;
    assert_eq!(resolved[0].resolved_at, Some(t0() + TimeDelta::seconds(20)));
    assert!(alerts(&app, "open").await.is_empty());
    // One alert in all, fired and resolved.
    assert_eq!(alerts(&app, "all").await.len(), 1);
}

#[tokio::test]
async fn a_process_flapping_within_the_for_window_raises_nothing() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    make_rule(&app, &on_name("process_absent", "nginx", 30)).await;
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, t0());
    // Running, gone, running, ... and running at the end.
    for step in 0..7 {
        let at = t0() + TimeDelta::seconds(step * 5);
        clock.set(at);
        let running = step % 2 == 0;
        send(&app, &snapshot(&base, at, running)).await;
        // Each observation is applied before the next is sent.
        until(
            &app,
            "open",
            if running { "none open" } else { "one pending" },
            |a| {
                a.len() == usize::from(!running) && a.iter().all(|a| a.state == AlertState::Pending)
            },
        )
        .await;
    }
    // The clock runs on past every `for`: the last snapshot has nginx, so
    // nothing is pending and nothing fires.
    clock.set(t0() + TimeDelta::seconds(120));
    tokio::time::sleep(procmon_server::alerts::RELOAD_EVERY * 3).await;
    assert!(alerts(&app, "all").await.is_empty(), "a flap left a trace");
}

#[tokio::test]
async fn the_clock_fires_a_pending_alert_when_its_for_runs_out_between_snapshots() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    make_rule(&app, &on_name("process_absent", "nginx", 3)).await;
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, t0());
    send(&app, &snapshot(&base, t0(), false)).await;
    until(&app, "pending", "pending", |a| a.len() == 1).await;
    // The host goes on reporting (it is online), just not in this window.
    clock.set(t0() + TimeDelta::seconds(4));
    let fired = until(&app, "firing", "fired by the clock", |a| a.len() == 1).await;
    assert_eq!(fired[0].fired_at, Some(t0() + TimeDelta::seconds(4)));
}

#[tokio::test]
async fn a_host_gone_quiet_fires_and_resolves_when_it_reports_again() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    make_rule(
        &app,
        &json!({ "name": "host down", "condition": { "kind": "host_offline" }, "for_seconds": 0 }),
    )
    .await;
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, t0());
    send(&app, &snapshot(&base, t0(), true)).await;
    // Three 2-s intervals and more: offline.
    clock.set(t0() + TimeDelta::seconds(30));
    let firing = until(&app, "firing", "offline", |a| a.len() == 1).await;
    assert_eq!(firing[0].host_id, "web-1");
    assert!(
        firing[0].summary.contains("has sent nothing for 30s"),
        "{}",
        firing[0].summary
    );
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(30), true)).await;
    until(&app, "resolved", "back", |a| a.len() == 1).await;
}

#[tokio::test]
async fn a_process_over_its_cpu_threshold_alerts_on_its_own_until_it_exits() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    make_rule(
        &app,
        &json!({
            "name": "runaway",
            "condition": {
                "kind": "process_above", "process": { "user": { "equals": "root" } },
                "metric": "cpu_percent", "above": 90.0, "clear_below": 50.0,
            },
        }),
    )
    .await;
    let mut base = procmon_model::fixtures::snapshot_at("web-1", 3, t0());
    base.processes[1].cpu_percent = 180.0;
    send(&app, &snapshot(&base, t0(), false)).await;
    let firing = until(&app, "firing", "pid 2 firing", |a| a.len() == 1).await;
    let process = firing[0]
        .process
        .as_ref()
        .expect("the alert names its process");
    assert_eq!(process.pid, 2);
    assert!(
        firing[0].summary.contains("CPU 180% (above 90%)"),
        "{}",
        firing[0].summary
    );

    // Down to 70%: above the clearing level, so it stays (hysteresis).
    base.processes[1].cpu_percent = 70.0;
    clock.set(t0() + TimeDelta::seconds(2));
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(2), false)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alerts(&app, "firing").await.len(), 1);

    // It exits: resolved.
    base.processes.remove(1);
    clock.set(t0() + TimeDelta::seconds(4));
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(4), false)).await;
    until(&app, "resolved", "resolved once it exited", |a| {
        a.len() == 1
    })
    .await;
}

#[tokio::test]
async fn a_silence_marks_alerts_and_ends() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    let rule = make_rule(&app, &on_name("process_absent", "nginx", 0)).await;
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, t0());
    send(&app, &snapshot(&base, t0(), true)).await;
    let response = app
        .client
        .post(format!("{}/api/alerts/silences/", app.address))
        .json(&json!({
            "rule_id": rule.id, "host": "web-1-name",
            "until": (t0() + TimeDelta::hours(1)).to_rfc3339(), "reason": "deploying",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let silence: procmon_model::alerts::Silence = response.json().await.unwrap();
    assert_eq!(
        silence.host_id.as_deref(),
        Some("web-1"),
        "the hostname names the host"
    );

    clock.set(t0() + TimeDelta::seconds(5));
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(5), false)).await;
    let firing = until(&app, "firing", "firing, silenced", |a| a.len() == 1).await;
    assert_eq!(firing[0].silenced_until, Some(t0() + TimeDelta::hours(1)));

    // Bad silences say what is wrong.
    for (body, expected) in [
        (
            json!({ "until": t0().to_rfc3339(), "reason": "x" }),
            "must be after",
        ),
        (
            json!({ "until": (t0() + TimeDelta::hours(1)).to_rfc3339(), "reason": " " }),
            "reason must say why",
        ),
    ] {
        let response = post(&app, "/api/alerts/silences/", &body).await;
        let error = error_of(response, 422).await;
        assert!(error.message.contains(expected), "{}", error.message);
    }
    let response = app
        .client
        .delete(format!(
            "{}/api/alerts/silences/{}",
            app.address, silence.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    // Ended: the alert shows it at once, though it has not changed since.
    assert_eq!(alerts(&app, "firing").await[0].silenced_until, None);
    let response = app
        .client
        .get(format!("{}/api/alerts/silences/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Vec<Value>>().await.unwrap().len(), 0);
}

#[tokio::test]
async fn the_preview_shows_what_matches_now_and_what_would_have_fired_today() {
    let app = spawn_app().await;
    let now = Utc::now();
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, now - TimeDelta::hours(2));
    // nginx runs, stops for 20 minutes an hour ago, then runs again.
    send(&app, &snapshot(&base, now - TimeDelta::hours(2), true)).await;
    send(&app, &snapshot(&base, now - TimeDelta::minutes(60), false)).await;
    let mut back = snapshot(&base, now - TimeDelta::minutes(40), false);
    let mut nginx = procmon_model::fixtures::process(200, now - TimeDelta::minutes(40));
    nginx.name = "nginx".into();
    back.processes.push(nginx);
    send(&app, &back).await;

    let response = app
        .client
        .post(format!("{}/api/alerts/preview/", app.address))
        .json(&on_name("process_absent", "nginx", 300))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let preview: AlertPreview = response.json().await.unwrap();
    assert_eq!(preview.now.len(), 1);
    let host = &preview.now[0];
    assert_eq!((host.count, host.holds), (1, false));
    assert_eq!(host.matching[0].pid, 200);
    // Gone at -60 min, `for` 5 min: it would have fired at -55 and
    // resolved at -40.
    assert_eq!(preview.history.len(), 1, "{:?}", preview.history);
    let fired = &preview.history[0];
    let near = |a: DateTime<Utc>, b: DateTime<Utc>| (a - b).num_milliseconds().abs() < 1000;
    assert!(
        near(fired.fired_at, now - TimeDelta::minutes(55)),
        "{fired:?}"
    );
    assert!(
        near(fired.resolved_at.unwrap(), now - TimeDelta::minutes(40)),
        "{fired:?}"
    );
    // A preview stores nothing.
    assert!(app.state.alerts.store().rules().await.unwrap().is_empty());
}

#[tokio::test]
async fn change_batches_are_evaluated_as_whole_snapshots_are() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    make_rule(&app, &on_name("process_absent", "nginx", 0)).await;
    make_rule(
        &app,
        &json!({ "name": "many bash", "condition": { "kind": "process_count",
            "process": { "cmd": { "contains": "--worker" } }, "max": 1 } }),
    )
    .await;
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, t0());
    let mut previous = snapshot(&base, t0(), true);
    send(&app, &previous).await;
    let mut step = 0;
    // Sends the next snapshot as the change batch from the previous one.
    let mut batch = |change: &dyn Fn(&mut Snapshot)| {
        step += 1;
        let at = t0() + TimeDelta::seconds(2 * step);
        let mut next = previous.clone();
        next.id = uuid::Uuid::new_v4();
        next.collected_at = at;
        change(&mut next);
        let batch = procmon_model::changes::diff(&previous, &next);
        previous = next;
        clock.set(at);
        batch
    };
    let quiet = batch(&|_| {});
    assert_eq!(app.post_changes(&quiet).await.status(), 201);
    // nginx exits.
    let exit = batch(&|s| s.processes.retain(|p| p.name != "nginx"));
    assert_eq!(app.post_changes(&exit).await.status(), 201);
    until(&app, "firing", "nginx absent", |a| a.len() == 1).await;
    // Two workers start: a count rule matched on the command line.
    let workers = batch(&|s| {
        for pid in [300, 301] {
            let mut p = procmon_model::fixtures::process(pid, t0());
            p.cmd.push("--worker".into());
            s.processes.push(p);
        }
    });
    assert_eq!(app.post_changes(&workers).await.status(), 201);
    until(&app, "firing", "two alerts", |a| a.len() == 2).await;
    // One worker's command line changes so it no longer matches, and
    // nginx is back: both resolve.
    let back = batch(&|s| {
        let p = s.processes.iter_mut().find(|p| p.pid == 301).unwrap();
        p.cmd.pop();
        let mut nginx = procmon_model::fixtures::process(100, t0());
        nginx.name = "nginx".into();
        s.processes.push(nginx);
    });
    assert_eq!(app.post_changes(&back).await.status(), 201);
    until(&app, "resolved", "both resolved", |a| a.len() == 2).await;
    assert!(alerts(&app, "open").await.is_empty());
}

#[tokio::test]
async fn metrics_count_open_alerts_and_evaluations() {
    const FIRING: &str = r#"procmon_alerts_open{state="firing",severity="critical"}"#;
    const PENDING: &str = r#"procmon_alerts_open{state="pending",severity="critical"}"#;
    const EVALUATED: &str = r#"procmon_alert_evaluations_total{outcome="ok"}"#;
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    assert_eq!(metric(&app, FIRING).await, 0.0);
    make_rule(&app, &on_name("process_absent", "nginx", 10)).await;
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, t0());

    send(&app, &snapshot(&base, t0(), false)).await;
    until(&app, "open", "pending", |a| a.len() == 1).await;
    assert_eq!(metric(&app, PENDING).await, 1.0);
    assert_eq!(metric(&app, FIRING).await, 0.0);

    clock.set(t0() + TimeDelta::seconds(10));
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(10), false)).await;
    until(&app, "firing", "firing", |a| a.len() == 1).await;
    assert_eq!(metric(&app, PENDING).await, 0.0);
    assert_eq!(metric(&app, FIRING).await, 1.0);

    clock.set(t0() + TimeDelta::seconds(20));
    send(&app, &snapshot(&base, t0() + TimeDelta::seconds(20), true)).await;
    until(&app, "resolved", "resolved", |a| a.len() == 1).await;
    assert_eq!(metric(&app, FIRING).await, 0.0);
    // Each of the three snapshots was evaluated (an alert moved on each),
    // and none failed. (An evaluation is counted once it has returned,
    // just after its writes show.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(&app, EVALUATED).await < 3.0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&app, EVALUATED).await, 3.0);
    assert_eq!(
        metric(&app, r#"procmon_alert_evaluations_total{outcome="error"}"#).await,
        0.0
    );
    assert_eq!(
        metric(&app, "procmon_alert_evaluation_seconds_count").await,
        3.0
    );
}

#[tokio::test]
async fn a_rule_on_host_labels_fires_only_on_hosts_carrying_them() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_at(&clock).await;
    let mut on_prod = on_name("process_absent", "nginx", 0);
    on_prod["name"] = json!("nginx absent on prod");
    on_prod["host_labels"] = json!(["prod"]);
    let on_prod = make_rule(&app, &on_prod).await;
    assert_eq!(on_prod.spec.host_labels, ["prod"]);
    // The same rule on every host: once it fires on a host, that host's
    // snapshot has been evaluated, so what the labelled rule did not
    // raise there it will not.
    let everywhere = make_rule(&app, &on_name("process_absent", "nginx", 0)).await;

    let mut prod = procmon_model::fixtures::snapshot_at("web-1", 3, t0());
    prod.host.labels = vec!["prod".into(), "role=web".into()];
    let mut staging = procmon_model::fixtures::snapshot_at("web-2", 3, t0());
    staging.host.labels = vec!["staging".into()];
    let bare = procmon_model::fixtures::snapshot_at("web-3", 3, t0());
    for base in [&staging, &bare, &prod] {
        send(&app, &snapshot(base, t0(), false)).await;
    }
    let firing = until(&app, "firing", "four alerts", |a| a.len() == 4).await;
    let hosts_of = |rule: &AlertRule| {
        let mut hosts: Vec<&str> = firing
            .iter()
            .filter(|a| a.rule_id == rule.id)
            .map(|a| a.host_id.as_str())
            .collect();
        hosts.sort();
        hosts
    };
    assert_eq!(hosts_of(&everywhere), ["web-1", "web-2", "web-3"]);
    assert_eq!(hosts_of(&on_prod), ["web-1"]);

    // The hosts list says what each carries, and the preview scopes by
    // the stored labels as evaluation does.
    let hosts: Value = app.get_hosts().await.json().await.unwrap();
    let labels_of = |id: &str| {
        hosts
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"]["id"] == id)
            .map(|h| h["host"]["labels"].clone())
    };
    assert_eq!(labels_of("web-1"), Some(json!(["prod", "role=web"])));
    assert_eq!(
        labels_of("web-3"),
        Some(Value::Null),
        "none sent, none shown"
    );
    let response = post(&app, "/api/alerts/preview/", &json!(on_prod.spec)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let preview: AlertPreview = response.json().await.unwrap();
    let previewed: Vec<&str> = preview.now.iter().map(|h| h.host_id.as_str()).collect();
    assert_eq!(previewed, ["web-1"]);

    // A label no host could carry is refused, named.
    let mut bad = on_name("process_absent", "nginx", 0);
    bad["host_labels"] = json!(["prod", "two words"]);
    let error = error_of(post(&app, "/api/alerts/rules/", &bad).await, 422).await;
    assert!(
        error.message.contains("host_labels has \"two words\""),
        "{}",
        error.message
    );
}
