//! The page, driven in real headless Chromium over WebDriver against a real
//! server: pick a host, expand and collapse, search, details, hostile data
//! (parent cycles, reused pids, HTML in names), phone width, and signing
//! in and out (every test signs in through the page's form first).
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them each test
//! says why it skipped (and fails under `CI=true`). Set
//! `PROCMON_SCREENSHOT_DIR` to keep screenshots of the page for a look.

#[path = "common/chromium.rs"]
mod chromium;
mod common;
// The page in time and across the fleet (tests named history_*).
#[path = "browser/history.rs"]
mod history;
// Alerts, rules, silences on the page (tests named alerts_*).
#[path = "browser/alerts.rs"]
mod alerts;
// Acting on a process, and the actions log (tests named actions_*).
#[path = "browser/actions.rs"]
mod actions;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chromium::{connect, start_driver};
use chrono::{DateTime, Utc};
use fantoccini::{Client, Locator};
use procmon_model::{HostInfo, ProcessSample, ProcessStatus, Snapshot, WIRE_VERSION};
use serde_json::{json, Value};
use uuid::Uuid;

use std::sync::Arc;

use common::{
    require, sample_snapshot, spawn_app, spawn_app_with_clock, KillOnDrop, TestApp, TEST_PASSWORD,
    TEST_USER,
};
use procmon_server::clock::ManualClock;
use procmon_server::store::accounts::Role;

/// Long enough for a loaded 2-core machine; the page itself polls every 2 s.
const PATIENCE: Duration = Duration::from_secs(30);

// ---- the tests --------------------------------------------------------------

/// The browser check: the real agent code reports this machine, and
/// the page shows this test process with the child it spawned beneath it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_the_live_tree_of_this_machine() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let child = KillOnDrop(
        Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("spawn a child process"),
    );
    let child_pid = child.0.id();
    let agent = AgentLoop::start(&app).await;
    let first = agent.first_snapshot().await;
    let me = std::process::id();
    let my_name = process_named(&first, me).name.clone();
    let child_name = process_named(&first, child_pid).name.clone();

    with_browser(1280, 1000, |page| async move {
        page.goto(&app.address).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;

        // Pick the host from the list; the choice lands in the URL hash.
        let host_button = format!("button.host[data-host-id='{}']", first.host.id);
        wait_for_element(&page, &host_button).await.click().await.unwrap();
        let hash = eventually(&page, "the host in the URL hash", "return location.hash;", |v| {
            v.as_str().is_some_and(|h| h.contains(&format!("host={}", first.host.id)))
        })
        .await;
        assert!(hash.as_str().unwrap().starts_with('#'));

        // Find this process as a person would: search its pid, select it,
        // clear the search; the page keeps it in view with its subtree open.
        let my_row = row_selector(me);
        let child_row = row_selector(child_pid);
        let search = page.find(Locator::Css("#search")).await.unwrap();
        search.send_keys(&me.to_string()).await.unwrap();
        wait_for_element(&page, &format!("{my_row}:not(.context)")).await.click().await.unwrap();
        wait_for_element(&page, &format!("{my_row}.selected")).await;
        search.send_keys("\u{e00c}").await.unwrap(); // Escape clears the search
        wait_for_element(&page, &child_row).await;
        assert_eq!(text_of(&page, &format!("{my_row} .name")).await, my_name);
        assert_eq!(text_of(&page, &format!("{child_row} .name")).await, child_name);
        let my_level = attribute_of(&page, &my_row, "aria-level").await;
        let child_level = attribute_of(&page, &child_row, "aria-level").await;
        assert_eq!(child_level, my_level + 1, "the child sits one level below its parent");
        let toggle = format!("{my_row} button.toggle");
        assert_eq!(aria_expanded(&page, &toggle).await, Some(true));

        // Collapse: the child's row leaves the table; expand: it is back.
        page.find(Locator::Css(&toggle)).await.unwrap().click().await.unwrap();
        wait_until_gone(&page, &child_row).await;
        assert_eq!(aria_expanded(&page, &toggle).await, Some(false));
        // Pushed changes keep the node folded, the selection, and the
        // selected row where it is on screen: the view scrolls with it when
        // processes start or exit above it, and keeps room below the last
        // row when those below it exit.
        page.execute("document.getElementById('tree-scroll').scrollTop += 48;", vec![])
            .await
            .unwrap();
        let place = format!(
            "const r = document.querySelector({}); return r && Math.round(r.getBoundingClientRect().top);",
            json!(format!("{my_row}.selected"))
        );
        let placed = page.execute(&place, vec![]).await.unwrap();
        assert!(placed.is_number(), "the selected row is in view");
        tokio::time::sleep(Duration::from_millis(4500)).await;
        assert!(
            count(&page, &child_row).await == 0,
            "a refresh reopened a collapsed node"
        );
        assert_eq!(aria_expanded(&page, &toggle).await, Some(false));
        assert!(has_class(&page, &my_row, "selected").await, "a refresh lost the selection");
        assert_eq!(page.execute(&place, vec![]).await.unwrap(), placed, "a refresh moved the selected row");
        page.find(Locator::Css(&toggle)).await.unwrap().click().await.unwrap();
        wait_for_element(&page, &child_row).await;
        assert_eq!(aria_expanded(&page, &toggle).await, Some(true));

        // Collapse all hides every child row; expand all brings them back.
        click(&page, "#collapse-all").await;
        wait_until_gone(&page, &child_row).await;
        let drawn = count(&page, "#process-rows .row[data-key]").await;
        assert_eq!(drawn, count(&page, "#process-rows .row[aria-level='1']").await, "only roots left");
        click(&page, "#expand-all").await;
        wait_for_element(&page, &child_row).await;

        // Search by the child's pid: it stays, with its ancestors as context;
        // every other row left is a match too (the pid in its command line).
        let unfiltered = row_count(&page).await;
        search.send_keys(&child_pid.to_string()).await.unwrap();
        eventually(&page, "the search to filter", ROW_COUNT_JS, |rows| {
            rows.as_u64().is_some_and(|n| n < unfiltered)
        })
        .await;
        wait_for_element(&page, &child_row).await;
        assert!(has_class(&page, &my_row, "context").await, "an ancestor is shown as context");
        assert!(!has_class(&page, &child_row, "context").await, "the match is shown as a match");
        let stray = page
            .execute(
                "const needle = arguments[0];
                 return [...document.querySelectorAll('#process-rows .row[data-key]:not(.context)')]
                   .filter(tr => !(tr.textContent + ' ' + tr.querySelector('.name').title).includes(needle))
                   .map(tr => tr.dataset.key);",
                vec![json!(child_pid.to_string())],
            )
            .await
            .unwrap();
        assert_eq!(stray, json!([]), "rows shown that do not match the search");
        let filtered = row_count(&page).await;
        search.clear().await.unwrap();
        search.send_keys(&my_name).await.unwrap();
        wait_for_element(&page, &my_row).await;
        assert!(!has_class(&page, &my_row, "context").await);
        search.clear().await.unwrap();
        // The input event of clear() is not always sent; Escape clears too.
        search.send_keys("\u{e00c}").await.unwrap();
        eventually(&page, "every process again", ROW_COUNT_JS, |rows| {
            rows.as_u64().is_some_and(|n| n > filtered)
        })
        .await;

        // Details of the child; its parent link leads to this process.
        page.find(Locator::Css(&format!("{child_row} .name"))).await.unwrap().click().await.unwrap();
        wait_for_element(&page, "#details:not([hidden])").await;
        assert_eq!(text_of(&page, "#details .details-title").await, child_name);
        assert_eq!(text_of(&page, "#details .field-pid").await, child_pid.to_string());
        let cmd = text_of(&page, "#details .field-cmd").await;
        assert!(cmd.contains("600"), "the command line of `sleep 600` is shown: {cmd}");
        click(&page, "#details .field-parent button.link").await;
        eventually(&page, "this process selected", "return document.querySelector('#details .details-title').textContent;", |v| {
            v.as_str() == Some(my_name.as_str())
        })
        .await;
        assert!(has_class(&page, &my_row, "selected").await);

        // A reload keeps host and selection (both in the hash).
        page.refresh().await.unwrap();
        wait_for_element(&page, &format!("{my_row}.selected")).await;
        assert_eq!(text_of(&page, "#details .field-pid").await, me.to_string());
        assert_eq!(text_of(&page, "#connection-text").await, "Live");
        screenshot(&page, "desktop").await;
    })
    .await;

    agent.stop().await;
    drop(child);
}

/// Hostile and broken data: parent cycles, a process its own parent, a
/// reused pid, a parent that is gone, a long chain, and HTML in every text
/// field. Every process shows exactly once, as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_renders_cycles_and_hostile_names_safely() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let snapshot = hostile_snapshot();
    let expected: Vec<u32> = snapshot.processes.iter().map(|p| p.pid).collect();
    post_snapshot(&app, &snapshot).await;

    with_browser(1280, 900, |page| async move {
        page.goto(&format!("{}/#host={}", app.address, snapshot.host.id)).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, &row_selector(4)).await;

        // Every process exactly once, cycles included: scroll through all
        // rows; positions 2..=N+1 (1 is the header) each hold one process.
        let rows = all_rows(&page).await;
        let total = row_count(&page).await;
        assert_eq!(total as usize, expected.len(), "one row per process");
        let positions: Vec<u64> = rows.iter().map(|(index, _, _)| *index).collect();
        assert_eq!(positions, (2..=total + 1).collect::<Vec<_>>(), "no row missing while scrolling");
        let mut shown: Vec<u32> = rows.iter().map(|(_, pid, _)| *pid).collect();
        shown.sort_unstable();
        let mut wanted = expected.clone();
        wanted.sort_unstable();
        assert_eq!(shown, wanted, "every process exactly once");

        // Who ended at the root, and who under whom.
        let level = |pid: u32| rows.iter().find(|(_, p, _)| *p == pid).map(|(_, _, level)| *level).unwrap();
        assert_eq!(level(12), 1, "own parent -> root");
        assert_eq!(level(20), 1, "younger 'parent' (reused pid) -> root");
        assert_eq!(level(30), 1, "parent gone -> root");
        assert_eq!((level(10), level(11)), (1, 2), "the A<->B cycle is cut at its oldest member");
        assert_eq!(level(4), 2);
        assert_eq!(
            level(CHAIN_START + CHAIN_LEN - 1),
            u64::from(CHAIN_LEN),
            "a long looped chain renders whole, cut once",
        );
        page.execute("document.getElementById('tree-scroll').scrollTop = 0;", vec![]).await.unwrap();
        wait_for_element(&page, &row_selector(4)).await;

        // HTML in names, users and command lines is shown as text.
        assert_eq!(text_of(&page, &format!("{} .name", row_selector(4))).await, XSS_NAME);
        assert_eq!(text_of(&page, &format!("{} .col-user", row_selector(4))).await, XSS_USER);
        page.find(Locator::Css(&format!("{} .name", row_selector(4)))).await.unwrap().click().await.unwrap();
        wait_for_element(&page, "#details:not([hidden])").await;
        assert_eq!(text_of(&page, "#details .details-title").await, XSS_NAME);
        assert!(text_of(&page, "#details .field-cmd").await.contains("<script>"));
        let injected = page
            .execute(
                "return {
                   elements: document.querySelectorAll('main img, main script, main b, #details img, #details script, #details b').length,
                   ran: window.__procmonInjected === true,
                 };",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, json!({ "elements": 0, "ran": false }), "no markup from the data");
        // The hostname is text too.
        assert_eq!(
            text_of(&page, &format!("button.host[data-host-id='{}'] .host-name", snapshot.host.id)).await,
            snapshot.host.hostname
        );

        // The snapshot came once, long ago by its interval: the host is offline.
        eventually(&page, "the host marked offline", "return document.getElementById('connection-text').textContent;", |v| {
            v.as_str() == Some("Host offline")
        })
        .await;
        assert!(text_of(&page, "#banner").await.contains("offline"));

        // Sorting orders siblings: the roots by memory, biggest first, then
        // smallest first; the keyboard walks the rows in that order.
        click(&page, "#collapse-all").await;
        click(&page, ".th.col-memory button").await;
        let roots = "return [...document.querySelectorAll('#process-rows .row[data-key]')]
                       .map(tr => Number(tr.dataset.key.split('@')[0]));";
        let by_memory = json!([CHAIN_START, 30, 20, 12, 10, 1]);
        eventually(&page, "roots by memory, descending", roots, |v| v == &by_memory).await;
        assert_eq!(attribute_of_text(&page, ".th.col-memory", "aria-sort").await, "descending");
        click(&page, ".th.col-memory button").await;
        let ascending = json!([1, 10, 12, 20, 30, CHAIN_START]);
        eventually(&page, "roots by memory, ascending", roots, |v| v == &ascending).await;
        assert_eq!(attribute_of_text(&page, ".th.col-memory", "aria-sort").await, "ascending");
        page.find(Locator::Css(&format!("{} .name", row_selector(10)))).await.unwrap().click().await.unwrap();
        let tree = page.find(Locator::Css("#tree-scroll")).await.unwrap();
        tree.send_keys("\u{e015}").await.unwrap(); // Arrow Down
        wait_for_element(&page, &format!("{}.selected", row_selector(12))).await;
        tree.send_keys("\u{e012}").await.unwrap(); // Arrow Left: to the parent (none, a root)
        tree.send_keys("\u{e013}").await.unwrap(); // Arrow Up
        wait_for_element(&page, &format!("{}.selected", row_selector(10))).await;
        tree.send_keys("\u{e014}").await.unwrap(); // Arrow Right opens it
        wait_for_element(&page, &row_selector(11)).await;
        assert_eq!(aria_expanded(&page, &format!("{} button.toggle", row_selector(10))).await, Some(true));

        // The tree module on its own: a 100,000-long cycle and a self-parent
        // build with no recursion, every process once.
        let checked = page
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 import('/js/tree.js').then(({ buildTree, visibleRows }) => {
                   const t = '2024-01-01T00:00:00Z';
                   const procs = [];
                   for (let pid = 1; pid <= 100000; pid++)
                     procs.push({ pid, parent_pid: pid === 1 ? 100000 : pid - 1, start_time: t, name: 'p' });
                   procs.push({ pid: 200000, parent_pid: 200000, start_time: t, name: 'self' });
                   const tree = buildTree(procs);
                   const rows = visibleRows(tree, {});
                   done({ rows: rows.length, unique: new Set(rows.map(r => r.node.key)).size,
                          roots: tree.roots.length, deepest: Math.max(...rows.map(r => r.depth)) });
                 }, (e) => done({ error: String(e) }));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(checked, json!({ "rows": 100001, "unique": 100001, "roots": 2, "deepest": 99999 }));
    })
    .await;
}

/// At phone width the page does not scroll sideways, the host list sits
/// above the tree, and the less important columns are hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_fits_a_phone_screen() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let snapshot = hostile_snapshot();
    post_snapshot(&app, &snapshot).await;

    with_browser(375, 812, |page| async move {
        page.goto(&format!("{}/#host={}", app.address, snapshot.host.id)).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, &row_selector(4)).await;
        // Select a process so the details pane is open too.
        page.find(Locator::Css(&format!("{} .name", row_selector(20)))).await.unwrap().click().await.unwrap();
        wait_for_element(&page, "#details:not([hidden])").await;

        let layout = page
            .execute(
                "const r = (s) => document.querySelector(s).getBoundingClientRect();
                 const shown = (s) => { const e = document.querySelector(s); return !!e && getComputedStyle(e).display !== 'none'; };
                 return {
                   viewport: document.documentElement.clientWidth,
                   page: document.documentElement.scrollWidth,
                   hostsAboveTree: r('#hosts-pane').bottom <= r('#tree-scroll').top,
                   userColumn: shown('.th.col-user'),
                   memoryColumn: shown('.th.col-memory'),
                   memoryInView: r('.th.col-memory').right <= document.documentElement.clientWidth,
                   hostToggle: shown('#hosts-toggle'),
                 };",
                vec![],
            )
            .await
            .unwrap();
        assert!(layout["viewport"].as_u64().unwrap() <= 400, "a phone-sized viewport: {layout}");
        assert!(
            layout["page"].as_u64() <= layout["viewport"].as_u64(),
            "no sideways scrolling of the page: {layout}"
        );
        assert_eq!(layout["hostsAboveTree"], json!(true), "{layout}");
        assert_eq!(layout["userColumn"], json!(false), "{layout}");
        assert_eq!(layout["memoryColumn"], json!(true), "{layout}");
        assert_eq!(layout["memoryInView"], json!(true), "numbers in view without scrolling: {layout}");
        assert_eq!(layout["hostToggle"], json!(true), "{layout}");

        // The folded host list opens from its toggle.
        assert_eq!(count(&page, "#host-list:not([hidden]) button.host").await, 1);
        let list_shown = "return getComputedStyle(document.getElementById('host-list')).display !== 'none';";
        assert_eq!(page.execute(list_shown, vec![]).await.unwrap(), json!(false));
        click(&page, "#hosts-toggle").await;
        eventually(&page, "the host list unfolded", list_shown, |v| v == &json!(true)).await;
        screenshot(&page, "phone").await;
    })
    .await;
}

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

// ---- live updates -----------------------------------------------------------

/// A process started on the host shows at once, green, without the page
/// fetching the listing again; one that exited turns red, then goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_a_started_process_flashes_green_and_an_exited_one_turns_red_then_goes() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let first = sample_snapshot("host-a", 12);
    post_snapshot(&app, &first).await;

    with_browser(1280, 800, |page| async move {
        open_live(&page, &app, "host-a").await;
        let listings = listing_fetches(&page).await;

        let mut next = later(&first);
        let gone = next.processes.remove(3);
        let mut newcomer = next.processes[1].clone();
        newcomer.pid = 9001;
        newcomer.name = "newcomer".into();
        newcomer.start_time = next.collected_at;
        next.processes.push(newcomer);
        let sent = Instant::now();
        post_snapshot(&app, &next).await;
        wait_for_element(&page, &format!("{}.born", row_selector(9001))).await;
        let shown_after = sent.elapsed();
        assert!(
            shown_after < Duration::from_secs(3),
            "the new process showed after {shown_after:?}"
        );
        wait_for_element(&page, &format!("{}.exited", row_selector(gone.pid))).await;
        screenshot(&page, "live-started-and-exited").await;
        wait_until_gone(&page, &row_selector(gone.pid)).await;
        assert!(
            sent.elapsed() >= Duration::from_secs(3),
            "the exited process stayed red for a while"
        );
        eventually(
            &page,
            "the green to end",
            &format!(
                "return document.querySelector({}).classList.contains('born');",
                json!(row_selector(9001))
            ),
            |v| v == &json!(false),
        )
        .await;
        assert_eq!(
            listing_fetches(&page).await,
            listings,
            "the full listing was fetched again"
        );
        assert_eq!(row_count(&page).await, 12);
    })
    .await;
}

/// Behind a proxy that breaks server-sent events, the page says it polls
/// instead, and a polled listing still shows what changed as the stream
/// would: the new process green, the exited one red and then gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_polling_behind_a_proxy_without_event_streams_still_flashes() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let first = sample_snapshot("host-a", 12);
    post_snapshot(&app, &first).await;
    let proxy = proxy_refusing_event_streams(app.port).await;

    with_browser(1280, 800, |page| async move {
        page.goto(&format!("http://127.0.0.1:{proxy}/#host=host-a"))
            .await
            .unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, "#process-rows .row[data-key]").await;
        wait_for_element(&page, "#connection[data-live='polling']").await;

        let mut next = later(&first);
        let gone = next.processes.remove(3);
        let mut newcomer = next.processes[1].clone();
        newcomer.pid = 9001;
        newcomer.name = "newcomer".into();
        newcomer.start_time = next.collected_at;
        next.processes.push(newcomer);
        post_snapshot(&app, &next).await;
        wait_for_element(&page, &format!("{}.born", row_selector(9001))).await;
        wait_for_element(&page, &format!("{}.exited", row_selector(gone.pid))).await;
        screenshot(&page, "live-polling-started-and-exited").await;
        wait_until_gone(&page, &row_selector(gone.pid)).await;
        assert_eq!(row_count(&page).await, 12);
        // Still polling: the stream never got through.
        wait_for_element(&page, "#connection[data-live='polling']").await;
    })
    .await;
}

/// A proxy in front of the server on 127.0.0.1 that passes every request
/// but the live event stream (`GET /api/live/`), whose connection it drops,
/// as some proxies break server-sent events. Returns its port.
async fn proxy_refusing_event_streams(upstream: u16) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let answers = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                // Requests are read one head at a time (the page sends no
                // request bodies but the sign-in's, which has a length).
                let mut pending = Vec::new();
                let mut buffer = [0u8; 16 * 1024];
                loop {
                    let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match from_client.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => pending.extend_from_slice(&buffer[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&pending[..end + 4]).to_string();
                    let path = head.split(' ').nth(1).unwrap_or("");
                    if path == "/api/live/" || path.starts_with("/api/live/?") {
                        break;
                    }
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while pending.len() < end + 4 + length {
                        match from_client.read(&mut buffer).await {
                            Ok(0) | Err(_) => return answers.abort(),
                            Ok(n) => pending.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let request: Vec<u8> = pending.drain(..end + 4 + length).collect();
                    if to_server.write_all(&request).await.is_err() {
                        break;
                    }
                }
                answers.abort();
            });
        }
    });
    port
}

/// What a person set up (folded nodes, the selection, where the row being
/// read is on screen, the search) survives pushed changes, a stream that
/// breaks and reconnects, and a reload the server asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_the_view_survives_pushed_changes_and_a_reconnect() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let mut first = sample_snapshot("host-a", 120);
    // A tree three wide, all started at one time.
    let pids: Vec<u32> = first.processes.iter().map(|p| p.pid).collect();
    for (i, p) in first.processes.iter_mut().enumerate() {
        p.parent_pid = (i > 0).then(|| pids[(i - 1) / 3]);
        p.start_time = first.collected_at - chrono::Duration::hours(1);
    }
    post_snapshot(&app, &first).await;
    let folded = pids[1];
    let selected = pids[30];

    with_browser(1280, 800, |page| async move {
        open_live(&page, &app, "host-a").await;
        click(&page, &format!("{} button.toggle", row_selector(folded))).await;
        eventually(&page, "the node folded", &format!(
            "return document.querySelector({}).getAttribute('aria-expanded');",
            json!(row_selector(folded))
        ), |v| v == &json!("false"))
        .await;
        page.execute("document.getElementById('tree-scroll').scrollTop = 600;", vec![]).await.unwrap();
        click(&page, &format!("{} .name", row_selector(selected))).await;
        wait_for_element(&page, &format!("{}.selected", row_selector(selected))).await;
        let place = format!(
            "const r = document.querySelector({}); return r && Math.round(r.getBoundingClientRect().top);",
            json!(format!("{}.selected", row_selector(selected)))
        );
        let placed = page.execute(&place, vec![]).await.unwrap();
        assert!(placed.is_number());
        let rows = row_count(&page).await;
        // The folded node is scrolled out of view: that it stayed folded
        // shows in the number of rows (its subtree would add dozens).
        let still = |what: &'static str, rows: u64| {
            let page = page.clone();
            let place = place.clone();
            let placed = placed.clone();
            async move {
                assert_eq!(row_count(&page).await, rows, "{what}: the folded node opened");
                assert!(has_class(&page, &row_selector(selected), "selected").await, "{what}: the selection was lost");
                assert_eq!(page.execute(&place, vec![]).await.unwrap(), placed, "{what}: the selected row moved");
            }
        };

        // Pushed changes: processes start above the selected row.
        let mut next = first.clone();
        for n in 0..2u32 {
            next = later(&next);
            let mut started = next.processes[1].clone();
            started.pid = 5000 + n;
            started.parent_pid = Some(pids[0]);
            next.processes.push(started);
            next.processes[5].cpu_percent += 10.0;
            post_snapshot(&app, &next).await;
        }
        eventually(&page, "both new processes", ROW_COUNT_JS, |v| v.as_u64() == Some(rows + 2)).await;
        still("after pushed changes", rows + 2).await;

        // The stream breaks (the server forgets the host's live state, as
        // after a restart or on another server): the page reconnects with
        // the last snapshot it had, and is sent what changed since, from the
        // store's history, without loading the listing again.
        let streams = resource_count(&page, "/api/live/").await;
        let listings = listing_fetches(&page).await;
        app.state.live.remove("host-a");
        eventually(&page, "a new stream", &format!(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/live/')).length > {streams};"
        ), |v| v == &json!(true))
        .await;
        next = later(&next);
        next.processes.push({
            let mut p = next.processes[1].clone();
            p.pid = 5002;
            p.parent_pid = Some(pids[0]);
            p
        });
        post_snapshot(&app, &next).await;
        eventually(&page, "the third new process", ROW_COUNT_JS, |v| v.as_u64() == Some(rows + 3)).await;
        wait_for_element(&page, "#connection[data-live='stream']").await;
        still("after a reconnect", rows + 3).await;
        assert_eq!(
            listing_fetches(&page).await,
            listings,
            "the page reloaded the listing instead of resuming the stream"
        );
        // And the stream flows again.
        next = later(&next);
        next.processes.retain(|p| p.pid != 5002);
        post_snapshot(&app, &next).await;
        eventually(&page, "the third new process gone", ROW_COUNT_JS, |v| v.as_u64() == Some(rows + 2)).await;

        // The search holds over pushed changes too.
        let search = page.find(Locator::Css("#search")).await.unwrap();
        search.send_keys("proc-3").await.unwrap();
        let matches = "return document.getElementById('process-count').textContent;";
        let before = eventually(&page, "the search to apply", matches, |v| v.as_str().is_some_and(|t| t.contains("match"))).await;
        next = later(&next);
        next.processes[7].cpu_percent += 5.0;
        post_snapshot(&app, &next).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(page.execute(matches, vec![]).await.unwrap(), before);
        assert_eq!(search.prop("value").await.unwrap().as_deref(), Some("proc-3"));
    })
    .await;
}

/// A snapshot of host-a with `count` processes: one parent with every
/// other process beneath it, in pid order, all started an hour ago.
fn one_parent_host(count: u32) -> Snapshot {
    let mut first = sample_snapshot("host-a", count);
    for p in first.processes.iter_mut() {
        p.parent_pid = (p.pid > 1).then_some(1);
        p.start_time = first.collected_at - chrono::Duration::hours(1);
    }
    first
}

/// Scrolls the list's end into view, selects `pid`, and scrolls to the end
/// again once the details pane has narrowed the tree. The script that reads
/// the selected row's top on screen, and that top now (asserted in view).
async fn select_with_the_end_in_view(page: &Client, pid: u32) -> (String, serde_json::Value) {
    let to_end = "const s = document.getElementById('tree-scroll'); s.scrollTop = s.scrollHeight;";
    page.execute(to_end, vec![]).await.unwrap();
    click(page, &format!("{} .name", row_selector(pid))).await;
    let selected_row = format!("{}.selected", row_selector(pid));
    wait_for_element(page, &selected_row).await;
    wait_for_element(page, "#details:not([hidden])").await;
    page.execute(to_end, vec![]).await.unwrap();
    let place = format!(
        "const r = document.querySelector({}); return r && Math.round(r.getBoundingClientRect().top);",
        json!(selected_row)
    );
    let placed = page.execute(&place, vec![]).await.unwrap();
    assert!(placed.is_number(), "the selected row is in view");
    (place, placed)
}

/// The selected row stays where it is on screen while processes start and
/// exit above it, and while those below it exit with the list's end in
/// view (the view would scroll back and pull the row down) and others then
/// start below it: a person reading it never sees it move away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_the_selected_row_stays_put_as_processes_come_and_go_around_it() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let first = one_parent_host(60);
    post_snapshot(&app, &first).await;
    let selected = 55;

    with_browser(1280, 800, |page| async move {
        open_live(&page, &app, "host-a").await;
        // The list's end in view, the selected row a few above it (scrolled
        // there again once the details pane has narrowed the tree).
        let (place, placed) = select_with_the_end_in_view(&page, selected).await;
        let at_end = "const s = document.getElementById('tree-scroll');
                      return s.scrollTop + s.clientHeight >= s.scrollHeight - 1;";
        assert_eq!(page.execute(at_end, vec![]).await.unwrap(), json!(true), "the list's end is in view");
        let still = |what: &'static str, rows: u64| {
            let page = page.clone();
            let place = place.clone();
            let placed = placed.clone();
            async move {
                eventually(&page, what, ROW_COUNT_JS, |v| v.as_u64() == Some(rows)).await;
                assert!(has_class(&page, &row_selector(selected), "selected").await, "{what}: the selection was lost");
                assert_eq!(page.execute(&place, vec![]).await.unwrap(), placed, "{what}: the selected row moved");
            }
        };

        // Three processes start above the selected row.
        let mut next = later(&first);
        for pid in [20_001, 20_002, 20_003] {
            let mut started = next.processes[1].clone();
            started.pid = pid;
            started.parent_pid = Some(10);
            started.start_time = next.collected_at;
            next.processes.push(started);
        }
        post_snapshot(&app, &next).await;
        still("three processes started above", 63).await;

        // Four above it exit: red a while, then gone.
        next = later(&next);
        next.processes.retain(|p| !(20..24).contains(&p.pid));
        post_snapshot(&app, &next).await;
        still("four processes above exited", 59).await;

        // Every process below it exits: the list's end comes up to it.
        next = later(&next);
        next.processes.retain(|p| p.pid <= selected || p.pid > 20_000);
        post_snapshot(&app, &next).await;
        still("the processes below exited", 54).await;

        // New processes start below it again.
        next = later(&next);
        for pid in 100..104 {
            let mut started = next.processes[1].clone();
            started.pid = pid;
            started.start_time = next.collected_at;
            next.processes.push(started);
        }
        post_snapshot(&app, &next).await;
        still("four processes started below", 58).await;

        // Scrolling up gives back the room that kept the row in place: the
        // list ends at its last row again.
        page.execute("document.getElementById('tree-scroll').scrollTop = 0;", vec![]).await.unwrap();
        eventually(
            &page,
            "no blank room below the last row",
            "const body = document.getElementById('process-rows');
             const row = parseFloat(getComputedStyle(document.getElementById('process-table')).getPropertyValue('--row-height'));
             return Math.round(parseFloat(body.style.height) / row);",
            |v| v.as_u64() == Some(58),
        )
        .await;
    })
    .await;
}

/// The selected row stays put when so many processes exit around it that
/// the rows left end above the view's bottom (a small host, or a search),
/// and through every refresh after that: the blank room below the last row
/// is as much as keeps it in place, though the box's scroll height (never
/// less than the view's) no longer tells how much room is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_the_selected_row_stays_put_when_the_rows_left_end_above_the_view_bottom() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let first = one_parent_host(30);
    post_snapshot(&app, &first).await;
    let selected = 20;

    with_browser(1280, 800, |page| async move {
        open_live(&page, &app, "host-a").await;
        // The list's end in view, the selected row in the view's upper half.
        let (place, placed) = select_with_the_end_in_view(&page, selected).await;
        let scrolled = "return document.getElementById('tree-scroll').scrollTop;";
        assert!(
            page.execute(scrolled, vec![]).await.unwrap().as_f64().unwrap() > 0.0,
            "the tree is scrolled down"
        );
        let still = |what: &'static str| {
            let page = page.clone();
            let place = place.clone();
            let placed = placed.clone();
            async move {
                assert!(has_class(&page, &row_selector(selected), "selected").await, "{what}: the selection was lost");
                assert_eq!(page.execute(&place, vec![]).await.unwrap(), placed, "{what}: the selected row moved");
            }
        };

        // All but nine exit, above it and below it: red a while, then gone.
        let mut next = later(&first);
        next.processes.retain(|p| p.pid == 1 || (13..=selected).contains(&p.pid));
        post_snapshot(&app, &next).await;
        eventually(&page, "the exited processes gone", ROW_COUNT_JS, |v| v.as_u64() == Some(9)).await;
        let ends_above = "const s = document.getElementById('tree-scroll');
             const body = document.getElementById('process-rows');
             const row = parseFloat(getComputedStyle(document.getElementById('process-table')).getPropertyValue('--row-height'));
             return body.offsetTop + 9 * row < s.clientHeight;";
        assert_eq!(
            page.execute(ends_above, vec![]).await.unwrap(),
            json!(true),
            "the rows left end above the view's bottom"
        );
        still("the processes around it exited").await;

        // Refreshes that change only numbers, each waited for until drawn.
        for n in 0..3 {
            let drawn = pushed_frames(&page).await;
            next = later(&next);
            for p in next.processes.iter_mut() {
                p.cpu_percent = ((p.pid + n) % 5) as f32 * 2.5;
            }
            post_snapshot(&app, &next).await;
            eventually(&page, "the refresh drawn", PUSHED_FRAMES_JS, |v| {
                v.as_u64().is_some_and(|frames| frames > drawn)
            })
            .await;
            still("a refresh of the numbers").await;
        }

        // A process starts above it, one below it.
        next = later(&next);
        for (pid, parent) in [(14_001, 14), (14_002, selected)] {
            let mut started = next.processes[1].clone();
            started.pid = pid;
            started.parent_pid = Some(parent);
            started.start_time = next.collected_at;
            next.processes.push(started);
        }
        post_snapshot(&app, &next).await;
        eventually(&page, "the two new processes", ROW_COUNT_JS, |v| v.as_u64() == Some(11)).await;
        still("two processes started").await;
    })
    .await;
}

/// The flat list (button or `f`) sorts every process by CPU, biggest first,
/// and keeps sorting as the numbers move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_the_flat_list_sorts_by_cpu() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let mut first = sample_snapshot("host-a", 10);
    for (i, p) in first.processes.iter_mut().enumerate() {
        p.cpu_percent = [3.0, 50.0, 7.0, 0.0, 12.0, 90.0, 1.0, 33.0, 5.0, 20.0][i];
    }
    post_snapshot(&app, &first).await;

    with_browser(1280, 800, |page| async move {
        open_live(&page, &app, "host-a").await;
        click(&page, "#view-flat").await;
        let order = "return [...document.querySelectorAll('#process-rows .row[data-key]')]
                       .map(r => [Number(r.dataset.key.split('@')[0]), Number(r.getAttribute('aria-level'))]);";
        let by_cpu = |snapshot: &Snapshot| {
            let mut p: Vec<_> = snapshot.processes.iter().collect();
            p.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent).then(a.pid.cmp(&b.pid)));
            json!(p.iter().map(|p| json!([p.pid, 1])).collect::<Vec<_>>())
        };
        eventually(&page, "every process, by CPU", order, |v| v == &by_cpu(&first)).await;
        assert_eq!(attribute_of_text(&page, ".th.col-cpu", "aria-sort").await, "descending");
        assert_eq!(attribute_of_text(&page, "#view-flat", "aria-pressed").await, "true");

        let mut next = later(&first);
        next.processes[3].cpu_percent = 99.0;
        post_snapshot(&app, &next).await;
        eventually(&page, "the busiest first", order, |v| v == &by_cpu(&next)).await;

        // "f" goes back to the tree.
        page.find(Locator::Css("#tree-scroll")).await.unwrap().send_keys("f").await.unwrap();
        wait_for_element(&page, "#view-flat[aria-pressed='false']").await;
        wait_for_element(&page, "#expand-all:not([disabled])").await;
    })
    .await;
}

/// The columns chosen and the CPU scale are remembered over a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_the_column_chooser_is_remembered() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    post_snapshot(&app, &sample_snapshot("host-a", 5)).await;

    with_browser(1280, 800, |page| async move {
        open_live(&page, &app, "host-a").await;
        assert_eq!(count(&page, ".th.col-command").await, 0);
        click(&page, "#view-options summary").await;
        click(&page, "#column-chooser input[value='command']").await;
        click(&page, "#column-chooser input[value='user']").await;
        click(&page, "#column-chooser input[value='handles']").await;
        page.find(Locator::Css("#cpu-scale"))
            .await
            .unwrap()
            .select_by_value("machine")
            .await
            .unwrap();
        wait_for_element(&page, ".th.col-command").await;
        assert_eq!(
            text_of(&page, ".th.col-handles").await,
            "Open files",
            "a Linux host counts open files"
        );
        assert_eq!(text_of(&page, ".th.col-cpu").await, "CPU % all");
        let command = text_of(&page, &format!("{} .col-command", row_selector(2))).await;
        assert!(command.starts_with("/usr/bin/proc-2"), "{command}");

        page.refresh().await.unwrap();
        wait_for_element(&page, &row_selector(1)).await;
        wait_for_element(&page, ".th.col-command").await;
        assert_eq!(count(&page, ".th.col-user").await, 0);
        assert_eq!(text_of(&page, ".th.col-cpu").await, "CPU % all");
    })
    .await;
}

/// 10,000 processes: the page draws a screenful of rows, however far it
/// is scrolled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ten_thousand_processes_keep_the_dom_small() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let sim = procmon_model::fixtures::SimHost::new(
        "big-host",
        10_000,
        7,
        Utc::now() - chrono::Duration::minutes(1),
    );
    post_snapshot(&app, &sim.snapshot()).await;

    with_browser(1280, 800, |page| async move {
        open_live(&page, &app, "big-host").await;
        click(&page, "#expand-all").await;
        eventually(&page, "every process", ROW_COUNT_JS, |v| {
            v.as_u64().is_some_and(|n| n > 9_000)
        })
        .await;
        let seen = page
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const scroller = document.getElementById('tree-scroll');
                 const frame = () => new Promise(r => requestAnimationFrame(r));
                 (async () => {
                   scroller.scrollTop = scroller.clientHeight * 3;
                   await frame();
                   await frame();
                   const start = document.getElementsByTagName('*').length;
                   let most = 0, steps = 0;
                   while (scroller.scrollTop + scroller.clientHeight < scroller.scrollHeight - 1) {
                     scroller.scrollTop += scroller.clientHeight * 3;
                     await frame();
                     await frame();
                     most = Math.max(most, document.querySelectorAll('#process-rows .row').length);
                     steps += 1;
                   }
                   done({ start, end: document.getElementsByTagName('*').length, most, steps });
                 })();",
                vec![],
            )
            .await
            .unwrap();
        let most = seen["most"].as_u64().unwrap();
        assert!(most < 200, "row elements after scrolling through: {seen}");
        let growth = seen["end"].as_i64().unwrap() - seen["start"].as_i64().unwrap();
        assert!(growth.abs() < 20, "the DOM grew while scrolling: {seen}");
        assert!(seen["steps"].as_u64().unwrap() > 50, "{seen}");
    })
    .await;
}

/// Screenshots for a person to look at, in target/screenshots: desktop and
/// phone, light and dark, with a process just started and one just gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_screenshots_light_and_dark() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    let mut sim = procmon_model::fixtures::SimHost::new(
        "web-1",
        400,
        11,
        Utc::now() - chrono::Duration::minutes(1),
    );
    sim.churn.turnover = 0.01;
    post_snapshot(&app, &sim.snapshot()).await;
    let app = Arc::new(app);
    let sim = Arc::new(tokio::sync::Mutex::new(sim));
    for (width, height) in [(1280, 800), (390, 844)] {
        for dark in [false, true] {
            let app = Arc::clone(&app);
            let sim = Arc::clone(&sim);
            with_browser_in(width, height, dark, |page| async move {
                open_live(&page, &app, "web-1").await;
                let is_dark = page
                    .execute(
                        "return matchMedia('(prefers-color-scheme: dark)').matches;",
                        vec![],
                    )
                    .await
                    .unwrap();
                assert_eq!(is_dark, json!(dark));
                let next = sim.lock().await.next();
                post_snapshot(&app, &next).await;
                // New processes have the highest pids: the flat list by pid,
                // highest first, shows them green at the top.
                click(&page, "#view-flat").await;
                click(&page, ".th.col-pid button").await;
                click(&page, ".th.col-pid button").await;
                wait_for_element(&page, "#process-rows .row.born").await;
                let theme = if dark { "dark" } else { "light" };
                save_screenshot(&page, &format!("live-{width}x{height}-{theme}")).await;
            })
            .await;
        }
    }
}

/// The listing is asked for once as the page opens: by the small script at
/// the top of the page, before the modules load, and the page takes that
/// answer rather than asking again. With the host in the URL, and without
/// (the first online host, as the page chooses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_asks_for_the_listing_once_as_it_opens() {
    if !browser_available() {
        return;
    }
    let app = spawn_app().await;
    post_snapshot(&app, &sample_snapshot("host-a", 40)).await;
    with_browser(1280, 800, |page| async move {
        // Signed in first: the session cookie then rides on the early ask.
        open_live(&page, &app, "host-a").await;
        for url in [
            format!("{}/#host=host-a", app.address),
            format!("{}/", app.address),
        ] {
            page.goto("about:blank").await.unwrap();
            page.goto(&url).await.unwrap();
            wait_for_element(&page, "#process-rows .row[data-key]").await;
            wait_for_element(&page, "#connection[data-live='stream']").await;
            assert_eq!(listing_fetches(&page).await, 1, "{url}");
            let early = page
                .execute("return window.procmonEarly;", vec![])
                .await
                .unwrap();
            assert!(
                early["asked"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("/api/processes/?host=host-a")),
                "{url}: {early}"
            );
            assert_eq!(early["requests"], json!({}), "{url}: all taken");
        }
    })
    .await;
}

/// Opens the page on a host, signs in, and waits until changes are pushed.
async fn open_live(page: &Client, app: &TestApp, host: &str) {
    page.goto(&format!("{}/#host={host}", app.address))
        .await
        .unwrap();
    fill_sign_in(page, TEST_USER, TEST_PASSWORD).await;
    wait_for_element(page, "#process-rows .row[data-key]").await;
    wait_for_element(page, "#connection[data-live='stream']").await;
}

/// The snapshot after `snapshot`: a new id, two seconds later, the same processes.
fn later(snapshot: &Snapshot) -> Snapshot {
    let mut next = snapshot.clone();
    next.id = Uuid::new_v4();
    next.collected_at = snapshot.collected_at + chrono::Duration::seconds(2);
    next
}

/// How many full listings the page has fetched.
async fn listing_fetches(page: &Client) -> u64 {
    resource_count(page, "/api/processes/").await
}

/// How many finished requests the page made to URLs containing `part`.
async fn resource_count(page: &Client, part: &str) -> u64 {
    page.execute(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes(arguments[0])).length;",
        vec![json!(part)],
    )
    .await
    .unwrap()
    .as_u64()
    .unwrap()
}

// ---- data -------------------------------------------------------------------

const XSS_NAME: &str = "<img src=x onerror=\"window.__procmonInjected=true\">";
const XSS_USER: &str = "<b>root</b>";
const CHAIN_START: u32 = 1000;
const CHAIN_LEN: u32 = 300;

/// A snapshot no sane OS would send, with every tree trap in it.
fn hostile_snapshot() -> Snapshot {
    let base: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let at = |seconds: i64| base + chrono::Duration::seconds(seconds);
    let mut processes = vec![
        sample(1, None, "init", at(0)),
        // Two processes each other's parent, and one its own.
        sample(10, Some(11), "cycle-a", at(5)),
        sample(11, Some(10), "cycle-b", at(6)),
        sample(12, Some(12), "own-parent", at(7)),
        // The parent pid 21 now belongs to a process younger than 20.
        sample(20, Some(21), "orphan-of-reused-pid", at(8)),
        sample(21, Some(1), "pid-reuser", at(100)),
        // The parent is gone.
        sample(30, Some(999), "orphan", at(9)),
    ];
    let mut hostile = sample(4, Some(1), XSS_NAME, at(3));
    hostile.user = Some(XSS_USER.into());
    hostile.cmd = vec![
        "<script>window.__procmonInjected=true</script>".into(),
        "--name=<img src=x onerror=\"window.__procmonInjected=true\">".into(),
    ];
    hostile.exe = Some("<iframe src=javascript:alert(1)>".into());
    processes.push(hostile);
    // A long chain that loops back on itself at the end.
    for i in 0..CHAIN_LEN {
        let pid = CHAIN_START + i;
        let parent = if i == 0 {
            CHAIN_START + CHAIN_LEN - 1
        } else {
            pid - 1
        };
        processes.push(sample(pid, Some(parent), &format!("chain-{i}"), at(10)));
    }
    Snapshot {
        version: WIRE_VERSION,
        id: Uuid::new_v4(),
        collected_at: Utc::now(),
        // Sent once: after three of these intervals the host is offline.
        interval_ms: 1000,
        host: HostInfo {
            id: format!("browser-test-{}", Uuid::new_v4()),
            hostname: "<svg onload=\"window.__procmonInjected=true\">".into(),
            os_name: "TestOS".into(),
            os_version: "1".into(),
            kernel: "1.0".into(),
            arch: "x86_64".into(),
            cpu_count: 4,
            memory_total_bytes: 8 << 30,
            boot_time: base,
            agent_version: "test".into(),
        },
        load: None,
        processes,
    }
}

fn sample(
    pid: u32,
    parent_pid: Option<u32>,
    name: &str,
    start_time: DateTime<Utc>,
) -> ProcessSample {
    ProcessSample {
        pid,
        parent_pid,
        name: name.into(),
        exe: Some(format!("/usr/bin/{name}")),
        cmd: vec![name.into(), "--flag".into()],
        user: Some("root".into()),
        start_time,
        status: ProcessStatus::Sleeping,
        cpu_percent: (pid % 7) as f32 * 3.5,
        memory_rss_bytes: u64::from(pid) * 123_456,
        memory_virtual_bytes: u64::from(pid) * 1_234_567,
        memory_private_bytes: None,
        threads: Some(pid % 5 + 1),
        handles: None,
        disk_read_bytes: 0,
        disk_written_bytes: 0,
    }
}

async fn post_snapshot(app: &TestApp, snapshot: &Snapshot) {
    let response = app.post_snapshot(snapshot).await;
    let status = response.status();
    assert_eq!(
        status.as_u16(),
        201,
        "snapshot refused: {}",
        response.text().await.unwrap_or_default()
    );
}

fn process_named(snapshot: &Snapshot, pid: u32) -> &ProcessSample {
    snapshot
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("the agent's snapshot has no process {pid}"))
}

/// The real agent code (collector and sender) reporting this machine every
/// second while a test runs, so the page has live data to refresh.
struct AgentLoop {
    task: tokio::task::JoinHandle<()>,
    first: tokio::sync::watch::Receiver<Option<Snapshot>>,
}

impl AgentLoop {
    async fn start(app: &TestApp) -> AgentLoop {
        let sender = procmon_agent::Sender::new(&app.address, app.unbound_key().await.into())
            .expect("a sender for the test server");
        let (tell, first) = tokio::sync::watch::channel(None);
        let task = tokio::spawn(async move {
            let mut collector = procmon_agent::Collector::new();
            loop {
                let (back, snapshot) = tokio::task::spawn_blocking(move || {
                    let snapshot = collector.snapshot(Duration::from_secs(2));
                    (collector, snapshot)
                })
                .await
                .expect("collector thread");
                collector = back;
                sender.send(&snapshot).await.expect("the agent's send");
                tell.send_if_modified(|first| {
                    first.is_none().then(|| *first = Some(snapshot)).is_some()
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        AgentLoop { task, first }
    }

    /// The first snapshot the server accepted.
    async fn first_snapshot(&self) -> Snapshot {
        let mut first = self.first.clone();
        let snapshot = tokio::time::timeout(PATIENCE, first.wait_for(Option::is_some))
            .await
            .expect("the agent delivered a snapshot in time")
            .expect("the agent loop stopped");
        snapshot.clone().unwrap()
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

// ---- the browser ------------------------------------------------------------

fn browser_available() -> bool {
    require("chromedriver") && require("chromium")
}

/// Runs `test` with a fresh headless Chromium of the given window size, and
/// closes the browser afterwards even when the test fails.
async fn with_browser<F, Fut>(width: u32, height: u32, test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_browser_in(width, height, false, test).await;
}

/// As [`with_browser`], the system's colour scheme dark when `dark`.
async fn with_browser_in<F, Fut>(width: u32, height: u32, dark: bool, test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let profile = tempfile::tempdir().expect("a temp dir for the browser profile");
    let driver = start_driver(PATIENCE);
    let client = connect(&driver, profile.path(), width, height, dark).await;
    let outcome = tokio::spawn(test(client.clone())).await;
    if outcome.is_err() {
        screenshot(&client, "failure").await;
    }
    let _ = client.close().await;
    drop(driver);
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// Saves a screenshot to `PROCMON_SCREENSHOT_DIR`, when set, for a person to look at.
async fn screenshot(page: &Client, name: &str) {
    let Some(dir) = std::env::var_os("PROCMON_SCREENSHOT_DIR") else {
        return;
    };
    if let Ok(png) = page.screenshot().await {
        let path = Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
    }
}

/// Saves a screenshot for a person to look at: to `PROCMON_SCREENSHOT_DIR`
/// when set, else to `target/screenshots/`.
async fn save_screenshot(page: &Client, name: &str) {
    let dir = std::env::var_os("PROCMON_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"));
    std::fs::create_dir_all(&dir).expect("make the screenshot directory");
    let png = page.screenshot().await.expect("a screenshot");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
}

// ---- asking the page ----------------------------------------------------------

/// How many rows the table has in all, drawn or not (`aria-rowcount` counts
/// the header row too).
const ROW_COUNT_JS: &str =
    "return Number(document.getElementById('process-table').getAttribute('aria-rowcount')) - 1;";

/// How many pushed batches the page has drawn (each one's arrival-to-frame
/// time is kept for the page benchmark).
const PUSHED_FRAMES_JS: &str = "return window.procmonMeasure.pushToFrame.length;";

async fn pushed_frames(page: &Client) -> u64 {
    page.execute(PUSHED_FRAMES_JS, vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

async fn row_count(page: &Client) -> u64 {
    page.execute(ROW_COUNT_JS, vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

/// Scrolls the table from top to bottom, as a person would, and returns
/// every row seen: its position (`aria-rowindex`), pid and depth.
async fn all_rows(page: &Client) -> Vec<(u64, u32, u64)> {
    let seen = page
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const scroller = document.getElementById('tree-scroll');
             const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
             const seen = {};
             (async () => {
               scroller.scrollTop = 0;
               await frame();
               for (;;) {
                 for (const tr of document.querySelectorAll('#process-rows .row[data-key]')) {
                   seen[tr.getAttribute('aria-rowindex')] =
                     [Number(tr.dataset.key.split('@')[0]), Number(tr.getAttribute('aria-level'))];
                 }
                 if (scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 1) break;
                 scroller.scrollTop += Math.max(100, scroller.clientHeight / 2);
                 await frame();
               }
               done(seen);
             })();",
            vec![],
        )
        .await
        .expect("scroll through the table");
    let seen: BTreeMap<String, (u32, u64)> = serde_json::from_value(seen).unwrap();
    let seen: BTreeMap<u64, (u32, u64)> = seen
        .into_iter()
        .map(|(k, v)| (k.parse().unwrap(), v))
        .collect();
    seen.into_iter()
        .map(|(index, (pid, level))| (index, pid, level))
        .collect()
}

/// Waits for the sign-in form and signs in with it.
async fn fill_sign_in(page: &Client, name: &str, password: &str) {
    let field = wait_for_element(page, "#auth:not([hidden]) #signin-name").await;
    field.clear().await.unwrap();
    field.send_keys(name).await.unwrap();
    let field = page.find(Locator::Css("#signin-password")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(password).await.unwrap();
    click(page, "#signin-form button[type=submit]").await;
}

/// The table row of a process (its key is `pid@start_time`).
fn row_selector(pid: u32) -> String {
    format!("#process-rows .row[data-key^='{pid}@']")
}

/// Runs `script` until `ready` accepts its result, or fails naming `what`.
async fn eventually(
    page: &Client,
    what: &str,
    script: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = page
            .execute(script, vec![])
            .await
            .expect("run a script in the page");
        if ready(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}; last saw {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_element(page: &Client, css: &str) -> fantoccini::elements::Element {
    page.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("waited {PATIENCE:?} for `{css}`: {e}"))
}

async fn wait_until_gone(page: &Client, css: &str) {
    let script = format!("return document.querySelectorAll({}).length;", json!(css));
    eventually(page, &format!("`{css}` to disappear"), &script, |n| {
        n.as_u64() == Some(0)
    })
    .await;
}

async fn count(page: &Client, css: &str) -> usize {
    page.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn click(page: &Client, css: &str) {
    wait_for_element(page, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
}

async fn text_of(page: &Client, css: &str) -> String {
    // textContent, not the rendered text: what the DOM holds is what matters here.
    let script = format!("return document.querySelector({}).textContent;", json!(css));
    let value = page
        .execute(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("read `{css}`: {e}"));
    value
        .as_str()
        .unwrap_or_else(|| panic!("no element `{css}`"))
        .to_owned()
}

async fn attribute_of(page: &Client, css: &str, name: &str) -> u64 {
    let element = wait_for_element(page, css).await;
    let value = element
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("`{css}` has no {name}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("`{css}` {name}={value} is not a number"))
}

async fn attribute_of_text(page: &Client, css: &str, name: &str) -> String {
    let element = wait_for_element(page, css).await;
    element
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("`{css}` has no {name}"))
}

async fn aria_expanded(page: &Client, css: &str) -> Option<bool> {
    let element = page.find(Locator::Css(css)).await.unwrap();
    element
        .attr("aria-expanded")
        .await
        .unwrap()
        .map(|v| v == "true")
}

async fn has_class(page: &Client, css: &str, class: &str) -> bool {
    let element = page.find(Locator::Css(css)).await.unwrap();
    let classes = element.attr("class").await.unwrap().unwrap_or_default();
    classes.split_whitespace().any(|c| c == class)
}
