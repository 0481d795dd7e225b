//! A database of layout 6, whose hosts carried no labels, gets the column
//! at start, keeps its hosts (with none), and stores labels from then on.

use chrono::{Duration, Utc};
use procmon_model::fixtures::snapshot_at;
use procmon_server::store::{SqliteStore, Store};
use rusqlite::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_6_database_gets_host_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procmon.db");
    let start = Utc::now() - Duration::minutes(10);
    let old = snapshot_at("host-6", 3, start);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .ingest(old.clone().into(), old.collected_at)
            .await
            .unwrap();
        store.close().await;
    }
    // Back to layout 6: its host table had no labels.
    {
        let db = Connection::open(&path).unwrap();
        db.execute_batch("ALTER TABLE host DROP COLUMN labels")
            .unwrap();
        db.pragma_update(None, "user_version", 6).unwrap();
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let host = store.host("host-6").await.unwrap().unwrap();
    assert_eq!(host.info.hostname, old.host.hostname, "the host is kept");
    assert!(host.info.labels.is_empty());
    let mut new = snapshot_at("host-6", 3, start + Duration::minutes(1));
    new.host.labels = vec!["prod".into(), "role=db".into()];
    store
        .ingest(new.clone().into(), new.collected_at)
        .await
        .unwrap();
    let hosts = store.hosts().await.unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].info.labels, ["prod", "role=db"]);
    store.close().await;
    // And again: a database already at layout 7 is left as it is.
    let store = SqliteStore::open(&path).await.unwrap();
    let host = store.host("host-6").await.unwrap().unwrap();
    assert_eq!(host.info.labels, ["prod", "role=db"]);
}
