//! A database of layout 4 (raw tables without the host meters' columns,
//! hosts without the time of their oldest snapshot) gets them at start,
//! keeps what it holds, and stores and reads the host's meters from then
//! on, in the same hour's table.

use chrono::{Duration, Utc};
use procmon_model::fixtures::SimHost;
use procmon_model::HostLoad;
use procmon_server::store::{SqliteStore, Store, TimeRange};
use rusqlite::Connection;

const METER_COLUMNS: [&str; 6] = [
    "cpu_machine_percent",
    "memory_used_bytes",
    "memory_available_bytes",
    "swap_used_bytes",
    "swap_total_bytes",
    "load_1m",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_4_database_gets_the_host_meters_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procmon.db");
    let start = Utc::now() - Duration::minutes(10);
    let mut sim = SimHost::new("host-4", 20, 3, start);
    let old = sim.snapshot();
    {
        let store = SqliteStore::open(&path).await.unwrap();
        // Held by the agent a while before it reached the server: taken
        // before the host was first seen.
        store
            .ingest(old.clone().into(), old.collected_at + Duration::minutes(3))
            .await
            .unwrap();
        store.close().await;
    }
    // Back to layout 4: its raw tables had no meters.
    {
        let db = Connection::open(&path).unwrap();
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'raw_%'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!tables.is_empty());
        for table in &tables {
            for column in METER_COLUMNS {
                db.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {column}"))
                    .unwrap();
            }
        }
        db.execute_batch("ALTER TABLE host DROP COLUMN first_taken")
            .unwrap();
        db.pragma_update(None, "user_version", 4).unwrap();
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let host = store.host("host-4").await.unwrap().unwrap();
    assert_eq!(
        host.first_taken_at, old.collected_at,
        "found in the raw tables"
    );
    assert_eq!(host.first_seen, old.collected_at + Duration::minutes(3));
    let mut new = sim.next();
    new.load = Some(HostLoad {
        cpu_per_core: vec![10.0, 30.0],
        memory_used_bytes: 5 << 30,
        memory_available_bytes: 3 << 30,
        swap_total_bytes: 2 << 30,
        swap_used_bytes: 1 << 20,
        load_average: Some([1.5, 1.0, 0.5]),
    });
    store
        .ingest(new.clone().into(), new.collected_at)
        .await
        .unwrap();
    // The old snapshot is still there, whole.
    let kept = store
        .snapshot("host-4", Some(old.collected_at))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.id, old.id);
    assert_eq!(kept.processes.len(), old.processes.len());
    // The old one has no meters, the new one has them.
    let series = store
        .host_series(
            "host-4",
            TimeRange {
                from: start - Duration::seconds(1),
                to: new.collected_at + Duration::seconds(1),
            },
            1000,
        )
        .await
        .unwrap();
    let at = |name: &str| series.metrics.iter().position(|m| m == name).unwrap();
    assert_eq!(series.points.len(), 2, "{series:?}");
    assert_eq!(series.points[0].avg[at("cpu_machine_percent")], None);
    assert_eq!(series.points[1].avg[at("cpu_machine_percent")], Some(20.0));
    assert_eq!(series.points[1].avg[at("load_1m")], Some(1.5));
    assert_eq!(
        series.points[1].avg[at("memory_available_bytes")],
        Some((3u64 << 30) as f64)
    );
}
