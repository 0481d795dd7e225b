//! Bytes a database takes on disk, as the benches count them.

use std::path::Path;

use rusqlite::Connection;

/// Bytes of the database and its write-ahead log, before and after a
/// `wal_checkpoint(TRUNCATE)` through a connection of its own.
pub fn sqlite_size(path: &Path) -> (u64, u64) {
    let size = || {
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        len(path) + len(Path::new(&wal))
    };
    let before = size();
    let conn = Connection::open(path).expect("the database opens");
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .expect("a checkpoint");
    if busy != 0 {
        println!(
            "  (the checkpoint of {} was blocked: sizes include the log)",
            path.display()
        );
    }
    drop(conn);
    (before, size())
}

/// Bytes of every table of the current database's `public` schema
/// (`pg_total_relation_size`: rows, TOAST and indexes; each history
/// partition is a table of its own).
pub async fn postgres_size(client: &tokio_postgres::Client) -> anyhow::Result<u64> {
    let row = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r'",
            &[],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}
