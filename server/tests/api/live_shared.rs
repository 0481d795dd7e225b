//! Servers sharing one PostgreSQL database: a snapshot an agent sends to
//! one reaches the viewers of every other, a viewer resumes on another
//! server from the snapshot it had, and the servers keep hearing of each
//! other after the database drops their connections.

use std::time::{Duration, Instant};

use procmon_model::Snapshot;

use super::live::{post_more, EventReader, SseEvent};
use crate::common::postgres::{connect, fresh_database, URL_VARIABLE};
use crate::common::{sample_snapshot, spawn_app_on, TestApp};

/// Two servers on one fresh database, or `None` without a PostgreSQL
/// test server.
async fn two_servers() -> Option<(String, TestApp, TestApp)> {
    let url = fresh_database().await?;
    let a = spawn_app_on(&url, |_| {}).await;
    let b = spawn_app_on(&url, |_| {}).await;
    Some((url, a, b))
}

/// Two servers, A with host-a's first snapshot, and a viewer of host-a on B
/// from that snapshot on.
struct Watched {
    url: String,
    a: TestApp,
    /// Kept so that B serves until the test ends.
    _b: TestApp,
    first: Snapshot,
    events: EventReader,
}

async fn watched_on_b() -> Option<Watched> {
    let (url, a, b) = two_servers().await?;
    let first = sample_snapshot("host-a", 10);
    assert_eq!(a.post_snapshot(&first).await.status(), 201);
    let events = EventReader::open(&b, Some(&first.id.to_string()), None).await;
    Some(Watched {
        url,
        a,
        _b: b,
        first,
        events,
    })
}

/// The next `change` event that brings the viewer to `id`, skipping
/// others; panics on a reload or after `within`.
async fn change_to(events: &mut EventReader, id: uuid::Uuid, within: Duration) -> SseEvent {
    tokio::time::timeout(within, async {
        loop {
            let event = events.next().await;
            assert_eq!(event.event, "change", "{event:?}");
            if event.id == Some(id.to_string()) {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no change event to {id} within {within:?}"))
}

/// The pid of the process `snapshot` has that `before` has not.
fn new_pid(before: &Snapshot, snapshot: &Snapshot) -> u64 {
    let pid = snapshot.processes.last().unwrap().pid;
    assert!(before.processes.iter().all(|p| p.pid != pid));
    u64::from(pid)
}

/// The host-a load points `app` answers.
async fn load_points(app: &TestApp) -> serde_json::Value {
    let response = app
        .get_with_query("/api/live/load/", &[("host", "host-a")])
        .await;
    assert_eq!(response.status(), 200);
    response.json::<serde_json::Value>().await.unwrap()["points"].clone()
}

fn started_pids(event: &SseEvent) -> Vec<u64> {
    event.json()["batch"]["started"]
        .as_array()
        .expect("a change event starts processes")
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_snapshot_sent_to_one_server_reaches_a_viewer_of_another() {
    let Some((_url, a, b)) = two_servers().await else {
        return;
    };
    let first = sample_snapshot("host-a", 20);
    assert_eq!(a.post_snapshot(&first).await.status(), 201);
    let listing = b.get_processes("host-a").await;
    assert_eq!(listing.status(), 200);
    let since = listing.headers()["x-procmon-seq"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(since, first.id.to_string(), "the same id on every server");

    let mut events = EventReader::open(&b, Some(&since), None).await;
    let next = post_more(&a, &first, 1).await;
    let event = change_to(&mut events, next.id, Duration::from_secs(2)).await;
    assert_eq!(started_pids(&event), vec![new_pid(&first, &next)]);
    assert_eq!(event.json()["batch"]["base_id"], first.id.to_string());

    // How long a snapshot takes from one server's agent to another's
    // viewer, one after the other.
    let mut lags = Vec::new();
    let mut last = next;
    for _ in 0..200 {
        let sent = Instant::now();
        last = post_more(&a, &last, 1).await;
        change_to(&mut events, last.id, Duration::from_secs(5)).await;
        lags.push(sent.elapsed());
    }
    lags.sort();
    println!(
        "post to A until B's viewer has it, over {} snapshots: median {:?}, p99 {:?}",
        lags.len(),
        lags[lags.len() / 2],
        lags[lags.len() * 99 / 100]
    );
    // The meters' load points are the store's: both servers answer the
    // same, B though the agent never sent to it.
    let points = load_points(&b).await;
    assert_eq!(points.as_array().unwrap().len(), 202);
    assert_eq!(points, load_points(&a).await);

    let metrics = b.get("/metrics").await.text().await.unwrap();
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("procmon_notification_lag_seconds_count "))
        .unwrap_or_else(|| panic!("no notification lag in\n{metrics}"));
    assert!(count.parse::<u64>().unwrap() >= 200, "{count}");
}

#[tokio::test]
async fn a_viewer_resumes_on_another_server_with_one_change() {
    let Some(watched) = watched_on_b().await else {
        return;
    };
    // B (in `watched`) stays up until the end.
    let (url, a, first, mut events) = (watched.url, watched.a, watched.first, watched.events);
    let seen = post_more(&a, &first, 1).await;
    let last_id = change_to(&mut events, seen.id, Duration::from_secs(2))
        .await
        .id
        .unwrap();
    // B's viewer goes away (its server died), and more arrives meanwhile.
    drop(events);
    let newest = post_more(&a, &seen, 3).await;

    // On A, which has every snapshot at hand, and on a server that has
    // never seen the host: either way one change from the snapshot the
    // viewer had, read from the store.
    let c = spawn_app_on(&url, |_| {}).await;
    for server in [&a, &c] {
        let mut events = EventReader::open(server, None, Some(&last_id)).await;
        let event = events.next().await;
        assert_eq!(event.event, "change", "not a reload: {event:?}");
        if server.port == c.port {
            let batch = &event.json()["batch"];
            assert_eq!(batch["base_id"], seen.id.to_string());
            assert_eq!(batch["started"].as_array().unwrap().len(), 3);
            assert_eq!(event.id, Some(newest.id.to_string()));
        } else {
            assert_eq!(event.json()["batch"]["base_id"], seen.id.to_string());
        }
    }
}

#[tokio::test]
async fn the_servers_hear_of_each_other_again_after_the_database_drops_them() {
    let Some(watched) = watched_on_b().await else {
        return;
    };
    // B (in `watched`) stays up until the end.
    let (url, a, first, mut events) = (watched.url, watched.a, watched.first, watched.events);

    let name = url.rsplit('/').next().unwrap().to_owned();
    let admin = connect(&std::env::var(URL_VARIABLE).unwrap()).await;
    let dropped = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .unwrap();
    assert!(dropped.len() >= 2, "both servers' listeners were connected");

    // The first snapshot after may meet a pooled connection that was cut.
    let mut before = first;
    let next = loop {
        let mut next = before.clone();
        next.id = uuid::Uuid::new_v4();
        next.collected_at += chrono::TimeDelta::seconds(1);
        let mut started = next.processes[0].clone();
        started.pid = next.processes.iter().map(|p| p.pid).max().unwrap() + 1;
        next.processes.push(started);
        if a.post_snapshot(&next).await.status() == 201 {
            break next;
        }
        before = next;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let event = change_to(&mut events, next.id, Duration::from_secs(10)).await;
    assert!(started_pids(&event).contains(&new_pid(&before, &next)));

    // And word flows as before.
    let after = post_more(&a, &next, 1).await;
    let event = change_to(&mut events, after.id, Duration::from_secs(2)).await;
    assert_eq!(started_pids(&event), vec![new_pid(&next, &after)]);
}
