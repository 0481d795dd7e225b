//! The chosen host kept current: the listing asked for once as the page
//! opens, then pushed changes (or polling, behind a proxy that breaks the
//! stream) that flash new and exited processes, and keep the view a person
//! set up (folds, selection, the selected row's place on screen, search).

use super::*;

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
