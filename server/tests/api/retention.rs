//! Retention: snapshots received longer ago than the retention age go, with
//! their samples, the processes nothing refers to any more, and hosts with
//! nothing left; everything newer stays.

use std::time::Duration;

use chrono::Utc;
use procmon_server::retention;

use crate::common::{sample_snapshot, spawn_app, spawn_app_with, TestApp};

/// Moves a snapshot's arrival back in time, as if it came `age` ago.
async fn age_snapshot(app: &TestApp, id: uuid::Uuid, age: chrono::Duration) {
    let db = app.db().await;
    let received = (Utc::now() - age).timestamp_nanos_opt().unwrap();
    sqlx::query("UPDATE snapshots SET received_at = ? WHERE id = ?")
        .bind(received)
        .bind(id.to_string())
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE hosts SET last_seen = min(last_seen, ?) WHERE id = (SELECT host_id FROM snapshots WHERE id = ?)")
        .bind(received)
        .bind(id.to_string())
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
}

#[tokio::test]
async fn old_snapshots_and_what_only_they_used_are_deleted() {
    let app = spawn_app().await;
    // host-a: an old snapshot with 10 processes, a new one where 6 of them
    // still run (same identities) and 4 are gone.
    let old = sample_snapshot("host-a", 10);
    let mut new = old.clone();
    new.id = uuid::Uuid::new_v4();
    new.collected_at += chrono::Duration::seconds(2);
    new.processes.truncate(6);
    // host-gone: only old snapshots.
    let gone = sample_snapshot("host-gone", 3);
    for s in [&old, &new, &gone] {
        assert_eq!(app.post_snapshot(s).await.status(), 201);
    }
    age_snapshot(&app, old.id, chrono::Duration::hours(25)).await;
    age_snapshot(&app, gone.id, chrono::Duration::hours(30)).await;

    let deleted = retention::sweep(app.state.store.as_ref(), Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    assert_eq!(deleted.snapshots, 2);
    assert_eq!(deleted.processes, 4 + 3);
    assert_eq!(deleted.hosts, 1);

    assert_eq!(app.count("snapshots").await, 1);
    assert_eq!(app.count("samples").await, 6);
    assert_eq!(app.count("processes").await, 6);
    assert_eq!(app.count("hosts").await, 1);
    let listing: procmon_model::ProcessListing =
        app.get_processes("host-a").await.json().await.unwrap();
    assert_eq!(listing.snapshot_id, new.id);
    assert_eq!(listing.processes.len(), 6);
    assert_eq!(app.get_processes("host-gone").await.status(), 404);
}

#[tokio::test]
async fn deletion_goes_in_small_batches() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..(retention::BATCH * 2 + 3) {
        let s = sample_snapshot("host-a", 2);
        app.post_snapshot(&s).await;
        ids.push(s.id);
    }
    for id in &ids {
        age_snapshot(&app, *id, chrono::Duration::hours(48)).await;
    }
    let cutoff = Utc::now() - chrono::Duration::hours(24);
    let first = app
        .state
        .store
        .delete_before(cutoff, retention::BATCH)
        .await
        .unwrap();
    assert_eq!(first.snapshots, u64::from(retention::BATCH));
    let rest = retention::sweep(app.state.store.as_ref(), Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    assert_eq!(rest.snapshots, u64::from(retention::BATCH) + 3);
    assert_eq!(app.count("snapshots").await, 0);
}

#[tokio::test]
async fn the_background_task_sweeps_by_itself() {
    let app = spawn_app_with(|s| {
        s.retention = Duration::from_secs(3600);
        s.retention_sweep_every = Duration::from_millis(100);
    })
    .await;
    let old = sample_snapshot("host-a", 3);
    let mut new = sample_snapshot("host-a", 3);
    new.collected_at += chrono::Duration::seconds(2);
    app.post_snapshot(&old).await;
    app.post_snapshot(&new).await;
    age_snapshot(&app, old.id, chrono::Duration::minutes(61)).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.count("snapshots").await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the old snapshot was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listing: procmon_model::ProcessListing =
        app.get_processes("host-a").await.json().await.unwrap();
    assert_eq!(listing.snapshot_id, new.id);
}

#[tokio::test]
async fn ingest_goes_on_while_retention_deletes() {
    let app = spawn_app().await;
    let mut old = Vec::new();
    for _ in 0..30 {
        let s = sample_snapshot("host-a", 300);
        app.post_snapshot(&s).await;
        old.push(s.id);
    }
    for id in &old {
        age_snapshot(&app, *id, chrono::Duration::hours(48)).await;
    }
    let store = app.state.store.clone();
    let sweeping = tokio::spawn(async move {
        retention::sweep(store.as_ref(), Duration::from_secs(24 * 3600)).await
    });
    let mut new = sample_snapshot("host-a", 300);
    new.collected_at += chrono::Duration::seconds(5);
    let started = std::time::Instant::now();
    assert_eq!(app.post_snapshot(&new).await.status(), 201);
    let waited = started.elapsed();
    assert_eq!(sweeping.await.unwrap().unwrap().snapshots, 30);
    assert!(
        waited < Duration::from_secs(5),
        "ingest waited {waited:?} behind retention"
    );
    assert_eq!(app.count("snapshots").await, 1);
}
