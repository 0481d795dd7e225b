//! Alerts that reach people: a real process on this machine, seen by the
//! server's own agent, fires and resolves exactly one notification each at
//! a real local webhook receiver; a silence holds them back; and with two
//! servers on one PostgreSQL database each transition is told once.

use std::process::Command;
use std::time::Duration;

use procmon_model::alerts::{AlertNotification, AlertState};
use serde_json::json;

use crate::channels::make_channel;
use crate::channels::receiver::Receiver;
use crate::common::{postgres, sample_snapshot, spawn_app_on, spawn_app_with, KillOnDrop, TestApp};

/// Enough for the clock's second and a delivery's claim, twice over.
const SETTLE: Duration = Duration::from_secs(3);

async fn make_rule(app: &TestApp, rule: serde_json::Value) {
    let response = app
        .client
        .post(format!("{}/api/alerts/rules/", app.address))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn webhook(app: &TestApp, receiver: &Receiver) -> String {
    make_channel(
        app,
        json!({ "name": "hook", "kind": { "type": "webhook", "url": format!("{}/hook", receiver.base) },
                "secret": "hook-secret" }),
    )
    .await
    .id
}

fn notifications(receiver: &Receiver) -> Vec<AlertNotification> {
    receiver
        .received()
        .iter()
        .map(|r| serde_json::from_value(r.json()).expect("an AlertNotification"))
        .collect()
}

/// Waits for `count` notifications, then as long again as any could take,
/// and answers every one received.
async fn exactly(receiver: &Receiver, count: usize, within: Duration) -> Vec<AlertNotification> {
    receiver.wait_for(count, within).await;
    tokio::time::sleep(SETTLE).await;
    let got = notifications(receiver);
    assert_eq!(
        got.len(),
        count,
        "expected exactly {count} notifications: {got:#?}"
    );
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_process_started_and_killed_fires_and_resolves_one_notification_each() {
    let app = spawn_app_with(|s| {
        s.embedded_agent = true;
        s.embedded_agent_interval = Duration::from_secs(1);
    })
    .await;
    let receiver = Receiver::start().await;
    let channel = webhook(&app, &receiver).await;
    let token = format!("procmon-alert-test-{}", uuid::Uuid::new_v4().simple());
    make_rule(
        &app,
        json!({ "name": "test process runs", "severity": "critical",
                "condition": { "kind": "process_present", "process": { "cmd": { "contains": token } } },
                "channels": [channel] }),
    )
    .await;

    // A process of this machine's, with the token on its command line.
    let child = Command::new("sh")
        .args(["-c", &format!("sleep 600; echo {token}")])
        .spawn()
        .expect("sh starts");
    let pid = child.id();
    let child = KillOnDrop(child);
    let fired = exactly(&receiver, 1, Duration::from_secs(20)).await;
    assert_eq!(fired[0].state, AlertState::Firing);
    assert!(
        fired[0].alert.summary.contains(&format!("(pid {pid})")),
        "{}",
        fired[0].alert.summary
    );
    assert!(fired[0].link.contains("#host="), "{}", fired[0].link);
    let signed = &receiver.received()[0];
    assert!(signed
        .header("x-procmon-signature")
        .is_some_and(|s| s.starts_with("sha256=")));

    drop(child);
    let both = exactly(&receiver, 2, Duration::from_secs(20)).await;
    assert_eq!(both[1].state, AlertState::Resolved);
    assert_eq!(
        both[1].alert.id, both[0].alert.id,
        "one alert, fired and resolved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_alert_tells_nobody() {
    let app = spawn_app_with(|_| {}).await;
    let receiver = Receiver::start().await;
    let channel = webhook(&app, &receiver).await;
    make_rule(
        &app,
        json!({ "name": "proc-1 gone", "channels": [channel],
                "condition": { "kind": "process_absent", "process": { "name": { "equals": "proc-1" } } } }),
    )
    .await;
    let until = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    let response = app
        .client
        .post(format!("{}/api/alerts/silences/", app.address))
        .json(&json!({ "host": "quiet-host", "until": until, "reason": "maintenance" }))
        .send()
        .await
        .unwrap();
    // The host is not known yet: a silence names a host that exists.
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.post_snapshot(&sample_snapshot("quiet-host", 3))
            .await
            .status(),
        201
    );
    let response = app
        .client
        .post(format!("{}/api/alerts/silences/", app.address))
        .json(&json!({ "host": "quiet-host", "until": until, "reason": "maintenance" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // proc-1 stops: the alert fires, silenced.
    let mut gone = sample_snapshot("quiet-host", 3);
    gone.processes.retain(|p| p.pid != 1);
    assert_eq!(app.post_snapshot(&gone).await.status(), 201);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let firing: Vec<procmon_model::alerts::Alert> = app
            .get("/api/alerts/?state=firing")
            .await
            .json()
            .await
            .unwrap();
        if let Some(alert) = firing.first() {
            assert!(alert.silenced_until.is_some());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the alert never fired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(SETTLE).await;
    assert!(
        receiver.received().is_empty(),
        "a silence let a notification through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_tell_each_transition_once() {
    let Some(url) = postgres::fresh_database().await else {
        return;
    };
    let a = spawn_app_on(&url, |_| {}).await;
    let b = spawn_app_on(&url, |_| {}).await;
    let receiver = Receiver::start().await;
    let channel = webhook(&a, &receiver).await;
    // Both servers' clocks will find the `for` run out at once.
    make_rule(
        &a,
        json!({ "name": "proc-1 gone", "channels": [channel], "for_seconds": 2,
                "condition": { "kind": "process_absent", "process": { "name": { "equals": "proc-1" } } } }),
    )
    .await;
    let mut gone = sample_snapshot("shared-host", 3);
    gone.processes.retain(|p| p.pid != 1);
    gone.interval_ms = 60_000;
    assert_eq!(a.post_snapshot(&gone).await.status(), 201);
    let fired = exactly(&receiver, 1, Duration::from_secs(15)).await;
    assert_eq!(fired[0].state, AlertState::Firing);

    // Back, told through the other server.
    let mut back = sample_snapshot("shared-host", 3);
    back.interval_ms = 60_000;
    assert_eq!(b.post_snapshot(&back).await.status(), 201);
    let both = exactly(&receiver, 2, Duration::from_secs(15)).await;
    assert_eq!(both[1].state, AlertState::Resolved);
    assert_ne!(both[0].id, both[1].id);
}

/// A process that stops and is started again every 6 minutes, 10 times in
/// an hour of the server's (manual) clock, with a `for` shorter than its
/// absence: the first 3 times are told as ever, the 4th tells once that it
/// flaps, the others tell nothing, and a quiet hour tells once that it is
/// resolved: 8 notifications, not 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_flapping_for_an_hour_is_told_once_that_it_flaps_and_once_that_it_settled() {
    use chrono::{DateTime, TimeDelta, Utc};
    use procmon_model::alerts::Alert;
    use procmon_server::alerts::flap::FLAP_FIRINGS;
    use procmon_server::clock::ManualClock;
    use std::sync::Arc;

    assert_eq!(FLAP_FIRINGS, 4, "the counts below are for 4");
    let t0: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
    let at = |s: i64| t0 + TimeDelta::seconds(s);
    let clock = Arc::new(ManualClock::new(t0));
    let app = crate::common::spawn_app_with_clock(Some(Arc::clone(&clock)), |_| {}).await;
    let receiver = Receiver::start().await;
    let channel = webhook(&app, &receiver).await;
    make_rule(
        &app,
        json!({ "name": "nginx gone", "channels": [channel], "for_seconds": 10,
                "condition": { "kind": "process_absent", "process": { "name": { "equals": "nginx" } } } }),
    )
    .await;
    let base = procmon_model::fixtures::snapshot_at("web-1", 3, t0);
    let send = |s: i64, nginx: bool| {
        let mut snapshot = base.clone();
        snapshot.id = uuid::Uuid::new_v4();
        snapshot.collected_at = at(s);
        if nginx {
            let mut p = procmon_model::fixtures::process(100, t0);
            p.name = "nginx".into();
            snapshot.processes.push(p);
        }
        clock.set(at(s));
        let app = &app;
        async move {
            let response = app.post_snapshot(&snapshot).await;
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        }
    };
    let open = || async {
        let alerts: Vec<Alert> = app
            .get("/api/alerts/?state=open")
            .await
            .json()
            .await
            .unwrap();
        alerts
    };
    let until = |what: &'static str, done: fn(&[Alert]) -> bool| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = open().await;
            if done(&found) {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never {what}: {found:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    for cycle in 0..10 {
        let from = cycle * 360;
        send(from, false).await;
        until("pending", |a| {
            a.len() == 1 && a[0].state == AlertState::Pending
        })
        .await;
        send(from + 10, false).await;
        let firing = until("firing", |a| {
            a.len() == 1 && a[0].state == AlertState::Firing
        })
        .await;
        // From the 4th firing within the hour on, the page sees it flap.
        assert_eq!(firing[0].flapping, cycle >= 3, "cycle {}", cycle + 1);
        send(from + 60, true).await;
        until("resolved", |a| a.is_empty()).await;
    }
    let flapped = exactly(&receiver, 7, Duration::from_secs(15)).await;
    let kinds = |got: &[AlertNotification]| {
        let count = |state, flapping| {
            got.iter()
                .filter(|n| n.state == state && n.alert.flapping == flapping)
                .count()
        };
        (
            count(AlertState::Firing, false),
            count(AlertState::Resolved, false),
            count(AlertState::Firing, true),
        )
    };
    assert_eq!(kinds(&flapped), (3, 3, 1), "{flapped:#?}");
    // Every flap is still an alert of its own, fired and resolved.
    let all: Vec<Alert> = app
        .get("/api/alerts/?state=resolved")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all.iter().filter(|a| a.flapping).count(), 7);

    // Quiet: the 10th fired at 3250. Within the hour up to 5770 there are
    // still 4 firings (2170 to 3250), so it does not settle yet...
    clock.set(at(5770));
    tokio::time::sleep(SETTLE).await;
    assert_eq!(receiver.received().len(), 7, "settled too soon");
    // ... and an hour after the last, told once, as it is: resolved.
    clock.set(at(3250 + 3600));
    let settled = exactly(&receiver, 8, Duration::from_secs(15)).await;
    assert_eq!(kinds(&settled), (3, 4, 1), "{settled:#?}");
    let last = settled
        .iter()
        .find(|n| n.state == AlertState::Resolved && n.alert.id == all[0].id)
        .expect("the settling tells of the newest alert");
    assert!(!last.alert.flapping);
}
