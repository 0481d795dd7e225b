//! The process tree of one host: this machine's live tree, picked from the
//! host list, expanded and collapsed, searched, its details and the URL
//! hash over a reload; and hostile data (parent cycles, reused pids, HTML
//! in names) drawn whole and as text, sorted and walked by keyboard.

use super::*;

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
