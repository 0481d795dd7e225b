//! `GET /api/processes/?host=…`.

use procmon_model::{ErrorBody, ProcessListing};

use crate::common::{sample_snapshot, spawn_app};

#[tokio::test]
async fn the_newest_snapshot_comes_back_as_sent() {
    let app = spawn_app().await;
    let snapshot = sample_snapshot("host-a", 50);
    assert_eq!(app.post_snapshot(&snapshot).await.status(), 201);
    let response = app.get_processes("host-a").await;
    assert_eq!(response.status(), 200);
    let listing: ProcessListing = response.json().await.unwrap();
    assert_eq!(listing.snapshot_id, snapshot.id);
    assert_eq!(listing.collected_at, snapshot.collected_at);
    assert_eq!(listing.host.host, snapshot.host);
    let mut processes = listing.processes;
    processes.sort_by_key(|p| p.pid);
    assert_eq!(processes, snapshot.processes);
}

#[tokio::test]
async fn an_unknown_host_is_404() {
    let app = spawn_app().await;
    let response = app.get_processes("nobody").await;
    assert_eq!(response.status(), 404);
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "unknown_host");
}
