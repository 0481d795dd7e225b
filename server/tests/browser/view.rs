//! How the table is laid out and drawn: at phone width, as a flat list
//! sorted by CPU, with the columns chosen, with 10,000 processes, and in
//! screenshots light and dark.

use super::*;

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
