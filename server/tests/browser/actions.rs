//! Acting on a process from the page: the buttons in its details (for
//! operators and admins, on a live tree of an online host), the
//! confirmation that names the process and asks why, the result followed
//! in the details, and the actions log.
//!
//! Screenshots (`actions-*`) go to `PROCMON_SCREENSHOT_DIR`, or else to
//! `target/screenshots/`.

use super::*;
use chrono::Duration as TimeDelta;

/// The host of the tests that post their own snapshots.
const HOST: &str = "act-web";
const OPERATOR: &str = "olga";
const OPERATOR_PASSWORD: &str = "operator-pass-1";
const VIEWER: &str = "vic";
const VIEWER_PASSWORD: &str = "viewer-pass-1";

/// A snapshot of [`HOST`] with processes 1 to 5, taken `ago` before now.
/// It promises the next in a minute, so the host stays online while a test
/// runs without more.
fn snapshot_taken(ago: TimeDelta) -> Snapshot {
    let mut snapshot = procmon_model::fixtures::snapshot_at(HOST, 5, Utc::now() - ago);
    snapshot.interval_ms = 60_000;
    snapshot
}

/// Opens the page on [`HOST`] signed in as `name`, and selects process `pid`.
async fn open_and_select(page: &Client, app: &TestApp, name: &str, password: &str, pid: u32) {
    page.goto(&format!("{}/#host={HOST}", app.address))
        .await
        .unwrap();
    fill_sign_in(page, name, password).await;
    select_process(page, pid).await;
}

async fn select_process(page: &Client, pid: u32) {
    click(page, &format!("{} .name", row_selector(pid))).await;
    wait_for_element(page, &format!("{}.selected", row_selector(pid))).await;
    wait_for_element(page, "#details:not([hidden])").await;
    eventually(
        page,
        "the details of the process",
        "return document.querySelector('#details .field-pid').textContent;",
        |v| v.as_str() == Some(pid.to_string().as_str()),
    )
    .await;
}

/// The actions log as the server has it, read by the test's admin.
async fn audit_log(app: &TestApp) -> Vec<Value> {
    let response = app.get("/api/actions/").await;
    assert_eq!(response.status(), 200, "GET /api/actions/");
    response.json().await.unwrap()
}

/// How many of the action buttons show.
async fn shown_action_buttons(page: &Client) -> usize {
    count(page, "#process-actions:not([hidden]) button[data-kind]").await
}

/// A viewer selects a process and finds no way to act on it, but reads
/// the actions log: an admin's action is listed, and so are its reason
/// and who asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_a_viewer_sees_no_action_buttons_but_reads_the_log() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    app.add_user(VIEWER, Role::Viewer, VIEWER_PASSWORD).await;
    let snapshot = snapshot_taken(TimeDelta::zero());
    post_snapshot(&app, &snapshot).await;
    // The test's admin asks the API itself: no agent will ever fetch it.
    let response = app
        .client
        .post(format!("{}/api/actions/", app.address))
        .json(&json!({
            "host_id": HOST, "pid": 2, "started_at": snapshot.processes[1].start_time,
            "kind": "lower_priority", "reason": "batch job, not urgent",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());

    with_browser(1280, 900, move |page| async move {
        open_and_select(&page, &app, VIEWER, VIEWER_PASSWORD, 3).await;
        assert_eq!(text_of(&page, "#details .details-title").await, "proc-3");
        assert_eq!(
            shown_action_buttons(&page).await,
            0,
            "a viewer is offered actions"
        );
        assert_eq!(count(&page, "#action-hint:not([hidden])").await, 0);
        assert_eq!(count(&page, "#action-result:not([hidden])").await, 0);

        click(&page, "#actions-open:not([hidden])").await;
        let row = "#actions-panel:not([hidden]) #actions-rows tr[data-outcome='pending']";
        wait_for_element(&page, row).await;
        assert_eq!(
            text_of(&page, &format!("{row} .audit-who")).await,
            TEST_USER
        );
        assert_eq!(
            text_of(&page, &format!("{row} .audit-kind")).await,
            "Lower priority"
        );
        assert_eq!(
            text_of(&page, &format!("{row} .audit-reason")).await,
            "batch job, not urgent"
        );
        save_screenshot(&page, "actions-viewer").await;
    })
    .await;
}

/// The confirmation names the process, its user and its host and says what
/// the action does; its button stays disabled until a reason is typed;
/// Cancel and Escape close it and nothing is asked. Actions are offered on
/// the live tree only: neither on the past nor on an offline host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_the_confirmation_needs_a_reason_and_cancel_sends_nothing() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    app.add_user(OPERATOR, Role::Operator, OPERATOR_PASSWORD)
        .await;
    // Two minutes old, so the tree can be shown as it was a minute ago.
    post_snapshot(&app, &snapshot_taken(TimeDelta::minutes(2))).await;

    with_browser(1280, 900, move |page| async move {
        open_and_select(&page, &app, OPERATOR, OPERATOR_PASSWORD, 3).await;
        assert_eq!(shown_action_buttons(&page).await, 5);
        let labels = page
            .execute(
                "return [...document.querySelectorAll('#process-actions button')].map(b => b.textContent);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(labels, json!(["End", "Kill", "Suspend", "Resume", "Lower priority"]));

        click(&page, "#action-kill").await;
        wait_for_element(&page, "#action-dialog[open]").await;
        assert_eq!(text_of(&page, "#action-dialog-title").await, "Kill “proc-3” (pid 3)?");
        assert_eq!(text_of(&page, "#action-dialog-process").await, "proc-3 (pid 3)");
        assert_eq!(text_of(&page, "#action-dialog-user").await, "root");
        assert_eq!(text_of(&page, "#action-dialog-host").await, format!("{HOST}-name"));
        let effect = text_of(&page, "#action-dialog-effect").await;
        assert!(effect.starts_with("Kill ends it at once, without letting it save its work"), "{effect}");
        assert_eq!(text_of(&page, "#action-confirm").await, "Kill");
        assert_eq!(focused(&page).await, "action-reason", "focus starts in the reason");
        assert!(is_disabled(&page, "#action-confirm").await, "confirmable with no reason");

        // Spaces are no reason; a word is; taken away again, none.
        let reason = page.find(Locator::Css("#action-reason")).await.unwrap();
        reason.send_keys("   ").await.unwrap();
        assert!(is_disabled(&page, "#action-confirm").await, "confirmable with a blank reason");
        reason.send_keys("runaway").await.unwrap();
        assert!(!is_disabled(&page, "#action-confirm").await, "a reason is typed");
        save_screenshot(&page, "actions-dialog").await;
        reason.clear().await.unwrap();
        page.execute(
            "document.getElementById('action-reason').dispatchEvent(new Event('input'));",
            vec![],
        )
        .await
        .unwrap();
        assert!(is_disabled(&page, "#action-confirm").await, "the reason was taken away");

        // Cancel closes it, focus goes back to the button that opened it.
        reason.send_keys("changed my mind").await.unwrap();
        click(&page, "#action-cancel").await;
        wait_until_gone(&page, "#action-dialog[open]").await;
        assert_eq!(focused(&page).await, "action-kill");
        // Escape does too, and a dialog opened again starts empty.
        click(&page, "#action-terminate").await;
        wait_for_element(&page, "#action-dialog[open]").await;
        assert_eq!(text_of(&page, "#action-confirm").await, "End");
        let value = page
            .execute("return document.getElementById('action-reason').value;", vec![])
            .await
            .unwrap();
        assert_eq!(value, json!(""));
        let reason = page.find(Locator::Css("#action-reason")).await.unwrap();
        reason.send_keys("not this one").await.unwrap();
        reason.send_keys("\u{e00c}").await.unwrap(); // Escape
        wait_until_gone(&page, "#action-dialog[open]").await;
        assert_eq!(count(&page, "#action-result:not([hidden])").await, 0);

        // Nothing was asked: the log says so, and so does the server.
        click(&page, "#actions-open:not([hidden])").await;
        wait_for_element(&page, "#actions-empty:not([hidden])").await;
        assert_eq!(audit_log(&app).await, Vec::<Value>::new());
        let asked = resource_count(&page, "/api/actions/").await;
        let posted = page
            .execute(
                "return performance.getEntriesByType('resource')
                   .filter(e => e.name.endsWith('/api/actions/') && e.initiatorType === 'fetch').length;",
                vec![],
            )
            .await
            .unwrap();
        assert!(asked >= 1, "the log was read");
        assert_eq!(posted, json!(0), "an action was posted");
        click(&page, "#actions-close").await;

        // The tree as it was a minute ago: no actions, and why.
        page.execute(
            "location.hash += '&at=' + new Date(Date.now() - 60000).toISOString();",
            vec![],
        )
        .await
        .unwrap();
        wait_for_element(&page, "#action-hint:not([hidden])").await;
        assert_eq!(shown_action_buttons(&page).await, 0, "actions offered on the past");
        assert!(text_of(&page, "#action-hint").await.contains("live tree"));
        save_screenshot(&page, "actions-past").await;

        // A host gone offline: no actions either (its agent would never
        // fetch them), and why.
        let mut gone = procmon_model::fixtures::snapshot_at("act-gone", 3, Utc::now());
        gone.interval_ms = 100;
        post_snapshot(&app, &gone).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        page.goto(&format!("{}/#host=act-gone", app.address))
            .await
            .unwrap();
        select_process(&page, 2).await;
        wait_for_element(&page, "#action-hint:not([hidden])").await;
        assert!(text_of(&page, "#action-hint").await.contains("offline"));
        assert_eq!(shown_action_buttons(&page).await, 0, "actions offered on an offline host");
    })
    .await;
}

/// An operator ends a process on a host whose agent never fetches it: the
/// details say it waits for the agent and the log lists who asked and why.
/// A process that restarted while the confirmation was open is refused with
/// the server's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_an_asked_action_waits_for_the_agent_and_a_changed_process_is_refused() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    app.add_user(OPERATOR, Role::Operator, OPERATOR_PASSWORD)
        .await;
    let snapshot = snapshot_taken(TimeDelta::zero());
    post_snapshot(&app, &snapshot).await;

    with_browser(1280, 900, move |page| async move {
        open_and_select(&page, &app, OPERATOR, OPERATOR_PASSWORD, 3).await;
        click(&page, "#action-terminate").await;
        let reason = wait_for_element(&page, "#action-dialog[open] #action-reason").await;
        reason.send_keys("stuck since the deploy").await.unwrap();
        click(&page, "#action-confirm:not(:disabled)").await;
        wait_until_gone(&page, "#action-dialog[open]").await;
        wait_for_element(&page, "#action-result[data-outcome='pending']").await;
        assert_eq!(
            text_of(&page, "#action-result .action-result-kind").await,
            "End:"
        );
        assert_eq!(
            text_of(&page, "#action-result .action-result-text").await,
            "Waiting for the agent…"
        );

        let log = audit_log(&app).await;
        assert_eq!(log.len(), 1, "{log:?}");
        let entry = &log[0];
        assert_eq!(entry["requested_by"], OPERATOR);
        assert_eq!(entry["reason"], "stuck since the deploy");
        assert_eq!(entry["kind"], "terminate");
        assert_eq!(entry["pid"], 3);
        assert_eq!(entry["host_id"], HOST);
        assert_eq!(entry["hostname"], format!("{HOST}-name"));
        assert_eq!(entry["process_name"], "proc-3");
        assert_eq!(entry["process_user"], "root");
        assert_eq!(entry["outcome"], "pending");
        let started = &snapshot.processes[2].start_time;
        assert_eq!(
            entry["started_at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok()),
            Some(started.fixed_offset()),
            "the start time the snapshot gave"
        );

        // The log lists it, narrowed to this host too.
        click(&page, "#actions-open:not([hidden])").await;
        let row = format!(
            "#actions-rows tr[data-id='{}']",
            entry["id"].as_str().unwrap()
        );
        wait_for_element(&page, &row).await;
        assert_eq!(text_of(&page, &format!("{row} .audit-who")).await, OPERATOR);
        assert_eq!(
            text_of(&page, &format!("{row} .audit-host")).await,
            format!("{HOST}-name")
        );
        assert_eq!(
            text_of(&page, &format!("{row} .audit-process")).await,
            "proc-3 (pid 3)user root"
        );
        assert_eq!(text_of(&page, &format!("{row} .audit-kind")).await, "End");
        assert_eq!(
            text_of(&page, &format!("{row} .audit-reason")).await,
            "stuck since the deploy"
        );
        assert_eq!(
            text_of(&page, &format!("{row} .audit-outcome")).await,
            "waiting for the agent"
        );
        click(&page, "#actions-host-only").await;
        wait_for_element(&page, &row).await;
        save_screenshot(&page, "actions-pending").await;
        click(&page, "#actions-close").await;

        // Process 4 restarts while its confirmation is open: refused, and why.
        select_process(&page, 4).await;
        click(&page, "#action-suspend").await;
        let reason = wait_for_element(&page, "#action-dialog[open] #action-reason").await;
        let mut restarted = later(&snapshot);
        restarted.processes[3].start_time = restarted.collected_at;
        post_snapshot(&app, &restarted).await;
        reason.send_keys("hogs the disk").await.unwrap();
        click(&page, "#action-confirm:not(:disabled)").await;
        wait_for_element(&page, "#action-result[data-outcome='error']").await;
        let said = text_of(&page, "#action-result .action-result-text").await;
        assert!(said.contains("pid 4"), "the server's message: {said}");
        assert_eq!(
            audit_log(&app).await.len(),
            1,
            "the refused action is not logged"
        );
        save_screenshot(&page, "actions-refused").await;

        // On a phone the confirmation fits the screen, over the details sheet.
        select_process(&page, 5).await;
        page.set_window_size(390, 844).await.unwrap();
        click(&page, "#action-kill").await;
        wait_for_element(&page, "#action-dialog[open]").await;
        let fits = page
            .execute(
                "const r = document.getElementById('action-dialog').getBoundingClientRect();
                 return r.left >= 0 && r.right <= innerWidth && r.top >= 0 && r.bottom <= innerHeight;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, json!(true), "the confirmation overflows a phone's screen");
        save_screenshot(&page, "actions-phone").await;
    })
    .await;
}

/// The check, end to end: a real `sleep 600` on this machine, the
/// real agent code reporting it (enrolled, so it pins the server's key,
/// with actions enabled in its config file), an operator who selects it on
/// the page, ends it with a reason, sees it done and the process exit, and
/// finds who, why and the result in the actions log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_an_operator_ends_a_real_process_and_the_log_says_who_why_and_how() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    app.add_user(OPERATOR, Role::Operator, OPERATOR_PASSWORD)
        .await;
    let sleeper = Sleeper::start();
    let pid = sleeper.pid;
    let agent = ActingAgent::start(&app).await;
    let (host_id, process) = agent.wait_for_process(&app, pid).await;
    let hostname = agent.hostname(&app).await;
    let user = process["user"]
        .as_str()
        .expect("the agent reads its own processes' user")
        .to_owned();

    let address = app.address.clone();
    with_browser(1280, 1000, move |page| async move {
        page.goto(&format!("{address}/#host={host_id}")).await.unwrap();
        fill_sign_in(&page, OPERATOR, OPERATOR_PASSWORD).await;
        let row = row_selector(pid);
        let search = wait_for_element(&page, "#search").await;
        search.send_keys(&pid.to_string()).await.unwrap();
        click(&page, &format!("{row}:not(.context) .name")).await;
        wait_for_element(&page, &format!("{row}.selected")).await;
        wait_for_element(&page, "#process-actions:not([hidden]) #action-terminate").await;
        save_screenshot(&page, "actions-details").await;

        click(&page, "#action-terminate").await;
        wait_for_element(&page, "#action-dialog[open]").await;
        assert_eq!(text_of(&page, "#action-dialog-process").await, format!("sleep (pid {pid})"));
        assert_eq!(text_of(&page, "#action-dialog-user").await, user);
        assert_eq!(text_of(&page, "#action-dialog-host").await, hostname);
        assert!(text_of(&page, "#action-dialog-effect").await.contains("SIGTERM"));
        assert!(is_disabled(&page, "#action-confirm").await);
        page.find(Locator::Css("#action-reason"))
            .await
            .unwrap()
            .send_keys("left over from a test run")
            .await
            .unwrap();
        save_screenshot(&page, "actions-confirm").await;
        click(&page, "#action-confirm:not(:disabled)").await;
        wait_until_gone(&page, "#action-dialog[open]").await;

        // Waiting for the agent, then done with its message.
        eventually(&page, "the action followed", "return document.getElementById('action-result').dataset.outcome;", |v| {
            matches!(v.as_str(), Some("asking" | "pending" | "delivered" | "done"))
        })
        .await;
        let outcome = eventually(&page, "the agent's answer", "return document.getElementById('action-result').dataset.outcome;", |v| {
            matches!(v.as_str(), Some("done" | "refused" | "failed" | "error" | "unknown"))
        })
        .await;
        let said = text_of(&page, "#action-result .action-result-text").await;
        assert_eq!(outcome, json!("done"), "the agent's answer: {said}");
        assert!(said.starts_with("Done"), "{said}");
        // The tree shows it exit: red, then gone.
        eventually(&page, "the process to exit in the tree", &format!(
            "const r = document.querySelector({}); return r == null || r.classList.contains('exited');",
            json!(row)
        ), |v| v == &json!(true))
        .await;
        wait_for_element(&page, "#details .details-note:not([hidden])").await;
        wait_for_element(&page, "#action-result[data-outcome='done']").await;
        assert_eq!(shown_action_buttons(&page).await, 0, "actions offered on an exited process");
        save_screenshot(&page, "actions-done").await;

        // The log: who, why and the result.
        click(&page, "#actions-open:not([hidden])").await;
        let entry = "#actions-rows tr[data-outcome='done']";
        wait_for_element(&page, entry).await;
        assert_eq!(text_of(&page, &format!("{entry} .audit-who")).await, OPERATOR);
        assert_eq!(text_of(&page, &format!("{entry} .audit-host")).await, hostname);
        assert_eq!(text_of(&page, &format!("{entry} .audit-kind")).await, "End");
        assert_eq!(
            text_of(&page, &format!("{entry} .audit-reason")).await,
            "left over from a test run"
        );
        assert!(text_of(&page, &format!("{entry} .audit-process")).await.starts_with(&format!("sleep (pid {pid})")));
        assert_eq!(text_of(&page, &format!("{entry} .audit-outcome-label")).await, "done");
        assert!(!text_of(&page, &format!("{entry} .audit-message")).await.is_empty(), "the agent's message");
        save_screenshot(&page, "actions-log").await;
    })
    .await;

    // The agent sent SIGTERM: sleep died of it.
    let status = sleeper.ended().await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(15),
        "sleep ended by SIGTERM: {status:?}"
    );
    let log = audit_log(&app).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["code"], "done");
    agent.stop();
}

/// `sleep 600`, reaped the moment it ends (so that it leaves the process
/// table, not lingers as a zombie of this test), killed if the test ends
/// first.
struct Sleeper {
    pid: u32,
    reaper: Option<std::thread::JoinHandle<std::process::ExitStatus>>,
}

impl Sleeper {
    fn start() -> Sleeper {
        let mut child = Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("spawn sleep 600");
        let pid = child.id();
        let reaper = std::thread::spawn(move || child.wait().expect("wait for sleep"));
        Sleeper {
            pid,
            reaper: Some(reaper),
        }
    }

    /// How it ended (it has, or it is about to).
    async fn ended(mut self) -> std::process::ExitStatus {
        let reaper = self.reaper.take().unwrap();
        tokio::time::timeout(PATIENCE, tokio::task::spawn_blocking(move || reaper.join()))
            .await
            .expect("sleep ended")
            .unwrap()
            .expect("the reaper thread")
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        if self.reaper.as_ref().is_some_and(|r| !r.is_finished()) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}

/// The real agent, as its config file sets it up: enrolled with the
/// server's enrollment secret (so it pins the server's action key), every
/// second, actions enabled. On a thread and runtime of its own, as the
/// agent runs.
struct ActingAgent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl ActingAgent {
    async fn start(app: &TestApp) -> ActingAgent {
        let response = app
            .client
            .post(format!("{}/api/enroll-secret/", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "an enrollment secret");
        let secret: Value = response.json().await.unwrap();
        let secret = secret["enroll_secret"].as_str().unwrap().to_owned();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("procmon-agent.toml");
        std::fs::write(
            &file,
            format!(
                "server_url = \"{}\"\nenroll_secret = \"{secret}\"\ninterval = \"1s\"\n\n[actions]\nenabled = true\n",
                app.address
            ),
        )
        .unwrap();
        let flags = procmon_agent::config::Overrides {
            config_file: Some(file),
            ..Default::default()
        };
        let config = procmon_agent::config::Settings::load_with_env(&flags, |_| None)
            .expect("the agent's config file")
            .into_agent_config()
            .expect("an agent config");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(procmon_agent::run(config, async {
                    let _ = stopped.await;
                }))
                .expect("the agent runs");
        });
        ActingAgent {
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// The agent's host, once the server lists it, and process `pid` as its
    /// newest snapshot has it.
    async fn wait_for_process(&self, app: &TestApp, pid: u32) -> (String, Value) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let hosts: Value = app.get_hosts().await.json().await.unwrap();
            if let Some(host) = hosts.as_array().and_then(|h| h.first()) {
                let id = host["host"]["id"].as_str().unwrap().to_owned();
                let listing: Value = app.get_processes(&id).await.json().await.unwrap();
                let found = listing["processes"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["pid"] == pid).cloned());
                if let Some(process) = found {
                    return (id, process);
                }
            }
            assert!(
                Instant::now() < deadline,
                "the agent never reported process {pid}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The hostname the agent reported.
    async fn hostname(&self, app: &TestApp) -> String {
        let hosts: Value = app.get_hosts().await.json().await.unwrap();
        hosts[0]["host"]["hostname"].as_str().unwrap().to_owned()
    }

    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the agent's thread");
        }
    }
}

impl Drop for ActingAgent {
    fn drop(&mut self) {
        // A failed test stops it too (without waiting for it).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn focused(page: &Client) -> String {
    page.execute(
        "return document.activeElement && document.activeElement.id;",
        vec![],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn is_disabled(page: &Client, css: &str) -> bool {
    let script = format!("return document.querySelector({}).disabled;", json!(css));
    page.execute(&script, vec![]).await.unwrap() == json!(true)
}
