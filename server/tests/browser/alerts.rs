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
