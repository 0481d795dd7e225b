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
