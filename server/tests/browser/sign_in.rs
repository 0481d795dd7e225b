//! Signing in on the page: the form when the API answers 401, a wrong
//! password, signing out, a session that ends while the page is open, and
//! the one-time link of the first start.

use super::*;

/// Signing in: the page asks when the API answers 401, says when the
/// password is wrong, shows who is signed in, keeps the session over a
/// reload, and signing out brings the form back and hides the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_signs_in_refuses_a_wrong_password_and_signs_out() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let snapshot = hostile_snapshot();
    post_snapshot(&app, &snapshot).await;

    with_browser(1280, 900, |page| async move {
        page.goto(&format!("{}/#host={}", app.address, snapshot.host.id))
            .await
            .unwrap();
        wait_for_element(&page, "#auth:not([hidden]) #signin-name").await;
        assert_eq!(text_of(&page, "#connection-text").await, "Sign-in needed");
        assert_eq!(count(&page, "#process-rows .row[data-key]").await, 0);
        assert_eq!(count(&page, "#account:not([hidden])").await, 0);

        fill_sign_in(&page, TEST_USER, "not-the-password").await;
        eventually(
            &page,
            "the refusal",
            "return document.getElementById('auth-error').textContent;",
            |v| {
                v.as_str()
                    .is_some_and(|t| t.contains("wrong user name or password"))
            },
        )
        .await;
        assert_eq!(count(&page, "#process-rows .row[data-key]").await, 0);

        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, &row_selector(4)).await;
        wait_for_element(&page, "#auth[hidden]").await;
        wait_for_element(&page, "#account:not([hidden])").await;
        assert_eq!(
            text_of(&page, "#account-name").await,
            format!("{TEST_USER} (admin)")
        );
        // The cookie is HttpOnly: no script in the page can read it.
        let cookies = page
            .execute("return document.cookie;", vec![])
            .await
            .unwrap();
        assert_eq!(cookies, json!(""));

        page.refresh().await.unwrap();
        wait_for_element(&page, &row_selector(4)).await;
        assert_eq!(
            count(&page, "#auth:not([hidden])").await,
            0,
            "the session outlives a reload"
        );

        click(&page, "#sign-out").await;
        wait_for_element(&page, "#auth:not([hidden]) #signin-name").await;
        wait_until_gone(&page, "#process-rows .row[data-key]").await;
        page.refresh().await.unwrap();
        wait_for_element(&page, "#auth:not([hidden]) #signin-name").await;
    })
    .await;
}

/// A session that ends while the page is open (it expired, or was ended
/// on the server): the next poll shows the form again, the page keeps the
/// host, tree and search it showed, and signing in goes on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_asks_to_sign_in_again_when_the_session_ends_and_keeps_its_state() {
    if !browser_available() {
        return;
    }
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(Some(Arc::clone(&clock)), |_| {}).await;
    let snapshot = hostile_snapshot();
    post_snapshot(&app, &snapshot).await;

    with_browser(1280, 900, |page| async move {
        page.goto(&format!(
            "{}/#host={}&q=chain",
            app.address, snapshot.host.id
        ))
        .await
        .unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, &row_selector(CHAIN_START)).await;
        let rows = row_count(&page).await;

        // Past the idle time (12 h by default), the session is over.
        clock.advance(chrono::Duration::hours(13));
        wait_for_element(&page, "#auth:not([hidden]) #signin-name").await;
        assert!(
            text_of(&page, "#signin-intro")
                .await
                .contains("session has ended"),
            "the form says why it is back"
        );
        assert_eq!(
            row_count(&page).await,
            rows,
            "the tree stays while signed out"
        );
        let search = page
            .execute("return document.getElementById('search').value;", vec![])
            .await
            .unwrap();
        assert_eq!(search, json!("chain"));

        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, "#auth[hidden]").await;
        wait_for_element(&page, &row_selector(CHAIN_START)).await;
        let hash = page.execute("return location.hash;", vec![]).await.unwrap();
        assert!(
            hash.as_str()
                .unwrap()
                .contains(&format!("host={}", snapshot.host.id)),
            "{hash}"
        );
    })
    .await;
}

/// The first start's kind of link: it signs in once, asks for a password,
/// and leaves no token in the address bar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_link_signs_in_and_asks_for_a_password() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    post_snapshot(&app, &hostile_snapshot()).await;
    let link = procmon_server::accounts::signin_link(
        app.state.accounts.as_ref(),
        "admin",
        Utc::now(),
        &format!("{}/", app.address),
    )
    .await
    .unwrap();
    let link = secrecy::ExposeSecret::expose_secret(&link).to_owned();

    with_browser(1280, 900, |page| async move {
        page.goto(&link).await.unwrap();
        wait_for_element(&page, "#set-password:not([hidden]) #new-password").await;
        assert_eq!(text_of(&page, "#account-name").await, "admin (admin)");
        wait_for_element(&page, &row_selector(4)).await;
        let url = page.current_url().await.unwrap();
        assert!(
            !url.as_str().contains("signin="),
            "the token stays in the address bar: {url}"
        );

        for field in ["#new-password", "#new-password-again"] {
            page.find(Locator::Css(field))
                .await
                .unwrap()
                .send_keys("admin-password-1")
                .await
                .unwrap();
        }
        click(&page, "#set-password-form button[type=submit]").await;
        wait_for_element(&page, "#set-password[hidden]").await;
        let signed_in = app.signed_in_client("admin", "admin-password-1").await;
        let users = signed_in
            .get(format!("{}/api/users/", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(users.status(), 200);

        // The link was used up: opening it again asks to sign in. (From
        // another page: only the hash would change, and that loads nothing.)
        click(&page, "#sign-out").await;
        page.goto("about:blank").await.unwrap();
        page.goto(&link).await.unwrap();
        eventually(
            &page,
            "the used link refused",
            "return document.getElementById('auth-error').textContent;",
            |v| v.as_str().is_some_and(|t| t.contains("used already")),
        )
        .await;
    })
    .await;
}
