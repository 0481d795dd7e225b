//! An admin's panels on the page: users, agent keys and the enrollment
//! secret, and removing a host that went offline; a viewer has none.

use super::*;

/// An admin's users panel lists, adds and removes users; a viewer has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_users_on_the_page() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    with_browser(1280, 900, |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, "#account:not([hidden]) #users-open:not([hidden])").await;
        wait_for_element(&page, &format!("#users-rows tr[data-name='{TEST_USER}']")).await;
        page.find(Locator::Css("#user-add-name"))
            .await
            .unwrap()
            .send_keys("<b>vi</b>")
            .await
            .unwrap();
        page.find(Locator::Css("#user-add-password"))
            .await
            .unwrap()
            .send_keys("viewer-pass-1")
            .await
            .unwrap();
        click(&page, "#user-add-form button[type=submit]").await;
        eventually(
            &page,
            "the refused name",
            "return document.getElementById('users-error').textContent;",
            |v| v.as_str().is_some_and(|t| t.contains("is not a user name")),
        )
        .await;
        page.find(Locator::Css("#user-add-name"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();
        page.find(Locator::Css("#user-add-name"))
            .await
            .unwrap()
            .send_keys("vi")
            .await
            .unwrap();
        page.find(Locator::Css("#user-add-password"))
            .await
            .unwrap()
            .send_keys("viewer-pass-1")
            .await
            .unwrap();
        click(&page, "#user-add-form button[type=submit]").await;
        wait_for_element(&page, "#users-rows tr[data-name='vi']").await;
        assert_eq!(
            text_of(&page, "#users-rows tr[data-name='vi'] td:nth-child(2)").await,
            "viewer"
        );

        // Removing asks first (confirm); the browser is told to say yes.
        page.execute("window.confirm = () => true;", vec![])
            .await
            .unwrap();
        click(
            &page,
            "#users-rows tr[data-name='vi'] button[data-action='remove']",
        )
        .await;
        wait_until_gone(&page, "#users-rows tr[data-name='vi']").await;

        // A viewer sees no users button.
        app.add_user("vo", Role::Viewer, "viewer-pass-2").await;
        click(&page, "#sign-out").await;
        fill_sign_in(&page, "vo", "viewer-pass-2").await;
        wait_for_element(&page, "#account:not([hidden])").await;
        assert_eq!(text_of(&page, "#account-name").await, "vo (viewer)");
        assert_eq!(count(&page, "#users-open:not([hidden])").await, 0);
        assert_eq!(count(&page, "#users-panel:not([hidden])").await, 0);
    })
    .await;
}

/// An admin's agent keys panel: a key made on the page is shown once,
/// works for its host, and once revoked on the page is refused; a new
/// enrollment secret is shown once and enrolls an agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_makes_uses_and_revokes_an_agent_key_on_the_page() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    with_browser(1280, 800, |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, "#account:not([hidden]) #keys-open:not([hidden])").await;
        // spawn_app's own key for host-a is listed, without its secret.
        wait_for_element(&page, "#keys-rows tr[data-id]").await;
        let panel = text_of(&page, "#keys-panel").await;
        let secret_part = app.agent_key.rsplit('_').next().unwrap();
        assert!(!panel.contains(secret_part), "the list shows a key");

        page.find(Locator::Css("#key-add-host"))
            .await
            .unwrap()
            .send_keys("web-page")
            .await
            .unwrap();
        page.find(Locator::Css("#key-add-label"))
            .await
            .unwrap()
            .send_keys("<b>rack 3</b>")
            .await
            .unwrap();
        click(&page, "#key-add-form button[type=submit]").await;
        wait_for_element(&page, "#keys-shown:not([hidden])").await;
        let key = text_of(&page, "#keys-shown-value").await;
        assert!(key.starts_with("pmk_"), "{key}");
        assert!(text_of(&page, "#keys-shown")
            .await
            .contains("Shown only now"));
        let id = key
            .trim_start_matches("pmk_")
            .split('_')
            .next()
            .unwrap()
            .to_owned();
        let row = format!("#keys-rows tr[data-id='{id}']");
        wait_for_element(&page, &row).await;
        assert_eq!(
            text_of(&page, &format!("{row} td:nth-child(2)")).await,
            "web-page"
        );
        // The label is text, not markup.
        assert_eq!(
            text_of(&page, &format!("{row} td:nth-child(3)")).await,
            "<b>rack 3</b>"
        );
        assert_eq!(count(&page, &format!("{row} b")).await, 0);
        // Copy: to the clipboard, or (where the browser does not allow it)
        // selected for the person to copy; either way the page says which.
        click(&page, "#keys-copy").await;
        eventually(
            &page,
            "the copy button's answer",
            "return document.getElementById('keys-copy-status').textContent;",
            |v| v.as_str().is_some_and(|t| !t.is_empty()),
        )
        .await;
        screenshot(&page, "keys-panel").await;

        // The key works for its host.
        let send = |key: String| {
            let address = app.address.clone();
            async move {
                reqwest::Client::new()
                    .post(format!("{address}/api/processes/"))
                    .bearer_auth(key)
                    .json(&common::sample_snapshot("web-page", 2))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(send(key.clone()).await, 201);

        // Done: the key leaves the page for good.
        click(&page, "#keys-shown-done").await;
        wait_for_element(&page, "#keys-shown[hidden]").await;
        assert_eq!(text_of(&page, "#keys-shown-value").await, "");

        // Revoking asks first (confirm); the browser is told to say yes.
        page.execute("window.confirm = () => true;", vec![])
            .await
            .unwrap();
        click(&page, &format!("{row} button[data-action='revoke']")).await;
        wait_until_gone(&page, &format!("{row} button[data-action='revoke']")).await;
        assert!(text_of(&page, &format!("{row} td:nth-child(5)"))
            .await
            .starts_with("revoked"));
        assert_eq!(send(key).await, 401);

        // A new enrollment secret, shown once, enrolls an agent.
        click(&page, "#enroll-rotate").await;
        wait_for_element(&page, "#keys-shown:not([hidden])").await;
        let secret = text_of(&page, "#keys-shown-value").await;
        assert!(secret.starts_with("pme_"), "{secret}");
        let enrolled = reqwest::Client::new()
            .post(format!("{}/api/enroll/", app.address))
            .json(&json!({"enroll_secret": secret, "host_id": "new-1", "hostname": "new-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(enrolled.status(), 201);
        assert_eq!(
            count(&page, "#keys-error:not(:empty)").await,
            0,
            "{}",
            text_of(&page, "#keys-error").await
        );
    })
    .await;
}

/// An admin removes a host that went offline from the host list (after a
/// confirm); online hosts offer no removal, and neither does a viewer's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_removes_an_offline_host_on_the_page() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    // Sent once at the shortest interval: offline almost at once. The live
    // host promises a snapshot an hour from now, so it stays online.
    for (host, interval_ms) in [("old-1", 100), ("old-2", 100), ("live-1", 3_600_000)] {
        let mut snapshot = common::sample_snapshot(host, 3);
        snapshot.interval_ms = interval_ms;
        post_snapshot(&app, &snapshot).await;
    }
    let old_key = app.key_for("old-1").await;
    with_browser(1280, 900, |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, "button[data-remove-host='old-1']:not([hidden])").await;
        wait_for_element(&page, "button[data-remove-host='old-2']:not([hidden])").await;
        wait_for_element(&page, "button[data-host-id='live-1']").await;
        assert_eq!(
            count(&page, "button[data-remove-host='live-1']:not([hidden])").await,
            0
        );

        page.execute("window.confirm = () => true;", vec![])
            .await
            .unwrap();
        click(&page, "button[data-remove-host='old-1']").await;
        wait_until_gone(&page, "button[data-host-id='old-1']").await;
        assert!(app.state.store.host("old-1").await.unwrap().is_none());
        let refused = reqwest::Client::new()
            .post(format!("{}/api/processes/", app.address))
            .bearer_auth(&old_key)
            .json(&common::sample_snapshot("old-1", 2))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "its key was revoked");
        assert_eq!(count(&page, "#hosts-error:not(:empty)").await, 0);

        // A viewer sees the offline host, but no way to remove it.
        app.add_user("vo", Role::Viewer, "viewer-pass-2").await;
        click(&page, "#sign-out").await;
        fill_sign_in(&page, "vo", "viewer-pass-2").await;
        wait_for_element(&page, "button[data-host-id='old-2']").await;
        wait_for_element(&page, "#account:not([hidden])").await;
        assert_eq!(count(&page, ".host-remove:not([hidden])").await, 0);
    })
    .await;
}
