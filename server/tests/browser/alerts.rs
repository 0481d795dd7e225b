//! Alerts on the page: the rule editor and its preview, the firing alerts
//! with their count in the header and their badges, silences.

use super::*;
use chrono::Duration as TimeDelta;

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
