//! `GET /api/processes/?host=…[&at=…]`, and how processes are stored: once
//! per identity (host, pid, start time), a sample per snapshot.

use chrono::{Duration, SecondsFormat};
use procmon_model::{ErrorBody, ProcessListing};

use crate::common::{sample_snapshot, spawn_app};

async fn listing(response: reqwest::Response) -> ProcessListing {
    assert_eq!(response.status(), 200);
    response.json().await.expect("a ProcessListing")
}

#[tokio::test]
async fn the_newest_snapshot_comes_back_as_sent() {
    let app = spawn_app().await;
    let older = sample_snapshot("host-a", 10);
    let mut newer = sample_snapshot("host-a", 50);
    newer.collected_at = older.collected_at + Duration::seconds(2);
    newer.processes[3].cmd = vec!["<script>alert(1)</script>".into(), "ünïcödé \" ' \\".into()];
    newer.processes[4].exe = None;
    newer.processes[4].user = None;
    newer.processes[4].memory_private_bytes = None;
    newer.processes[4].parent_pid = None;
    // Sent newest first: "newest" is by collection time, not arrival.
    assert_eq!(app.post_snapshot(&newer).await.status(), 201);
    assert_eq!(app.post_snapshot(&older).await.status(), 201);

    let listing = listing(app.get_processes("host-a").await).await;
    assert_eq!(listing.snapshot_id, newer.id);
    assert_eq!(listing.collected_at, newer.collected_at);
    assert_eq!(listing.host.host, newer.host);
    assert_eq!(listing.host.process_count, 50);
    let mut processes = listing.processes;
    processes.sort_by_key(|p| p.pid);
    assert_eq!(processes, newer.processes);
}

#[tokio::test]
async fn at_travels_back_in_time() {
    let app = spawn_app().await;
    // Both in the past, as an agent's clock would have them.
    let mut first = sample_snapshot("host-a", 3);
    first.collected_at -= Duration::seconds(120);
    let mut second = sample_snapshot("host-a", 4);
    second.collected_at = first.collected_at + Duration::seconds(60);
    app.post_snapshot(&first).await;
    app.post_snapshot(&second).await;

    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let between = at(first.collected_at + Duration::seconds(30));
    let got = listing(
        app.get_with_query("/api/processes/", &[("host", "host-a"), ("at", &between)])
            .await,
    )
    .await;
    assert_eq!(got.snapshot_id, first.id);
    assert_eq!(got.processes.len(), 3);

    let exactly = at(second.collected_at);
    let got = listing(
        app.get_with_query("/api/processes/", &[("host", "host-a"), ("at", &exactly)])
            .await,
    )
    .await;
    assert_eq!(got.snapshot_id, second.id);

    // An offset written with an unescaped '+' arrives as a space.
    let url = format!(
        "{}/api/processes/?host=host-a&at={}",
        app.address,
        (first.collected_at + Duration::seconds(30))
            .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    );
    let got = listing(app.client.get(url).send().await.unwrap()).await;
    assert_eq!(got.snapshot_id, first.id);

    let before = at(first.collected_at - Duration::seconds(1));
    let response = app
        .get_with_query("/api/processes/", &[("host", "host-a"), ("at", &before)])
        .await;
    assert_eq!(response.status(), 404);
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "no_snapshot");
    assert!(error.message.contains("at or before"), "{}", error.message);
}

#[tokio::test]
async fn a_bad_query_is_400_saying_what_to_send() {
    let app = spawn_app().await;
    for (query, expected) in [
        (vec![], "host"),
        (vec![("host", " ")], "`host` is empty"),
        (vec![("host", " h ")], "has spaces at its start or end"),
        (
            vec![("host", "h"), ("at", "yesterday")],
            "not a time: give an RFC 3339 time with a date, a time and a zone, like \
             2024-05-01T12:00:00Z (UTC) or 2024-05-01T14:00:00+02:00",
        ),
        (
            vec![("host", "h"), ("at", "9999-12-31T23:59:59Z")],
            "outside the years 1677 to 2262",
        ),
        (
            vec![("host", "h"), ("at", "1000-01-01T00:00:00Z")],
            "outside the years 1677 to 2262",
        ),
    ] {
        let response = app.get_with_query("/api/processes/", &query).await;
        assert_eq!(response.status(), 400, "{query:?}");
        let error: ErrorBody = response.json().await.unwrap();
        assert_eq!(error.error, "invalid_query");
        assert!(
            error.message.contains(expected),
            "{query:?}: {}",
            error.message
        );
    }
}

#[tokio::test]
async fn an_unknown_host_is_404() {
    let app = spawn_app().await;
    let response = app.get_processes("nobody").await;
    assert_eq!(response.status(), 404);
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "unknown_host");
    assert!(error.message.contains("nobody"), "{}", error.message);
}

#[tokio::test]
async fn a_process_is_stored_once_per_identity() {
    let app = spawn_app().await;
    let first = sample_snapshot("host-a", 20);
    let mut second = sample_snapshot("host-a", 20);
    second.collected_at = first.collected_at + Duration::seconds(2);
    for (a, b) in second.processes.iter_mut().zip(&first.processes) {
        b.start_time.clone_into(&mut a.start_time);
    }
    // pid 7 exited and its pid was reused by a new process.
    second.processes[6].start_time = second.collected_at;
    second.processes[6].name = "reused".into();
    app.post_snapshot(&first).await;
    app.post_snapshot(&second).await;

    assert_eq!(app.stored_snapshots().await, 2);
    let old = listing(
        app.get_with_query(
            "/api/processes/",
            &[("host", "host-a"), ("at", &first.collected_at.to_rfc3339())],
        )
        .await,
    )
    .await;
    let pid7 = old.processes.iter().find(|p| p.pid == 7).unwrap();
    assert_eq!(pid7.name, "proc-7");
    let new = listing(app.get_processes("host-a").await).await;
    let pid7 = new.processes.iter().find(|p| p.pid == 7).unwrap();
    assert_eq!(pid7.name, "reused");
}

#[tokio::test]
async fn ingest_of_2000_processes_is_quick() {
    let app = spawn_app().await;
    // Warm up: the first ingest also prepares the statements.
    app.post_snapshot(&sample_snapshot("warm-up", 10)).await;
    let mut first = sample_snapshot("big-host", 2000);
    let started = std::time::Instant::now();
    assert_eq!(app.post_snapshot(&first).await.status(), 201);
    let new_processes = started.elapsed();
    first.id = uuid::Uuid::new_v4();
    first.collected_at += Duration::seconds(2);
    let started = std::time::Instant::now();
    assert_eq!(app.post_snapshot(&first).await.status(), 201);
    let known_processes = started.elapsed();
    let started = std::time::Instant::now();
    let got = listing(app.get_processes("big-host").await).await;
    let read = started.elapsed();
    assert_eq!(got.processes.len(), 2000);
    println!(
        "2,000 processes: first ingest {new_processes:?}, next ingest {known_processes:?}, listing {read:?}"
    );
    // Generous, for a loaded 2-core machine in debug: an agent sends every
    // 2 s, so an ingest must take well under that.
    assert!(
        known_processes < std::time::Duration::from_secs(2),
        "{known_processes:?}"
    );
}

#[tokio::test]
async fn parent_cycles_and_dangling_parents_are_kept_as_sent() {
    let app = spawn_app().await;
    let mut snapshot = sample_snapshot("host-a", 5);
    // 2 -> 3 -> 2 is a cycle (possible on Windows with reused pids), 4 is
    // its own parent, 5's parent is long gone.
    snapshot.processes[1].parent_pid = Some(3);
    snapshot.processes[2].parent_pid = Some(2);
    snapshot.processes[3].parent_pid = Some(4);
    snapshot.processes[4].parent_pid = Some(99_999);
    assert_eq!(app.post_snapshot(&snapshot).await.status(), 201);
    let mut got = listing(app.get_processes("host-a").await).await.processes;
    got.sort_by_key(|p| p.pid);
    assert_eq!(got, snapshot.processes);
}

/// The newest listing of `host-a`, asked for as a browser does (gzip).
async fn get_gzipped(app: &crate::common::TestApp) -> reqwest::Response {
    let response = app
        .client
        .get(format!("{}/api/processes/?host=host-a", app.address))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    response
}

#[tokio::test]
async fn listings_are_gzipped_for_clients_that_accept_it() {
    let app = spawn_app().await;
    app.post_snapshot(&sample_snapshot("host-a", 500)).await;
    let plain = app.get_processes("host-a").await.bytes().await.unwrap();
    let gzipped = get_gzipped(&app).await;
    let compressed = gzipped.bytes().await.unwrap();
    assert!(
        compressed.len() * 4 < plain.len(),
        "{} vs {} bytes",
        compressed.len(),
        plain.len()
    );
}

/// The newest listing is answered from the host's live state and gzipped
/// once per snapshot: it must be exactly what the store holds, in either
/// encoding, and never a snapshot behind.
#[tokio::test]
async fn the_newest_listing_from_memory_is_the_stored_one() {
    let app = spawn_app().await;
    let mut host = procmon_model::fixtures::SimHost::new(
        "host-a",
        300,
        5,
        chrono::Utc::now() - Duration::minutes(5),
    );
    let gzipped = || async {
        let packed = get_gzipped(&app).await.bytes().await.unwrap();
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut json)
            .unwrap();
        (
            packed,
            serde_json::from_slice::<ProcessListing>(&json).unwrap(),
        )
    };
    for _ in 0..3 {
        let snapshot = host.next();
        assert_eq!(app.post_snapshot(&snapshot).await.status(), 201);
        let (first, from_memory) = gzipped().await;
        let (again, _) = gzipped().await;
        assert_eq!(first, again, "the second viewer gets the kept bytes");
        let plain = listing(app.get_processes("host-a").await).await;
        // The same moment through the store (`at` reads it back from disk).
        let at = (chrono::Utc::now() + Duration::minutes(1)).to_rfc3339();
        let stored = listing(
            app.get_with_query("/api/processes/", &[("host", "host-a"), ("at", &at)])
                .await,
        )
        .await;
        for mut got in [from_memory, plain] {
            assert_eq!(got.snapshot_id, snapshot.id);
            let mut want = stored.clone();
            got.processes.sort_by_key(|p| p.pid);
            want.processes.sort_by_key(|p| p.pid);
            assert_eq!(got, want);
        }
    }
}

#[tokio::test]
async fn an_agent_clock_running_ahead_does_not_hide_later_snapshots() {
    let app = spawn_app().await;
    let mut ahead = sample_snapshot("host-a", 3);
    ahead.collected_at += Duration::days(365);
    ahead.host.agent_version = "old".into();
    app.post_snapshot(&ahead).await;
    // The clock was fixed; the next snapshot is the current one.
    let mut fixed = sample_snapshot("host-a", 4);
    fixed.collected_at = chrono::Utc::now();
    fixed.host.agent_version = "new".into();
    app.post_snapshot(&fixed).await;

    let got = listing(app.get_processes("host-a").await).await;
    assert_eq!(got.snapshot_id, fixed.id);
    assert_eq!(got.host.host.agent_version, "new");
    // Still reported with the time the agent gave.
    let first = listing(
        app.get_with_query(
            "/api/processes/",
            &[
                ("host", "host-a"),
                (
                    "at",
                    &(fixed.collected_at - Duration::milliseconds(1)).to_rfc3339(),
                ),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(first.snapshot_id, ahead.id);
    assert_eq!(first.collected_at, ahead.collected_at);
}
