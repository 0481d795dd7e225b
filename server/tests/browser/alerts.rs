//! Alerts on the page: the rule editor and its preview, the firing alerts
//! with their count in the header and their badges, silences.

use super::*;
use chrono::{Duration as TimeDelta, DurationRound};

/// Now, to the whole second: times the server stores and the page writes
/// into its URL then compare exactly.
fn whole_second_now() -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap()
}

/// A snapshot of `host` taken at `at` with exactly `processes`, each a
/// child of init (pid 1, also there). The host booted at `boot` and they
/// started a minute after it, the same in every snapshot: the same
/// processes, running on.
fn snapshot_of(
    host: &str,
    boot: DateTime<Utc>,
    at: DateTime<Utc>,
    processes: &[(u32, &str)],
) -> Snapshot {
    let started = boot + TimeDelta::minutes(1);
    let mut snapshot = procmon_model::fixtures::snapshot_at(host, 0, at);
    snapshot.host.boot_time = boot;
    snapshot.processes.push(sample(1, None, "init", boot));
    for &(pid, name) in processes {
        snapshot.processes.push(sample(pid, Some(1), name, started));
    }
    snapshot
}

/// What the page's own formatting (format.js) makes of `at`: as it names
/// a time (`formatDateTime`) and as its time field holds it (`toLocalInput`).
async fn page_times(page: &Client, at: DateTime<Utc>) -> (String, String) {
    let formatted = page
        .execute_async(
            "const [ms, done] = arguments;
             import('/js/format.js').then(
               ({ formatDateTime, toLocalInput }) => done([formatDateTime(new Date(ms)), toLocalInput(ms)]),
               (e) => done(['error: ' + e, '']));",
            vec![json!(at.timestamp_millis())],
        )
        .await
        .expect("format a time in the page");
    let (named, field): (String, String) = serde_json::from_value(formatted).unwrap();
    assert!(!named.starts_with("error"), "{named}");
    (named, field)
}

/// Makes a rule through the API; its id.
async fn make_rule(app: &TestApp, rule: Value) -> String {
    let response = app
        .client
        .post(format!("{}/api/alerts/rules/", app.address))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let made: Value = response.json().await.unwrap();
    made["id"].as_str().unwrap().to_owned()
}

/// Waits until the one open alert fires, and checks it fired at `at`.
async fn firing_since(app: &TestApp, at: DateTime<Utc>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let open = app.state.alerts.store().open_alerts(None).await.unwrap();
        if let [record] = open.as_slice() {
            if let Some(fired) = record.alert.fired_at {
                assert_eq!(fired, at, "the alert fired when its snapshot was taken");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "waited {PATIENCE:?} for the alert to fire"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `css` is within the alerts panel's visible part (the panel
/// scrolls; a message below its fold goes unread).
async fn shown_in_panel(page: &Client, css: &str) {
    let script = format!(
        "const panel = document.getElementById('alerts-panel').getBoundingClientRect();
         const it = document.querySelector({}).getBoundingClientRect();
         return it.height > 0 && it.top >= panel.top && it.bottom <= panel.bottom;",
        json!(css)
    );
    eventually(
        page,
        &format!("`{css}` in the panel's view"),
        &script,
        |v| v == &json!(true),
    )
    .await;
}

/// Types `text` into the empty field `css`, after clearing what it holds.
async fn type_into(page: &Client, css: &str, text: &str) {
    let field = wait_for_element(page, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// An admin makes a process_absent rule in the editor, previews it (the
/// host where it holds now is named) and saves it; the header then counts
/// the alert it fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_an_admin_makes_previews_and_saves_a_rule() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let now = Utc::now();
    let mut snapshot =
        procmon_model::fixtures::snapshot_at("alerts-web", 3, now - TimeDelta::minutes(10));
    post_snapshot(&app, &snapshot).await;
    snapshot.id = Uuid::new_v4();
    snapshot.collected_at = now;
    post_snapshot(&app, &snapshot).await;

    with_browser(1280, 900, move |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, "#alerts-open:not([hidden])").await;
        click(&page, "#alerts-tab-rules").await;
        click(&page, "#rule-new:not([hidden])").await;
        page.find(Locator::Css("#rule-name"))
            .await
            .unwrap()
            .send_keys("nginx must run")
            .await
            .unwrap();
        page.find(Locator::Css("#rule-match-name"))
            .await
            .unwrap()
            .send_keys("nginx")
            .await
            .unwrap();
        click(&page, "#rule-preview-button").await;
        wait_for_element(
            &page,
            "#rule-preview .preview-now tr.holds[data-host-id='alerts-web']",
        )
        .await;
        save_screenshot(&page, "alerts-editor-preview").await;
        click(&page, "#rule-save").await;
        wait_for_element(&page, "#rules-rows tr[data-rule-id]").await;
        let rules = app.state.alerts.store().rules().await.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].spec.name, "nginx must run");
    })
    .await;
}

/// A firing alert shows in the alerts view, is counted in the header and
/// marked on its host; silencing it for an hour from the view marks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_a_firing_alert_is_shown_counted_marked_and_silenced() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/alerts/rules/", app.address))
        .json(&json!({
            "name": "nginx must run", "severity": "critical",
            "condition": { "kind": "process_absent", "process": { "name": { "equals": "nginx" } } },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let snapshot = procmon_model::fixtures::snapshot_at("alerts-web", 3, Utc::now());
    post_snapshot(&app, &snapshot).await;

    with_browser(1280, 900, move |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        let counted = "return document.getElementById('alerts-count').textContent;";
        eventually(&page, "one firing alert counted", counted, |v| {
            v == &json!("1")
        })
        .await;
        wait_for_element(
            &page,
            "button.host[data-host-id='alerts-web'] .badge-alerts:not([hidden])",
        )
        .await;
        click(&page, "#alerts-open").await;
        let item = "#alerts-firing li.alert-item[data-state='firing']";
        wait_for_element(&page, item).await;
        assert_eq!(
            text_of(&page, &format!("{item} .alert-rule")).await,
            "nginx must run"
        );
        let href = attribute_of_text(&page, &format!("{item} a.alert-open"), "href").await;
        assert!(
            href.contains("host=alerts-web") && href.contains("at="),
            "{href}"
        );
        save_screenshot(&page, "alerts-firing").await;
        page.execute("window.prompt = () => 'deploying';", vec![])
            .await
            .unwrap();
        click(&page, &format!("{item} button.alert-silence")).await;
        wait_for_element(
            &page,
            &format!("{item}.silenced .alert-silenced:not([hidden])"),
        )
        .await;
    })
    .await;
}

/// A port on 127.0.0.1 that nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An admin adds a webhook channel on the page; its Test button says why
/// it fails; a rule names it (and the rule editor shows it chosen); the
/// alert's notification, undeliverable, is listed with its error. A
/// viewer then sees the channel and the rule but can change neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_channels_are_made_tested_chosen_and_undelivered_shown() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let port = closed_port();
    let refused = format!("connection refused by 127.0.0.1:{port}");

    with_browser(1280, 900, move |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, "#alerts-open:not([hidden])").await;
        click(&page, "#alerts-tab-channels").await;
        wait_for_element(&page, "#channels-empty:not([hidden])").await;
        click(&page, "#channel-new:not([hidden])").await;
        for (field, text) in [
            ("#channel-name", "on-call hook".to_owned()),
            ("#channel-url", format!("http://127.0.0.1:{port}/hook")),
            ("#channel-secret", "whsec-page-test".to_owned()),
        ] {
            page.find(Locator::Css(field))
                .await
                .unwrap()
                .send_keys(&text)
                .await
                .unwrap();
        }
        click(&page, "#channel-save").await;
        let row = "#channels-rows tr[data-channel-id]";
        wait_for_element(&page, row).await;
        let channels = app.state.channels.channels().await.unwrap();
        assert_eq!(channels.len(), 1);
        let channel = &channels[0];
        assert_eq!(channel.name, "on-call hook");
        assert!(channel.has_secret, "the secret was sent and kept");
        assert_eq!(text_of(&page, &format!("{row} td:nth-child(4)")).await, "nothing sent yet");

        // The Test button sends now and says why it could not.
        click(&page, &format!("{row} button[data-action='test']")).await;
        let result = format!("{row} .channel-test-result[data-ok='false']");
        wait_for_element(&page, &result).await;
        assert_eq!(
            text_of(&page, &result).await,
            format!("Test failed: {refused}")
        );

        // A rule that tells the channel; its alert fires at once.
        let response = app
            .client
            .post(format!("{}/api/alerts/rules/", app.address))
            .json(&json!({
                "name": "nginx must run", "severity": "critical",
                "condition": { "kind": "process_absent", "process": { "name": { "equals": "nginx" } } },
                "channels": [channel.id],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        post_snapshot(
            &app,
            &procmon_model::fixtures::snapshot_at("alerts-web", 3, Utc::now()),
        )
        .await;
        // Its notification cannot be delivered: listed, with the error.
        let undelivered = "#deliveries-rows tr[data-status='failing']";
        let script = format!(
            "document.getElementById('deliveries-refresh').click(); \
             return document.querySelectorAll({}).length;",
            json!(undelivered)
        );
        eventually(&page, "the undelivered notification listed", &script, |n| {
            n.as_u64() == Some(1)
        })
        .await;
        assert_eq!(
            text_of(&page, &format!("{undelivered} td:nth-child(2)")).await,
            "on-call hook"
        );
        assert_eq!(
            text_of(&page, &format!("{undelivered} td:nth-child(7)")).await,
            refused
        );
        save_screenshot(&page, "alerts-channels").await;

        // The rule editor shows the channel chosen.
        click(&page, "#alerts-tab-rules").await;
        click(&page, "#rules-rows tr[data-rule-id] button[data-action='edit']").await;
        let chosen = format!(
            "#rule-channels input[data-channel='{}']:checked",
            channel.id
        );
        wait_for_element(&page, &chosen).await;

        // A viewer reads the rule and the channel, and changes neither.
        app.add_user("vo", Role::Viewer, "viewer-pass-2").await;
        click(&page, "#sign-out").await;
        fill_sign_in(&page, "vo", "viewer-pass-2").await;
        click(&page, "#alerts-open:not([hidden])").await;
        click(&page, "#alerts-tab-rules").await;
        click(&page, "#rules-rows tr[data-rule-id] button[data-action='edit']").await;
        wait_for_element(&page, "#rule-form:not([hidden]) fieldset.rule-fields:disabled").await;
        assert_eq!(count(&page, "#rule-save:not([hidden])").await, 0);
        assert_eq!(count(&page, "#rule-new:not([hidden])").await, 0);
        assert_eq!(count(&page, "#rules-rows button[data-action='delete']").await, 0);
        click(&page, "#alerts-tab-channels").await;
        wait_for_element(&page, row).await;
        assert_eq!(count(&page, &format!("{row} button")).await, 0);
        assert_eq!(count(&page, "#channel-new:not([hidden])").await, 0);
        // Its URL is cut to the host: a Slack or Discord URL is a credential.
        assert_eq!(
            text_of(&page, &format!("{row} td:nth-child(3)")).await,
            format!("http://127.0.0.1:{port}/")
        );
    })
    .await;
}

/// An alert's link opens its host's tree as it was when the alert fired:
/// the time control off live at that moment, the host chosen, and the rows
/// of the processes that ran then (one of them gone since).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_the_link_opens_the_tree_at_the_moment_it_fired() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    make_rule(
        &app,
        json!({
            "name": "nginx must run", "severity": "critical",
            "condition": { "kind": "process_absent", "process": { "name": { "equals": "nginx" } } },
        }),
    )
    .await;
    let now = whole_second_now();
    let boot = now - TimeDelta::days(1);
    let then = now - TimeDelta::minutes(10);
    // Ten minutes ago nginx was missing already and a worker ran that has
    // exited since; nginx is still missing now.
    post_snapshot(
        &app,
        &snapshot_of(
            "alerts-then",
            boot,
            then,
            &[(40, "doomed-worker"), (41, "steady")],
        ),
    )
    .await;
    // Snapshots are evaluated beside their answers, in no set order: the
    // alert fires on the older one before the newer one is sent.
    firing_since(&app, then).await;
    post_snapshot(
        &app,
        &snapshot_of("alerts-then", boot, now, &[(41, "steady")]),
    )
    .await;

    with_browser(1280, 900, move |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, "#alerts-open:not([hidden])").await;
        let item = "#alerts-firing li.alert-item[data-state='firing']";
        wait_for_element(&page, item).await;
        let (named, field) = page_times(&page, then).await;
        assert_eq!(text_of(&page, &format!("{item} .alert-when")).await.split(" (").next().unwrap(), format!("fired {named}"));
        let link = format!("{item} a.alert-open");
        assert_eq!(text_of(&page, &link).await, "Tree when it fired");
        click(&page, &link).await;

        // The panel gives the tree the room; the tree is the one of then.
        wait_for_element(&page, "#alerts-panel[hidden]").await;
        wait_for_element(&page, "button.host[data-host-id='alerts-then'][aria-current='true']").await;
        wait_for_element(&page, &row_selector(40)).await;
        wait_for_element(&page, &row_selector(41)).await;
        assert_eq!(attribute_of_text(&page, "#time-live", "aria-pressed").await, "false");
        wait_for_element(&page, "body.in-history").await;
        let shown = "return [document.getElementById('time-field').value, document.getElementById('time-note').textContent];";
        let expected_note = format!("As it was at {named} (snapshot of");
        eventually(&page, "the time control at the moment it fired", shown, |v| {
            v[0].as_str() == Some(field.as_str()) && v[1].as_str().is_some_and(|n| n.starts_with(&expected_note))
        })
        .await;
        let hash = page.execute("return decodeURIComponent(location.hash);", vec![]).await.unwrap();
        let at = then.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(hash.as_str().unwrap(), format!("#host=alerts-then&at={at}"));
        save_screenshot(&page, "alerts-link-to-the-tree-then").await;

        // Live again: the worker that ran then is gone.
        click(&page, "#time-live").await;
        wait_until_gone(&page, &row_selector(40)).await;
        wait_for_element(&page, &row_selector(41)).await;
    })
    .await;
}

/// The preview lists when the rule would have fired over the last day:
/// nginx was gone for 15 minutes an hour ago, and the firing names the host,
/// the moment (linked to the tree then) and when it would have resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_the_preview_shows_what_would_have_fired_in_the_last_day() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let now = whole_second_now();
    let boot = now - TimeDelta::days(1);
    let gone = now - TimeDelta::minutes(60);
    let back = now - TimeDelta::minutes(45);
    let host = "alerts-past";
    post_snapshot(
        &app,
        &snapshot_of(host, boot, now - TimeDelta::minutes(90), &[(80, "nginx")]),
    )
    .await;
    post_snapshot(&app, &snapshot_of(host, boot, gone, &[])).await;
    // Back as a new process (another pid), as a restart is.
    let mut restarted = snapshot_of(host, boot, back, &[]);
    restarted
        .processes
        .push(sample(81, Some(1), "nginx", back - TimeDelta::seconds(5)));
    post_snapshot(&app, &restarted).await;
    let mut latest = restarted.clone();
    latest.id = Uuid::new_v4();
    latest.collected_at = now;
    post_snapshot(&app, &latest).await;

    with_browser(1280, 900, move |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, "#alerts-open:not([hidden])").await;
        click(&page, "#alerts-tab-rules").await;
        click(&page, "#rule-new:not([hidden])").await;
        type_into(&page, "#rule-name", "nginx must run").await;
        type_into(&page, "#rule-match-name", "nginx").await;
        click(&page, "#rule-preview-button").await;

        let firing = format!("#rule-preview li.preview-firing[data-host-id='{host}']");
        wait_for_element(&page, &firing).await;
        assert_eq!(count(&page, "#rule-preview li.preview-firing").await, 1);
        // It does not hold now: nginx runs again.
        wait_for_element(
            &page,
            &format!("#rule-preview .preview-now tr:not(.holds)[data-host-id='{host}']"),
        )
        .await;
        assert_eq!(
            text_of(&page, &format!("{firing} .preview-firing-host")).await,
            format!("{host}-name")
        );
        let (fired, _) = page_times(&page, gone).await;
        let (resolved, _) = page_times(&page, back).await;
        assert_eq!(
            text_of(&page, &format!("{firing} a.preview-fired")).await,
            fired
        );
        let href = attribute_of_text(&page, &format!("{firing} a.preview-fired"), "href").await;
        let at = gone.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert!(
            href.ends_with(&format!("#host={host}&at={}", at.replace(':', "%3A"))),
            "the link to the tree then: {href}"
        );
        let end = text_of(&page, &format!("{firing} .preview-resolved")).await;
        assert!(
            end.starts_with(&format!("→ resolved {resolved} (after 15")),
            "{end}"
        );
        shown_in_panel(&page, &firing).await;
        save_screenshot(&page, "alerts-preview-past-firings").await;
        // A preview stores nothing.
        assert!(app.state.alerts.store().rules().await.unwrap().is_empty());
    })
    .await;
}

/// A rule the server refuses (a regular expression that does not compile)
/// is not saved, and the form says why in the server's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_the_editor_shows_why_the_server_refused_a_rule() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;

    with_browser(1280, 900, move |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, "#alerts-open:not([hidden])").await;
        click(&page, "#alerts-tab-rules").await;
        click(&page, "#rule-new:not([hidden])").await;
        type_into(&page, "#rule-name", "broken pattern").await;
        wait_for_element(&page, "#rule-match-name-op")
            .await
            .select_by_value("regex")
            .await
            .unwrap();
        type_into(&page, "#rule-match-name", "(").await;
        click(&page, "#rule-save").await;

        let shown = "return document.getElementById('rule-error-text').textContent;";
        let message = eventually(&page, "the server's reason shown", shown, |v| {
            v.as_str().is_some_and(|t| !t.is_empty())
        })
        .await;
        let message = message.as_str().unwrap();
        assert!(
            message.starts_with("invalid alert rule: ")
                && message.contains("name.regex is not a valid regular expression")
                && message.contains("unclosed group"),
            "{message}"
        );
        wait_for_element(&page, "#rule-error:not([hidden]) #rule-error-text").await;
        // Nothing to reload: it is no conflict. The form keeps what was typed.
        wait_for_element(&page, "#rule-reload[hidden]").await;
        wait_for_element(&page, "#rule-form:not([hidden])").await;
        let typed = page
            .execute(
                "return document.getElementById('rule-match-name').value;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(typed, json!("("));
        shown_in_panel(&page, "#rule-error-text").await;
        save_screenshot(&page, "alerts-editor-refused").await;
        assert!(app.state.alerts.store().rules().await.unwrap().is_empty());
        assert_eq!(count(&page, "#rules-rows tr[data-rule-id]").await, 0);
    })
    .await;
}

/// Two editors: the rule changes through the API while it is open on the
/// page; saving on the page is refused, says someone else changed it, and
/// offers their version, which loads and can then be changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_the_editor_says_when_someone_else_changed_the_rule() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let rule = json!({
        "name": "nginx must run", "severity": "critical",
        "condition": { "kind": "process_absent", "process": { "name": { "equals": "nginx" } } },
    });
    let id = make_rule(&app, rule.clone()).await;

    with_browser(1280, 900, move |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, "#alerts-open:not([hidden])").await;
        click(&page, "#alerts-tab-rules").await;
        click(&page, &format!("#rules-rows tr[data-rule-id='{id}'] button[data-action='edit']")).await;
        wait_for_element(&page, "#rule-form:not([hidden])").await;
        assert!(text_of(&page, "#rule-form-title").await.contains("(version 1,"));
        type_into(&page, "#rule-name", "nginx must run (page)").await;

        // Meanwhile, another editor saves version 2.
        let mut theirs = rule.clone();
        theirs["name"] = json!("nginx must run (api)");
        let response = app
            .client
            .put(format!("{}/api/alerts/rules/{id}", app.address))
            .json(&json!({ "version": 1, "rule": theirs }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

        click(&page, "#rule-save").await;
        wait_for_element(&page, "#rule-reload:not([hidden])").await;
        let message = text_of(&page, "#rule-error-text").await;
        assert!(
            message.starts_with("Not saved: someone else changed this rule since you opened version 1 (tester saved version 2 at ")
                && message.contains("Load their version"),
            "{message}"
        );
        shown_in_panel(&page, "#rule-error").await;
        save_screenshot(&page, "alerts-editor-conflict").await;
        let stored = app.state.alerts.store().rules().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].version, stored[0].spec.name.as_str()), (2, "nginx must run (api)"));

        // Their version loads; a change to it then saves as version 3.
        click(&page, "#rule-reload").await;
        eventually(&page, "their version loaded", "return document.getElementById('rule-name').value;", |v| {
            v.as_str() == Some("nginx must run (api)")
        })
        .await;
        assert!(text_of(&page, "#rule-form-title").await.contains("(version 2,"));
        assert_eq!(text_of(&page, "#rule-error-text").await, "");
        wait_for_element(&page, "#rule-reload[hidden]").await;
        type_into(&page, "#rule-name", "nginx must run (both)").await;
        click(&page, "#rule-save").await;
        wait_for_element(&page, "#rule-form[hidden]").await;
        let stored = app.state.alerts.store().rules().await.unwrap();
        assert_eq!((stored[0].version, stored[0].spec.name.as_str()), (3, "nginx must run (both)"));
    })
    .await;
}
