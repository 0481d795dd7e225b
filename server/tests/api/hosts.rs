//! `GET /api/hosts/`: online/offline by the server's clock, totals, and
//! display names that stay unique when hostnames are not.

use chrono::{Duration, Utc};
use procmon_model::HostSummary;

use std::sync::Arc;

use procmon_server::clock::{Clock, ManualClock};

use crate::common::{sample_snapshot, spawn_app, spawn_app_with_clock};

async fn hosts(app: &crate::common::TestApp) -> Vec<HostSummary> {
    let response = app.get_hosts().await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("a list of HostSummary")
}

#[tokio::test]
async fn no_hosts_is_an_empty_list() {
    let app = spawn_app().await;
    assert!(hosts(&app).await.is_empty());
}

#[tokio::test]
async fn a_host_that_just_sent_is_online_with_its_totals() {
    let app = spawn_app().await;
    let snapshot = sample_snapshot("host-a", 4);
    app.post_snapshot(&snapshot).await;
    let list = hosts(&app).await;
    assert_eq!(list.len(), 1);
    let host = &list[0];
    assert!(host.online);
    assert_eq!(host.host, snapshot.host);
    assert_eq!(host.display_name, "host-a-name");
    assert_eq!(host.process_count, 4);
    assert!(
        (host.cpu_percent_total - 2.0).abs() < 1e-4,
        "{}",
        host.cpu_percent_total
    );
    let rss: u64 = snapshot.processes.iter().map(|p| p.memory_rss_bytes).sum();
    assert_eq!(host.memory_rss_total_bytes, rss);
    assert!(host.last_seen <= Utc::now() && host.last_seen > Utc::now() - Duration::minutes(1));
}

#[tokio::test]
async fn a_host_is_offline_after_three_intervals_of_silence_by_the_server_clock() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn_app_with_clock(Some(clock.clone()), |_| {}).await;
    let mut quiet = sample_snapshot("quiet", 2);
    // A wrong agent clock far in the future must not keep it online.
    quiet.collected_at = Utc::now() + Duration::days(365);
    app.post_snapshot(&quiet).await;
    // 7 s later, interval 2 s: "quiet" is silent for more than three
    // intervals; "busy" just sent.
    clock.advance(Duration::seconds(7));
    app.post_snapshot(&sample_snapshot("busy", 2)).await;

    let list = hosts(&app).await;
    let online = |id: &str| list.iter().find(|h| h.host.id == id).unwrap().online;
    assert!(!online("quiet"));
    assert!(online("busy"));
}

/// How far back a host's history reaches (where the page's time control
/// starts): since it was first seen, until retention takes the oldest
/// away; then from where retention cuts, rounded up to the minute.
#[tokio::test]
async fn history_reaches_back_to_first_seen_or_to_retention() {
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let app = spawn_app_with_clock(Some(clock.clone()), |s| {
        s.retention = std::time::Duration::from_secs(3600);
    })
    .await;
    let mut first = sample_snapshot("host-a", 2);
    first.collected_at = start;
    app.post_snapshot(&first).await;
    let list = hosts(&app).await;
    assert_eq!(list[0].history_from, list[0].first_seen);

    clock.advance(Duration::minutes(150));
    let mut later = sample_snapshot("host-a", 2);
    later.collected_at = clock.now();
    app.post_snapshot(&later).await;
    let host = hosts(&app).await.remove(0);
    let cut = clock.now() - Duration::hours(1);
    assert!(host.history_from > cut, "{} vs {cut}", host.history_from);
    assert!(host.history_from <= cut + Duration::minutes(1));
    assert_eq!(host.history_from.timestamp() % 60, 0);
}

#[tokio::test]
async fn hosts_sharing_a_hostname_get_distinct_display_names() {
    let app = spawn_app().await;
    for id in [
        "3f2a9c1d00000000aaaa",
        "3f2a9c1d11111111bbbb",
        "77777777cccc",
    ] {
        let mut snapshot = sample_snapshot(id, 1);
        snapshot.host.hostname = "web".into();
        app.post_snapshot(&snapshot).await;
    }
    let mut lonely = sample_snapshot("lonely-id", 1);
    lonely.host.hostname = "db".into();
    app.post_snapshot(&lonely).await;

    let list = hosts(&app).await;
    let names: Vec<&str> = list.iter().map(|h| h.display_name.as_str()).collect();
    assert_eq!(
        names,
        ["db", "web (3f2a9c1d0)", "web (3f2a9c1d1)", "web (77777777)"],
        "sorted by display name"
    );

    // The process listing names the host the same way.
    let listing: procmon_model::ProcessListing = app
        .get_processes("3f2a9c1d11111111bbbb")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listing.host.display_name, "web (3f2a9c1d1)");
}

/// Two CPU % of 3e38 once made a host's total overflow to null; such values
/// are refused now, and the highest allowed ones still add up to a number.
#[tokio::test]
async fn cpu_totals_stay_numbers() {
    let app = spawn_app().await;
    let mut overflowing = sample_snapshot("host-a", 2);
    for p in &mut overflowing.processes {
        p.cpu_percent = 3e38;
    }
    assert_eq!(app.post_snapshot(&overflowing).await.status(), 422);

    let mut busiest = sample_snapshot("host-a", 2);
    for p in &mut busiest.processes {
        p.cpu_percent = procmon_model::limits::MAX_CPU_PERCENT;
    }
    assert_eq!(app.post_snapshot(&busiest).await.status(), 201);
    let list = hosts(&app).await;
    assert_eq!(
        list[0].cpu_percent_total,
        2.0 * f64::from(procmon_model::limits::MAX_CPU_PERCENT)
    );
}

/// `GET /api/live/load/`: what the meters draw, every snapshot of the last
/// hour with the host's own load when its agent sends it; a 404 for a host
/// that never sent.
#[tokio::test]
async fn the_live_load_lists_each_snapshot_of_the_last_hour() {
    let app = spawn_app().await;
    let mut early = sample_snapshot("loaded", 3);
    early.collected_at = Utc::now() - Duration::minutes(90);
    app.post_snapshot(&early).await;
    let mut points = Vec::new();
    for minutes in [20, 10] {
        let mut snapshot = sample_snapshot("loaded", 3);
        snapshot.collected_at = Utc::now() - Duration::minutes(minutes);
        snapshot.load = Some(procmon_model::HostLoad {
            cpu_per_core: vec![12.5, 50.0],
            memory_used_bytes: 3 << 30,
            memory_available_bytes: 5 << 30,
            swap_total_bytes: 1 << 30,
            swap_used_bytes: minutes as u64,
            load_average: Some([0.5, 0.25, 0.125]),
        });
        app.post_snapshot(&snapshot).await;
        points.push(snapshot);
    }

    let response = app
        .get_with_query("/api/live/load/", &[("host", "loaded")])
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["host_id"], "loaded");
    let got = body["points"].as_array().unwrap();
    assert_eq!(
        got.len(),
        2,
        "the point from 90 minutes ago is past the hour: {body}"
    );
    for (point, sent) in got.iter().zip(&points) {
        let at: chrono::DateTime<Utc> = point["at"].as_str().unwrap().parse().unwrap();
        assert_eq!(at, sent.collected_at);
        assert_eq!(point["processes"], 3);
        assert_eq!(
            point["load"],
            serde_json::to_value(sent.load.as_ref().unwrap()).unwrap()
        );
    }

    let response = app
        .get_with_query("/api/live/load/", &[("host", "nobody")])
        .await;
    assert_eq!(response.status(), 404);
    let anonymous = app
        .anonymous()
        .get(format!("{}/api/live/load/?host=loaded", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "reading needs a session");
}
