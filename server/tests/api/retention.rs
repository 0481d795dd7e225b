//! Retention through the running server: its background task, driven by
//! the server's clock, drops history older than the retention settings and
//! keeps the rest. (The store's own suite checks the details.)

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use procmon_model::ProcessListing;
use procmon_server::clock::{Clock, ManualClock};
use procmon_server::retention;
use procmon_server::store::Retention;

use crate::common::{sample_snapshot, spawn_app_with_clock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_older_than_retention_goes_and_the_rest_stays() {
    let clock = Arc::new(ManualClock::new(Utc::now() - chrono::Duration::hours(5)));
    let kept = Retention {
        raw: Duration::from_secs(2 * 3600),
        ..Retention::default()
    };
    let app = spawn_app_with_clock(Some(clock.clone()), |s| s.retention = kept.raw).await;
    let mut old = sample_snapshot("host-a", 10);
    old.collected_at = clock.now();
    assert_eq!(app.post_snapshot(&old).await.status(), 201);
    let mut gone = sample_snapshot("host-gone", 3);
    gone.collected_at = old.collected_at;
    assert_eq!(app.post_snapshot(&gone).await.status(), 201);

    clock.advance(chrono::Duration::hours(5));
    let mut new = sample_snapshot("host-a", 6);
    new.collected_at = clock.now();
    assert_eq!(app.post_snapshot(&new).await.status(), 201);

    let done = retention::sweep(app.state.store.as_ref(), app.state.clock.as_ref(), kept)
        .await
        .unwrap();
    assert!(done.blocks_dropped >= 1, "{done:?}");

    let listing: ProcessListing = app.get_processes("host-a").await.json().await.unwrap();
    assert_eq!(listing.snapshot_id, new.id);
    assert_eq!(listing.processes.len(), 6);
    let at = old.collected_at.to_rfc3339();
    let response = app
        .get_with_query("/api/processes/", &[("host", "host-a"), ("at", &at)])
        .await;
    assert_eq!(response.status(), 404);
    // Its host has nothing newer: no listing, though its roll-ups remain.
    assert_eq!(app.get_processes("host-gone").await.status(), 404);
    assert_eq!(app.stored_snapshots().await, 1);
}
