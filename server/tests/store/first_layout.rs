//! A database of the first layout (a row per process per snapshot) is
//! converted at start without losing what it holds. SQLite only: the
//! first layout never existed anywhere else.

use chrono::{DateTime, Duration, Utc};
use procmon_server::store::{SqliteStore, Store};
use rusqlite::{params, Connection};

/// The first layout's tables, as its migrations made them.
const FIRST_LAYOUT: &str = include_str!("first_layout.sql");

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_layout_database_is_converted_keeping_every_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procmon.db");
    let t0 = DateTime::parse_from_rfc3339("2026-01-10T08:59:30Z")
        .unwrap()
        .to_utc();
    let first_seen = t0 - Duration::days(3);
    let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::new_v4()).collect();
    {
        let db = Connection::open(&path).unwrap();
        db.execute_batch(FIRST_LAYOUT).unwrap();
        db.execute(
            "INSERT INTO hosts (id, hostname, os_name, os_version, kernel, arch, cpu_count,
                 memory_total_bytes, boot_time, agent_version, interval_ms, first_seen,
                 last_seen, taken_at)
             VALUES ('host-old', 'oldbox', 'Debian GNU/Linux', '12', '6.1', 'x86_64', 4,
                 8589934592, ?1, '0.1.0', 20000, ?2, ?3, ?3)",
            params![
                nanos(t0 - Duration::hours(9)),
                nanos(first_seen),
                nanos(t0 + Duration::seconds(60))
            ],
        )
        .unwrap();
        for pid in 1..=3i64 {
            db.execute(
                "INSERT INTO processes (id, host_id, pid, start_time, name, exe, cmd, user,
                     first_seen, last_seen)
                 VALUES (?1, 'host-old', ?1, ?2, ?3, ?4, ?5, 'root', ?6, ?6)",
                params![
                    pid,
                    nanos(t0 - Duration::hours(pid)),
                    format!("old-{pid}"),
                    format!("/usr/bin/old-{pid}"),
                    format!("[\"/usr/bin/old-{pid}\",\"--x\"]"),
                    nanos(t0)
                ],
            )
            .unwrap();
        }
        // Four snapshots, 20 s apart (across an hour boundary); pid 3
        // exits after the second; pid 2's memory grows.
        for (i, id) in ids.iter().enumerate() {
            let at = t0 + Duration::seconds(20 * i as i64);
            db.execute(
                "INSERT INTO snapshots (seq, id, host_id, collected_at, received_at, interval_ms,
                     process_count, cpu_percent_total, memory_rss_total_bytes, taken_at)
                 VALUES (?1, ?2, 'host-old', ?3, ?4, 20000, 0, 0, 0, ?3)",
                params![
                    i as i64 + 1,
                    id.to_string(),
                    nanos(at),
                    nanos(at + Duration::milliseconds(30))
                ],
            )
            .unwrap();
            for pid in 1..=3i64 {
                if pid == 3 && i >= 2 {
                    continue;
                }
                db.execute(
                    "INSERT INTO samples (snapshot, process, parent_pid, status, cpu_percent,
                         memory_rss_bytes, memory_virtual_bytes, memory_private_bytes, threads,
                         handles, disk_read_bytes, disk_written_bytes)
                     VALUES (?1, ?2, 1, 'sleeping', 1.5, ?3, 900000, NULL, 4, 12, 100, 200)",
                    params![i as i64 + 1, pid, 1000 * pid + i as i64],
                )
                .unwrap();
            }
        }
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let host = store.host("host-old").await.unwrap().unwrap();
    assert_eq!(host.info.hostname, "oldbox");
    assert_eq!(host.first_seen, first_seen);
    assert_eq!(host.interval_ms, 20000);
    for (i, id) in ids.iter().enumerate() {
        let at = t0 + Duration::seconds(20 * i as i64);
        let got = store.snapshot("host-old", Some(at)).await.unwrap().unwrap();
        assert_eq!(got.id, *id);
        assert_eq!(got.received_at, at + Duration::milliseconds(30));
        let mut processes = got.processes;
        processes.sort_by_key(|p| p.pid);
        assert_eq!(processes.len(), if i >= 2 { 2 } else { 3 });
        for p in &processes {
            assert_eq!(p.name, format!("old-{}", p.pid));
            assert_eq!(p.cmd, [format!("/usr/bin/old-{}", p.pid), "--x".into()]);
            assert_eq!(p.memory_rss_bytes, 1000 * u64::from(p.pid) + i as u64);
            assert_eq!(p.memory_private_bytes, None);
            assert_eq!(p.start_time, t0 - Duration::hours(i64::from(p.pid)));
        }
    }
    store.close().await;

    // The old tables are gone, and opening again converts nothing twice.
    let db = Connection::open(&path).unwrap();
    let old: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('samples', 'processes', 'snapshots', 'hosts')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
    drop(db);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.snapshot("host-old", None).await.unwrap().unwrap().id,
        ids[3]
    );
}
