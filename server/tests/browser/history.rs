//! The page in time and across the fleet: the tree at a past time, what
//! changed between two times, a process's charts, the host's meters, fleet
//! search, links that reproduce a view, and the phone's details sheet.
//!
//! History is made by posting snapshots with explicit `collected_at` times
//! (one a minute over the last half hour) to a server whose clock stands
//! still, so every time below is known exactly.
//!
//! Screenshots (`history-*`, `meters-*`, `search-*`, light and dark) go to
//! `PROCMON_SCREENSHOT_DIR`, or else to `target/screenshots/`.

use super::*;
use chrono::{Duration as TimeDelta, DurationRound};
use procmon_model::HostLoad;

/// Snapshots of the history host, one a minute, the newest a minute ago.
const MINUTES: i64 = 30;
/// The snapshot (counting from the oldest) where `doomed` has exited,
/// `newbie` has started and `worker` has a new command line.
const TURN: i64 = 10;
const HOST_A: &str = "history-host-a";
const HOST_B: &str = "history-host-b";
const HOST_C: &str = "history-host-c";
/// Filler processes under init, so the tree is taller than a phone.
const FILLERS: u32 = 60;

/// One point of a chart as the page keeps it: time (s), average, minimum, maximum.
type ChartPoint = (f64, Option<f64>, Option<f64>, Option<f64>);

/// The fixed "now" of the server, and when snapshot `i` was taken.
struct Timeline {
    now: DateTime<Utc>,
}

impl Timeline {
    fn new() -> Self {
        let now = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap();
        Timeline { now }
    }
    fn at(&self, i: i64) -> DateTime<Utc> {
        self.now - TimeDelta::minutes(MINUTES - i)
    }
    fn ms(time: DateTime<Utc>) -> i64 {
        time.timestamp_millis()
    }
}

fn worker_cpu(i: i64) -> f32 {
    (i % 6) as f32 * 10.0 + 5.0
}

fn worker_rss(i: i64) -> u64 {
    (200 + i as u64) << 20
}

fn host_info(id: &str, hostname: &str, boot: DateTime<Utc>) -> HostInfo {
    HostInfo {
        id: id.into(),
        hostname: hostname.into(),
        os_name: "TestOS".into(),
        os_version: "2".into(),
        kernel: "6.1".into(),
        arch: "x86_64".into(),
        cpu_count: 4,
        memory_total_bytes: 16 << 30,
        boot_time: boot,
        agent_version: "test".into(),
        labels: Vec::new(),
    }
}

fn snapshot_at(
    host: HostInfo,
    collected_at: DateTime<Utc>,
    processes: Vec<ProcessSample>,
) -> Snapshot {
    Snapshot {
        version: WIRE_VERSION,
        id: Uuid::new_v4(),
        collected_at,
        interval_ms: 60_000,
        host,
        load: None,
        processes,
    }
}

/// Host A's snapshot `i`: init, worker (its command line changes at TURN),
/// doomed (exits at TURN, a "needle" in its command line), newbie (starts at
/// TURN), and fillers; with the host's own meters.
fn host_a_snapshot(t: &Timeline, i: i64) -> Snapshot {
    let long_ago = t.now - TimeDelta::days(1);
    let mut processes = vec![sample(1, None, "init", long_ago - TimeDelta::days(1))];
    let mut worker = sample(100, Some(1), "worker", long_ago);
    worker.cmd = vec![
        "worker".into(),
        if i < TURN { "--mode=old" } else { "--mode=new" }.into(),
    ];
    worker.cpu_percent = worker_cpu(i);
    worker.memory_rss_bytes = worker_rss(i);
    processes.push(worker);
    if i < TURN {
        let mut doomed = sample(200, Some(1), "doomed", long_ago);
        doomed.cmd = vec!["doomed".into(), "--needle-in-the-past".into()];
        processes.push(doomed);
    } else {
        processes.push(sample(
            300,
            Some(1),
            "newbie",
            t.at(TURN) - TimeDelta::seconds(5),
        ));
    }
    for n in 0..FILLERS {
        let mut filler = sample(1000 + n, Some(1), &format!("filler-{n:02}"), long_ago);
        // Mostly idle, as most processes are: the host's sum stays possible.
        filler.cpu_percent = 0.5;
        processes.push(filler);
    }
    let mut snapshot = snapshot_at(
        host_info(HOST_A, "alpha", long_ago - TimeDelta::days(2)),
        t.at(i),
        processes,
    );
    snapshot.load = Some(HostLoad {
        cpu_per_core: vec![10.0, 20.0 + i as f32, 30.0, 95.0],
        memory_used_bytes: 6 << 30,
        memory_available_bytes: 10 << 30,
        swap_total_bytes: 2 << 30,
        swap_used_bytes: 256 << 20,
        load_average: Some([1.25, 0.5, 0.25]),
    });
    snapshot
}

/// The history host over the last half hour, and two more hosts: B runs a
/// "needle" all along, C never does.
async fn post_history(app: &TestApp, t: &Timeline) {
    for i in 0..MINUTES {
        post_snapshot(app, &host_a_snapshot(t, i)).await;
    }
    let long_ago = t.now - TimeDelta::days(3);
    for i in [0, MINUTES - 1] {
        let mut needle = sample(42, Some(1), "needle", long_ago);
        needle.user = Some("www-data".into());
        let b = vec![sample(1, None, "init", long_ago), needle];
        post_snapshot(
            app,
            &snapshot_at(host_info(HOST_B, "bravo", long_ago), t.at(i), b),
        )
        .await;
        let c = vec![
            sample(1, None, "init", long_ago),
            sample(7, Some(1), "haystack", long_ago),
        ];
        post_snapshot(
            app,
            &snapshot_at(host_info(HOST_C, "charlie", long_ago), t.at(i), c),
        )
        .await;
    }
}

async fn history_app() -> (TestApp, Timeline) {
    let t = Timeline::new();
    let clock = Arc::new(ManualClock::new(t.now));
    let app = spawn_app_with_clock(Some(clock), |_| {}).await;
    post_history(&app, &t).await;
    (app, t)
}

// ---- the tests --------------------------------------------------------------

/// The time control shows the tree as it was (a process since exited, a
/// command line as it was then), marks what changed between two times, goes
/// back to live in one click, and the URL reproduces the view after a reload
/// and steps through it with Back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_the_tree_at_a_past_time_and_what_changed() {
    if !browser_available() {
        return;
    }
    let (app, t) = history_app().await;
    let past = t.at(5);
    let since = t.at(5) + TimeDelta::seconds(30);

    with_browser(1280, 800, move |page| async move {
        page.goto(&format!("{}/#host={HOST_A}", app.address)).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        // Live: newbie runs, doomed is gone.
        wait_for_element(&page, &row_selector(300)).await;
        assert_eq!(count(&page, &row_selector(200)).await, 0);
        assert_eq!(attribute_of_text(&page, "#time-live", "aria-pressed").await, "true");

        // The meters show the host's own figures and an hour of points.
        eventually(&page, "the meters filled", "return document.getElementById('meters').dataset.points;", |v| {
            v.as_str().and_then(|s| s.parse::<i64>().ok()) == Some(MINUTES)
        })
        .await;
        assert_eq!(text_of(&page, "[data-meter=processes] .meter-value").await, (3 + FILLERS).to_string());
        assert_eq!(text_of(&page, "[data-meter=memory] .meter-value").await, "6.00 GiB");
        assert_eq!(text_of(&page, "[data-meter=swap] .meter-value").await, "256 MiB");
        assert_eq!(text_of(&page, "[data-meter=load] .meter-value").await, "1.25");
        assert_eq!(count(&page, "[data-meter=cpu] .meter-core").await, 4);
        // (10 + 49 + 30 + 95) / 4 cores, the newest snapshot.
        assert_eq!(text_of(&page, "[data-meter=cpu] .meter-value").await, "46%");
        assert_eq!(text_of(&page, "[data-meter=uptime] .meter-value").await, "3 d 0 h");
        assert_eq!(count(&page, "[data-meter=cpu] .meter-spark canvas").await, 1, "sparklines drawn by uPlot");

        screenshot_as(&page, "meters-desktop-light").await;
        dark(&page, true).await;
        screenshot_as(&page, "meters-desktop-dark").await;
        dark(&page, false).await;

        // The live stream's hook: a pushed point shows at once.
        let pushed = page
            .execute_async(
                "const [host, done] = arguments;
                 import('/js/meters.js').then(({ onLoad }) => {
                   onLoad(host, { at: new Date().toISOString(), load: {
                     cpu_per_core: [100, 100, 100, 100], memory_used_bytes: 7 * 2 ** 30,
                     memory_available_bytes: 9 * 2 ** 30, swap_total_bytes: 0, swap_used_bytes: 0,
                     load_average: [3.5, 2, 1] } });
                   done(true);
                 }, (e) => done(String(e)));",
                vec![json!(HOST_A)],
            )
            .await
            .unwrap();
        assert_eq!(pushed, json!(true));
        eventually(&page, "the pushed load shown", "return document.querySelector('[data-meter=load] .meter-value').textContent;", |v| {
            v.as_str() == Some("3.50")
        })
        .await;
        assert_eq!(text_of(&page, "[data-meter=cpu] .meter-value").await, "100%");
        assert_eq!(text_of(&page, "[data-meter=swap] .meter-value").await, "none");
        assert_eq!(text_of(&page, "[data-meter=processes] .meter-value").await, (3 + FILLERS).to_string());

        // Back in time: the tree as it was, with doomed and worker's old
        // command line.
        set_time_field(&page, "time-field", Timeline::ms(past)).await;
        wait_for_element(&page, &row_selector(200)).await;
        assert_eq!(count(&page, &row_selector(300)).await, 0, "newbie had not started yet");
        assert_eq!(attribute_of_text(&page, "#time-live", "aria-pressed").await, "false");
        assert!(text_of(&page, "#time-note").await.contains("As it was at"));
        // The meters show the hour before it, from stored history: the
        // host's own meters as they were (CPU as the machine's share; no
        // per-core bars, no 5 and 15 min load averages).
        eventually(
            &page,
            "the meters of the past hour",
            "return document.querySelector('[data-meter=load] .meter-sub').textContent;",
            |v| v.as_str() == Some("over 1 min"),
        )
        .await;
        assert_eq!(text_of(&page, "[data-meter=load] .meter-value").await, "1.25");
        assert_eq!(text_of(&page, "[data-meter=swap] .meter-value").await, "256 MiB");
        // (10 + 25 + 30 + 95) / 4, the 6th snapshot's cores.
        assert_eq!(text_of(&page, "[data-meter=cpu] .meter-value").await, "40%");
        assert_eq!(
            text_of(&page, "[data-meter=cpu] .meter-sub").await,
            "whole machine, 4 cores"
        );
        assert_eq!(count(&page, "[data-meter=cpu] .meter-core:not([hidden])").await, 0);
        let drawn = text_of(&page, "#meters").await;
        assert!(drawn.contains("63"), "the process count then: {drawn}");
        let points = page
            .execute("return Number(document.getElementById('meters').dataset.points);", vec![])
            .await
            .unwrap();
        assert!((5..=6).contains(&points.as_i64().unwrap()), "an hour back from the 6th snapshot: {points}");
        click(&page, &format!("{} .name", row_selector(100))).await;
        eventually(&page, "worker's command line then", "return document.querySelector('#details .field-cmd')?.textContent;", |v| {
            v.as_str() == Some("worker --mode=old")
        })
        .await;
        let hash = page.execute("return location.hash;", vec![]).await.unwrap();
        let hash = hash.as_str().unwrap().to_owned();
        assert!(hash.contains("at="), "the time is in the URL: {hash}");
        screenshot_as(&page, "history-desktop-light").await;
        dark(&page, true).await;
        screenshot_as(&page, "history-desktop-dark").await;
        dark(&page, false).await;

        // One click back to live.
        click(&page, "#time-live").await;
        wait_for_element(&page, &row_selector(300)).await;
        wait_until_gone(&page, &row_selector(200)).await;
        eventually(&page, "worker's command line now", "return document.querySelector('#details .field-cmd')?.textContent;", |v| {
            v.as_str() == Some("worker --mode=new")
        })
        .await;

        // Back goes to the past view again, Forward to live.
        page.back().await.unwrap();
        wait_for_element(&page, &row_selector(200)).await;
        page.forward().await.unwrap();
        wait_for_element(&page, &row_selector(300)).await;
        wait_until_gone(&page, &row_selector(200)).await;

        // What changed since just after the past time shown: newbie
        // started, doomed exited, worker's command line changed.
        set_time_field(&page, "changes-since", Timeline::ms(since)).await;
        wait_for_element(&page, "#changes:not([hidden]) .change-started").await;
        let changes = page
            .execute(
                "const t = (s) => [...document.querySelectorAll(s)].map(e => e.textContent);
                 return { started: t('#changes .change-started .change-name'),
                          exited: t('#changes .change-exited .change-name'),
                          changed: t('#changes .change-changed .change-detail') };",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(changes["started"], json!(["newbie (300)"]), "{changes}");
        assert_eq!(changes["exited"], json!(["doomed (200)"]), "{changes}");
        assert_eq!(
            changes["changed"],
            json!(["command line: worker --mode=old → worker --mode=new"]),
            "{changes}"
        );
        let struck = page
            .execute("return getComputedStyle(document.querySelector('#changes .change-exited .change-name')).textDecorationLine;", vec![])
            .await
            .unwrap();
        assert_eq!(struck, json!("line-through"), "an exited process is struck out");
        eventually(&page, "newbie's row marked as started", &format!(
            "return document.querySelector(\"{}\")?.classList.contains('change-started');", row_selector(300)
        ), |v| v == &json!(true))
        .await;
        assert!(has_class(&page, &row_selector(100), "change-changed").await, "worker's row marked as changed");
        screenshot_as(&page, "history-changes-desktop-light").await;

        // The exited process opens the tree just before it went.
        click(&page, "#changes .change-exited button").await;
        wait_for_element(&page, &format!("{}.selected", row_selector(200))).await;
        assert_eq!(text_of(&page, "#details .details-title").await, "doomed");

        // A reload shows the same: time, changes, selection.
        let before = page.execute("return location.hash;", vec![]).await.unwrap();
        page.refresh().await.unwrap();
        wait_for_element(&page, &format!("{}.selected", row_selector(200))).await;
        wait_for_element(&page, "#changes:not([hidden]) .change-exited").await;
        assert_eq!(page.execute("return location.hash;", vec![]).await.unwrap(), before);
        assert_eq!(attribute_of_text(&page, "#time-live", "aria-pressed").await, "false");
        assert_eq!(text_of(&page, "#details .details-title").await, "doomed");
        dark(&page, true).await;
        screenshot_as(&page, "history-changes-desktop-dark").await;
    })
    .await;
}

/// The details pane charts a process's CPU and memory: the values drawn are
/// the values sent, over the span chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_charts_show_the_values_sent() {
    if !browser_available() {
        return;
    }
    let (app, _t) = history_app().await;

    with_browser(1280, 800, move |page| async move {
        page.goto(&format!("{}/#host={HOST_A}", app.address)).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        click(&page, &format!("{} .name", row_selector(100))).await;
        let points = |metric: &str| {
            format!("return document.querySelector('#process-charts .chart[data-metric={metric}]').dataset.points ?? null;")
        };
        let cpu = eventually(&page, "the CPU chart", &points("cpu_percent"), |v| v.is_string()).await;
        let cpu: Vec<ChartPoint> = serde_json::from_str(cpu.as_str().unwrap()).unwrap();
        let sent: Vec<f64> = (0..MINUTES).map(|i| f64::from(worker_cpu(i))).collect();
        let drawn: Vec<f64> = cpu.iter().map(|p| p.1.unwrap()).collect();
        assert_eq!(drawn, sent, "the CPU line is what the agent sent, one point a minute");
        assert!(cpu.iter().all(|p| p.2 == p.1 && p.3 == p.1), "one sample per point: min = avg = max");
        let memory = eventually(&page, "the memory chart", &points("memory_rss_bytes"), |v| v.is_string()).await;
        let memory: Vec<ChartPoint> = serde_json::from_str(memory.as_str().unwrap()).unwrap();
        let sent: Vec<f64> = (0..MINUTES).map(|i| worker_rss(i) as f64).collect();
        assert_eq!(memory.iter().map(|p| p.1.unwrap()).collect::<Vec<_>>(), sent);
        assert_eq!(count(&page, "#process-charts .chart canvas").await, 2, "drawn by uPlot");

        // The last 15 minutes: 15 points at most, the newest the same.
        click(&page, "#process-charts button[data-range='15m']").await;
        let short = eventually(&page, "the 15-minute chart", &points("cpu_percent"), |v| {
            v.as_str().is_some_and(|s| serde_json::from_str::<Vec<Value>>(s).unwrap().len() < MINUTES as usize)
        })
        .await;
        let short: Vec<ChartPoint> = serde_json::from_str(short.as_str().unwrap()).unwrap();
        assert!((14..=15).contains(&short.len()), "{short:?}");
        assert_eq!(short.last().unwrap().1, Some(f64::from(worker_cpu(MINUTES - 1))));
        page.execute("document.getElementById('process-charts').scrollIntoView();", vec![])
            .await
            .unwrap();
        screenshot_as(&page, "history-chart-desktop-light").await;
        dark(&page, true).await;
        // Drawn again in the dark theme's colours.
        click(&page, "#process-charts button[data-range='1h']").await;
        eventually(&page, "the hour chart again", &points("cpu_percent"), |v| {
            v.as_str().is_some_and(|s| serde_json::from_str::<Vec<Value>>(s).unwrap().len() == MINUTES as usize)
        })
        .await;
        screenshot_as(&page, "history-chart-desktop-dark").await;
    })
    .await;
}

/// Fleet search finds a process on the hosts that run it, now or at a past
/// time, and a hit opens its host (at that time) with it selected. The host
/// list filters and sorts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_fleet_search_finds_processes_and_jumps_to_them() {
    if !browser_available() {
        return;
    }
    let (app, t) = history_app().await;
    let past = t.at(5);

    with_browser(1280, 800, move |page| async move {
        page.goto(&format!("{}/#host={HOST_C}", app.address)).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, &row_selector(7)).await;

        // The host list: a filter and an order.
        let shown = "return [...document.querySelectorAll('#host-list button.host')].map(b => b.dataset.hostId);";
        eventually(&page, "three hosts", shown, |v| v.as_array().is_some_and(|a| a.len() == 3)).await;
        let filter = wait_for_element(&page, "#host-filter").await;
        filter.send_keys("bravo").await.unwrap();
        eventually(&page, "only bravo", shown, |v| v == &json!([HOST_B])).await;
        filter.clear().await.unwrap();
        filter.send_keys("\u{e003}").await.unwrap(); // Backspace: an input event on an empty box
        eventually(&page, "every host again, by name", shown, |v| v == &json!([HOST_A, HOST_B, HOST_C])).await;
        assert_eq!(count(&page, "#host-list .host-bar-cpu").await, 3);

        // Now: only bravo runs a needle.
        click(&page, "#fleet-search-open").await;
        let text = wait_for_element(&page, "#fleet-search-text").await;
        text.send_keys("needle").await.unwrap();
        click(&page, "#fleet-search-form button[type=submit]").await;
        let hosts = "return [...document.querySelectorAll('#fleet-search-results .fleet-host')].map(s => s.dataset.hostId);";
        eventually(&page, "hits on bravo only", hosts, |v| v == &json!([HOST_B])).await;
        assert_eq!(text_of(&page, "#fleet-search-results .fleet-host-name").await, "bravo");
        screenshot_as(&page, "search-desktop-light").await;

        // Twenty-five minutes ago: alpha's doomed process had it in its command line.
        set_time_field(&page, "fleet-search-at", Timeline::ms(past)).await;
        click(&page, "#fleet-search-form button[type=submit]").await;
        eventually(&page, "hits on alpha and bravo", hosts, |v| v == &json!([HOST_A, HOST_B])).await;
        dark(&page, true).await;
        screenshot_as(&page, "search-desktop-dark").await;
        dark(&page, false).await;
        click(&page, &format!(".fleet-host[data-host-id='{HOST_A}'] button.fleet-hit")).await;

        // Alpha, at that time, doomed selected.
        wait_for_element(&page, &format!("{}.selected", row_selector(200))).await;
        assert_eq!(text_of(&page, "#details .details-title").await, "doomed");
        assert_eq!(text_of(&page, "#host-title").await, "alpha");
        wait_for_element(&page, "#fleet-search[hidden]").await;
        let hash = page.execute("return location.hash;", vec![]).await.unwrap();
        let hash = hash.as_str().unwrap();
        assert!(hash.contains(&format!("host={HOST_A}")) && hash.contains("at=") && hash.contains("p=200"), "{hash}");
        let at = page
            .execute("return Date.parse(new URLSearchParams(location.hash.slice(1)).get('at'));", vec![])
            .await
            .unwrap();
        assert_eq!(at.as_i64(), Some(Timeline::ms(past)), "the time searched");
    })
    .await;
}

/// On a phone the tree stays usable: meters and time control fit, and the
/// selected row stays in view above the details sheet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_on_a_phone_keeps_the_selected_row_above_the_details() {
    if !browser_available() {
        return;
    }
    let (app, _t) = history_app().await;

    with_browser(390, 844, move |page| async move {
        page.goto(&format!("{}/#host={HOST_A}", app.address)).await.unwrap();
        fill_sign_in(&page, TEST_USER, TEST_PASSWORD).await;
        wait_for_element(&page, &row_selector(300)).await;
        eventually(&page, "the meters filled", "return document.getElementById('meters').dataset.points;", |v| {
            v.as_str().and_then(|s| s.parse::<i64>().ok()) == Some(MINUTES)
        })
        .await;
        screenshot_as(&page, "meters-phone-light").await;
        dark(&page, true).await;
        screenshot_as(&page, "meters-phone-dark").await;
        dark(&page, false).await;

        // A row low on the screen, where the sheet will open.
        let key = page
            .execute(
                "const rows = [...document.querySelectorAll('#process-rows .row[data-key]')];
                 const low = rows.filter(tr => { const r = tr.getBoundingClientRect();
                   return r.top > innerHeight * 0.7 && r.bottom < innerHeight - 4; });
                 if (!low.length) { window.scrollBy(0, 300); return null; }
                 return low[low.length - 1].dataset.key;",
                vec![],
            )
            .await
            .unwrap();
        let key = match key.as_str() {
            Some(k) => k.to_owned(),
            None => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                page.execute(
                    "const rows = [...document.querySelectorAll('#process-rows .row[data-key]')];
                     return rows.filter(tr => tr.getBoundingClientRect().top > innerHeight * 0.7
                       && tr.getBoundingClientRect().bottom < innerHeight - 4).pop().dataset.key;",
                    vec![],
                )
                .await
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
            }
        };
        let row = format!("#process-rows .row[data-key='{key}']");
        click(&page, &format!("{row} .name")).await;
        wait_for_element(&page, "#details:not([hidden])").await;
        let visible = format!(
            "const r = document.querySelector(\"{row}\").getBoundingClientRect();
             const sheet = document.getElementById('details').getBoundingClientRect();
             return {{ above: r.bottom <= sheet.top + 1, onScreen: r.top >= 0,
                      sheetTop: sheet.top, rowBottom: r.bottom, sheetBottom: sheet.bottom, height: innerHeight }};"
        );
        let layout = eventually(&page, "the selected row above the sheet", &visible, |v| {
            v["above"] == json!(true) && v["onScreen"] == json!(true)
        })
        .await;
        assert!(layout["sheetBottom"].as_f64() <= layout["height"].as_f64(), "{layout}");
        let sideways = page
            .execute("return document.documentElement.scrollWidth <= document.documentElement.clientWidth;", vec![])
            .await
            .unwrap();
        assert_eq!(sideways, json!(true), "no sideways scrolling");
        screenshot_as(&page, "history-phone-details-light").await;
        dark(&page, true).await;
        screenshot_as(&page, "history-phone-details-dark").await;
    })
    .await;
}

// ---- helpers ----------------------------------------------------------------

/// Sets a datetime-local field to `ms` (in the browser's zone) and tells the
/// page, as a person picking a time would.
async fn set_time_field(page: &Client, id: &str, ms: i64) {
    let done = page
        .execute_async(
            "const [id, ms, done] = arguments;
             import('/js/format.js').then(({ toLocalInput }) => {
               const field = document.getElementById(id);
               field.value = toLocalInput(ms);
               field.dispatchEvent(new Event('change', { bubbles: true }));
               done(field.value);
             }, (e) => done('error: ' + e));",
            vec![json!(id), json!(ms)],
        )
        .await
        .unwrap();
    assert!(
        !done.as_str().unwrap_or("error").starts_with("error"),
        "{done}"
    );
}

/// Chrome's DevTools command `cmd`, through chromedriver.
#[derive(Debug)]
struct Cdp(&'static str, Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({ "cmd": self.0, "params": self.1 }).to_string()),
        )
    }
}

/// Makes the page see the dark (or light) system theme.
async fn dark(page: &Client, on: bool) {
    let scheme = if on { "dark" } else { "light" };
    page.issue_cmd(Cdp(
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
    ))
    .await
    .expect("emulate the colour scheme");
    let seen = page
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(seen, json!(on));
}

/// A screenshot for people, in `PROCMON_SCREENSHOT_DIR` or `target/screenshots/`.
async fn screenshot_as(page: &Client, name: &str) {
    let dir = std::env::var_os("PROCMON_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"));
    std::fs::create_dir_all(&dir).expect("make the screenshot folder");
    // Charts and sparklines draw on the next frame.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = page.screenshot().await.expect("a screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
}
