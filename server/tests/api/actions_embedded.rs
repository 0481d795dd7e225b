//! The server's own agent acts on this machine's processes as an enrolled
//! agent does, through the same claim, checks and report, but only what
//! `embedded_agent_actions` lists: real processes, started by the test,
//! really signalled.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use procmon_model::actions::{ActionEntry, ActionOutcome, ActionResultCode};
use procmon_model::{ProcessListing, ProcessSample};
use procmon_server::store::accounts::Role;
use serde_json::json;

use crate::common::{spawn_app_with, TestApp};

/// A `sleep` that outlives the test unless something ends it.
struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sleeper() -> Sleeper {
    Sleeper(
        Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("sleep starts"),
    )
}

/// The server with its own agent sending every 300 ms, allowed `actions`.
async fn app_acting(actions: &[&str]) -> TestApp {
    let actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
    spawn_app_with(move |s| {
        s.embedded_agent = true;
        s.embedded_agent_interval = Duration::from_millis(300);
        s.embedded_agent_actions = actions;
    })
    .await
}

/// This machine's host id and `pid` as its agent reported it, once it has.
async fn reported(app: &TestApp, pid: u32) -> (String, ProcessSample) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(host) = app.state.embedded.get() {
            let response = app.get_processes(host).await;
            if response.status() == 200 {
                let listing: ProcessListing = response.json().await.unwrap();
                if let Some(p) = listing.processes.into_iter().find(|p| p.pid == pid) {
                    return (host.to_owned(), p);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} was not reported in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks `kind` of `process` as an operator; the entry once it is final.
async fn act(
    app: &TestApp,
    client: &reqwest::Client,
    host: &str,
    process: &ProcessSample,
    kind: &str,
) -> ActionEntry {
    let response = client
        .post(format!("{}/api/actions/", app.address))
        .header("X-Procmon-Csrf", "1")
        .json(&json!({
            "host_id": host,
            "pid": process.pid,
            "started_at": process.start_time,
            "kind": kind,
            "reason": "the test asks",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let asked: ActionEntry = response.json().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entry: ActionEntry = app
            .get(&format!("/api/actions/{}", asked.id))
            .await
            .json()
            .await
            .unwrap();
        if !matches!(
            entry.outcome,
            ActionOutcome::Pending | ActionOutcome::Delivered
        ) {
            return entry;
        }
        assert!(Instant::now() < deadline, "no result in 20 s: {entry:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn operator(app: &TestApp) -> reqwest::Client {
    app.add_user("otto", Role::Operator, "operator-pass-1")
        .await;
    app.signed_in_client("otto", "operator-pass-1").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_agent_ends_a_real_process_and_does_only_what_it_may() {
    let app = app_acting(&["terminate"]).await;
    let client = operator(&app).await;
    let mut ended = sleeper();
    let (host, target) = reported(&app, ended.0.id()).await;

    let entry = act(&app, &client, &host, &target, "terminate").await;
    assert_eq!(entry.code, Some(ActionResultCode::Done), "{entry:?}");
    assert_eq!(entry.outcome, ActionOutcome::Done);
    let status = ended.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");

    // Kill is not listed: refused, and the process lives on.
    let mut spared = sleeper();
    let (_, target) = reported(&app, spared.0.id()).await;
    let entry = act(&app, &client, &host, &target, "kill").await;
    assert_eq!(entry.code, Some(ActionResultCode::NotAllowed), "{entry:?}");
    assert_eq!(entry.outcome, ActionOutcome::Refused);
    assert!(
        spared.0.try_wait().unwrap().is_none(),
        "kill was not allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_actions_listed_the_embedded_agent_answers_disabled() {
    let app = app_acting(&[]).await;
    let client = operator(&app).await;
    let mut spared = sleeper();
    let (host, target) = reported(&app, spared.0.id()).await;
    let entry = act(&app, &client, &host, &target, "terminate").await;
    assert_eq!(entry.code, Some(ActionResultCode::Disabled), "{entry:?}");
    assert!(
        entry.message.as_deref().unwrap_or("").contains("enable"),
        "the message says how to turn actions on: {entry:?}"
    );
    assert!(spared.0.try_wait().unwrap().is_none());
}
