//! `POST /api/processes/`: keys, bad bodies, retries.

use procmon_model::{ErrorBody, IngestResponse};

use crate::common::{sample_snapshot, spawn_app};

#[tokio::test]
async fn a_snapshot_is_stored_with_201() {
    let app = spawn_app().await;
    let snapshot = sample_snapshot("host-a", 5);
    let response = app.post_snapshot(&snapshot).await;
    assert_eq!(response.status(), 201);
    let body: IngestResponse = response.json().await.unwrap();
    assert_eq!(body, IngestResponse { snapshot_id: snapshot.id, stored: true });
}

#[tokio::test]
async fn a_repeated_snapshot_id_is_stored_once() {
    let app = spawn_app().await;
    let snapshot = sample_snapshot("host-a", 5);
    assert_eq!(app.post_snapshot(&snapshot).await.status(), 201);
    let again = app.post_snapshot(&snapshot).await;
    assert_eq!(again.status(), 201);
    let body: IngestResponse = again.json().await.unwrap();
    assert!(!body.stored, "the retry must say it was stored before");

    assert_eq!(app.count("snapshots").await, 1);
    assert_eq!(app.count("samples").await, 5);
    assert_eq!(app.count("processes").await, 5);
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_401() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&sample_snapshot("host-a", 1)).unwrap();
    let response = app.post_raw(body, Some("application/json"), Some("not-the-key")).await;
    assert_eq!(response.status(), 401);
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "unauthorized");
    assert!(error.message.contains("agent key was refused"), "{}", error.message);
}
