//! The SQLite store: one file, WAL mode, migrations run at open.
//!
//! Writes go through a pool of one connection, so ingests and retention
//! take turns instead of failing with SQLITE_BUSY; reads use their own pool
//! and, thanks to WAL, never wait for a write.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::{HostInfo, ProcessSample, ProcessStatus, Snapshot};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{Deleted, HostRecord, IngestOutcome, SnapshotTotals, Store, StoredSnapshot};

/// Snapshots, processes and hosts in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and brings its
    /// schema up to date.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let options = Self::connect_options(path);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open database {}", path.display()))?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .with_context(|| format!("cannot bring the schema of {} up to date", path.display()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open database {}", path.display()))?;
        Ok(Self { writer, reader })
    }
}

impl SqliteStore {
    /// How every connection to a store file is opened. Public so that the
    /// ingest benchmark's baseline file is opened exactly as the store's is.
    pub fn connect_options(path: &Path) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses no committed data when the process
            // dies, only (possibly) the last commits on power loss.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(
        &self,
        snapshot: &Snapshot,
        received_at: DateTime<Utc>,
    ) -> anyhow::Result<IngestOutcome> {
        let received = nanos(received_at)?;
        let collected = nanos(snapshot.collected_at)?;
        // See migration 0003: never later than its arrival.
        let taken = collected.min(received);
        let host = &snapshot.host;
        let totals = SnapshotTotals::of(&snapshot.processes);
        let mut tx = self.writer.begin().await?;

        // Facts of a host come from its newest snapshot by collection time;
        // last_seen is simply the latest arrival.
        sqlx::query(
            "INSERT INTO hosts (id, hostname, os_name, os_version, kernel, arch, cpu_count,
                 memory_total_bytes, boot_time, agent_version, interval_ms, first_seen, last_seen,
                 taken_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET
                 hostname = iif(excluded.taken_at >= taken_at, excluded.hostname, hostname),
                 os_name = iif(excluded.taken_at >= taken_at, excluded.os_name, os_name),
                 os_version = iif(excluded.taken_at >= taken_at, excluded.os_version, os_version),
                 kernel = iif(excluded.taken_at >= taken_at, excluded.kernel, kernel),
                 arch = iif(excluded.taken_at >= taken_at, excluded.arch, arch),
                 cpu_count = iif(excluded.taken_at >= taken_at, excluded.cpu_count, cpu_count),
                 memory_total_bytes = iif(excluded.taken_at >= taken_at,
                     excluded.memory_total_bytes, memory_total_bytes),
                 boot_time = iif(excluded.taken_at >= taken_at, excluded.boot_time, boot_time),
                 agent_version = iif(excluded.taken_at >= taken_at,
                     excluded.agent_version, agent_version),
                 interval_ms = iif(excluded.taken_at >= taken_at, excluded.interval_ms, interval_ms),
                 taken_at = max(taken_at, excluded.taken_at),
                 last_seen = max(last_seen, excluded.last_seen)",
        )
        .bind(&host.id)
        .bind(&host.hostname)
        .bind(&host.os_name)
        .bind(&host.os_version)
        .bind(&host.kernel)
        .bind(&host.arch)
        .bind(host.cpu_count)
        .bind(int(host.memory_total_bytes))
        .bind(nanos(host.boot_time)?)
        .bind(&host.agent_version)
        .bind(int(snapshot.interval_ms))
        .bind(received)
        .bind(received)
        .bind(taken)
        .execute(&mut *tx)
        .await
        .context("cannot store the host")?;

        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO snapshots (id, host_id, collected_at, received_at, taken_at, interval_ms,
                 process_count, cpu_percent_total, memory_rss_total_bytes)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING
             RETURNING seq",
        )
        .bind(snapshot.id.to_string())
        .bind(&host.id)
        .bind(collected)
        .bind(received)
        .bind(taken)
        .bind(int(snapshot.interval_ms))
        .bind(totals.process_count)
        .bind(totals.cpu_percent)
        .bind(int(totals.memory_rss_bytes))
        .fetch_optional(&mut *tx)
        .await
        .context("cannot store the snapshot")?;

        let Some(seq) = seq else {
            let owner: String = sqlx::query_scalar("SELECT host_id FROM snapshots WHERE id = ?")
                .bind(snapshot.id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(if owner == host.id {
                IngestOutcome::AlreadyStored
            } else {
                IngestOutcome::IdTakenByOtherHost
            });
        };

        // All processes go in as one JSON array bound to one parameter: two
        // statements per snapshot, whatever its size, with SQLite doing the
        // per-row work (far faster than a statement per process).
        let rows = snapshot
            .processes
            .iter()
            .map(ProcessRow::of)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rows = serde_json::to_string(&rows)?;
        sqlx::query(
            "INSERT INTO processes (host_id, pid, start_time, name, exe, cmd, user, first_seen, last_seen)
             SELECT ?1, p.value ->> 'pid', p.value ->> 'start_time', p.value ->> 'name',
                 p.value ->> 'exe', p.value -> 'cmd', p.value ->> 'user', ?2, ?2
             FROM json_each(?3) AS p
             WHERE true
             ON CONFLICT (host_id, pid, start_time) DO UPDATE SET
                 name = iif(excluded.last_seen >= last_seen, excluded.name, name),
                 exe = iif(excluded.last_seen >= last_seen, excluded.exe, exe),
                 cmd = iif(excluded.last_seen >= last_seen, excluded.cmd, cmd),
                 user = iif(excluded.last_seen >= last_seen, excluded.user, user),
                 first_seen = min(first_seen, excluded.first_seen),
                 last_seen = max(last_seen, excluded.last_seen)",
        )
        .bind(&host.id)
        .bind(collected)
        .bind(&rows)
        .execute(&mut *tx)
        .await
        .context("cannot store the processes")?;
        let samples = sqlx::query(
            "INSERT INTO samples (snapshot, process, parent_pid, status, cpu_percent,
                 memory_rss_bytes, memory_virtual_bytes, memory_private_bytes, threads,
                 handles, disk_read_bytes, disk_written_bytes)
             SELECT ?1, processes.id, s.value ->> 'parent_pid', s.value ->> 'status',
                 s.value ->> 'cpu_percent', s.value ->> 'memory_rss_bytes',
                 s.value ->> 'memory_virtual_bytes', s.value ->> 'memory_private_bytes',
                 s.value ->> 'threads', s.value ->> 'handles', s.value ->> 'disk_read_bytes',
                 s.value ->> 'disk_written_bytes'
             FROM json_each(?3) AS s
             -- CROSS JOIN keeps json_each outside: one index lookup per row.
             CROSS JOIN processes ON processes.host_id = ?2
                 AND processes.pid = s.value ->> 'pid'
                 AND processes.start_time = s.value ->> 'start_time'",
        )
        .bind(seq)
        .bind(&host.id)
        .bind(&rows)
        .execute(&mut *tx)
        .await
        .context("cannot store the samples")?
        .rows_affected();
        anyhow::ensure!(
            samples == snapshot.processes.len() as u64,
            "stored {samples} samples for {} processes",
            snapshot.processes.len()
        );

        tx.commit().await.context("cannot commit the snapshot")?;
        Ok(IngestOutcome::Stored)
    }

    async fn hosts(&self) -> anyhow::Result<Vec<HostRecord>> {
        let rows: Vec<HostRow> = sqlx::query_as(HOST_SELECT)
            .fetch_all(&self.reader)
            .await
            .context("cannot read the hosts")?;
        rows.into_iter().map(HostRow::into_record).collect()
    }

    async fn host(&self, host_id: &str) -> anyhow::Result<Option<HostRecord>> {
        let row: Option<HostRow> = sqlx::query_as(&format!("{HOST_SELECT} WHERE h.id = ?"))
            .bind(host_id)
            .fetch_optional(&self.reader)
            .await
            .context("cannot read the host")?;
        row.map(HostRow::into_record).transpose()
    }

    async fn hosts_named(&self, hostname: &str) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar("SELECT id FROM hosts WHERE hostname = ?")
            .bind(hostname)
            .fetch_all(&self.reader)
            .await
            .context("cannot read the hosts")
    }

    async fn snapshot(
        &self,
        host_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Option<StoredSnapshot>> {
        let at = at.map(nanos).transpose()?.unwrap_or(i64::MAX);
        let mut conn = self.reader.acquire().await?;
        let head: Option<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT seq, id, collected_at, received_at FROM snapshots
             WHERE host_id = ? AND taken_at <= ?
             ORDER BY taken_at DESC, seq DESC LIMIT 1",
        )
        .bind(host_id)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await
        .context("cannot read the snapshot")?;
        let Some((seq, id, collected_at, received_at)) = head else {
            return Ok(None);
        };
        let rows: Vec<SampleRow> = sqlx::query_as(
            "SELECT p.pid, s.parent_pid, p.name, p.exe, p.cmd, p.user, p.start_time, s.status,
                 s.cpu_percent, s.memory_rss_bytes, s.memory_virtual_bytes,
                 s.memory_private_bytes, s.threads, s.handles, s.disk_read_bytes,
                 s.disk_written_bytes
             FROM samples s JOIN processes p ON p.id = s.process
             WHERE s.snapshot = ?",
        )
        .bind(seq)
        .fetch_all(&mut *conn)
        .await
        .context("cannot read the processes")?;
        Ok(Some(StoredSnapshot {
            id: Uuid::parse_str(&id).context("stored snapshot id is not a UUID")?,
            collected_at: from_nanos(collected_at),
            received_at: from_nanos(received_at),
            processes: rows
                .into_iter()
                .map(SampleRow::into_sample)
                .collect::<anyhow::Result<_>>()?,
        }))
    }

    async fn delete_before(&self, cutoff: DateTime<Utc>, batch: u32) -> anyhow::Result<Deleted> {
        let cutoff = nanos(cutoff)?;
        let mut tx = self.writer.begin().await?;
        let seqs: Vec<i64> = sqlx::query_scalar(
            "SELECT seq FROM snapshots WHERE received_at < ? ORDER BY received_at LIMIT ?",
        )
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        let mut deleted = Deleted::default();
        if !seqs.is_empty() {
            // Lists are bound as one JSON array, so the statement text (and
            // its prepared form) does not depend on the batch's size.
            let seqs = serde_json::to_string(&seqs)?;
            let touched: BTreeSet<i64> = sqlx::query_scalar(
                "DELETE FROM samples WHERE snapshot IN (SELECT value FROM json_each(?)) RETURNING process",
            )
            .bind(&seqs)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            deleted.snapshots =
                sqlx::query("DELETE FROM snapshots WHERE seq IN (SELECT value FROM json_each(?))")
                    .bind(&seqs)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            let touched = serde_json::to_string(&touched)?;
            deleted.processes = sqlx::query(
                "DELETE FROM processes WHERE id IN (SELECT value FROM json_each(?))
                 AND NOT EXISTS (SELECT 1 FROM samples WHERE process = processes.id)",
            )
            .bind(&touched)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        deleted.hosts = sqlx::query(
            "DELETE FROM hosts WHERE last_seen < ?
             AND NOT EXISTS (SELECT 1 FROM snapshots WHERE host_id = hosts.id)
             AND NOT EXISTS (SELECT 1 FROM processes WHERE host_id = hosts.id)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn ping(&self) -> anyhow::Result<()> {
        // Touch the schema, not just the connection: a broken or vanished
        // database file fails here.
        sqlx::query("SELECT count(*) FROM sqlite_schema")
            .execute(&self.reader)
            .await
            .context("the database did not answer")?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The newest snapshot's totals beside each host.
const HOST_SELECT: &str = "
    SELECT h.id, h.hostname, h.os_name, h.os_version, h.kernel, h.arch, h.cpu_count,
        h.memory_total_bytes, h.boot_time, h.agent_version, h.interval_ms,
        h.first_seen, h.last_seen,
        s.process_count, s.cpu_percent_total, s.memory_rss_total_bytes
    FROM hosts h LEFT JOIN snapshots s ON s.seq = (
        SELECT seq FROM snapshots WHERE host_id = h.id
        ORDER BY taken_at DESC, seq DESC LIMIT 1)";

#[derive(sqlx::FromRow)]
struct HostRow {
    id: String,
    hostname: String,
    os_name: String,
    os_version: String,
    kernel: String,
    arch: String,
    cpu_count: u32,
    memory_total_bytes: i64,
    boot_time: i64,
    agent_version: String,
    interval_ms: i64,
    first_seen: i64,
    last_seen: i64,
    process_count: Option<u32>,
    cpu_percent_total: Option<f64>,
    memory_rss_total_bytes: Option<i64>,
}

impl HostRow {
    fn into_record(self) -> anyhow::Result<HostRecord> {
        Ok(HostRecord {
            info: HostInfo {
                id: self.id,
                hostname: self.hostname,
                os_name: self.os_name,
                os_version: self.os_version,
                kernel: self.kernel,
                arch: self.arch,
                cpu_count: self.cpu_count,
                memory_total_bytes: self.memory_total_bytes as u64,
                boot_time: from_nanos(self.boot_time),
                agent_version: self.agent_version,
            },
            interval_ms: self.interval_ms as u64,
            first_seen: from_nanos(self.first_seen),
            last_seen: from_nanos(self.last_seen),
            totals: SnapshotTotals {
                process_count: self.process_count.unwrap_or(0),
                cpu_percent: self.cpu_percent_total.unwrap_or(0.0) as f32,
                memory_rss_bytes: self.memory_rss_total_bytes.unwrap_or(0) as u64,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
struct SampleRow {
    pid: u32,
    parent_pid: Option<u32>,
    name: String,
    exe: Option<String>,
    cmd: String,
    user: Option<String>,
    start_time: i64,
    status: String,
    cpu_percent: f64,
    memory_rss_bytes: i64,
    memory_virtual_bytes: i64,
    memory_private_bytes: Option<i64>,
    threads: Option<u32>,
    handles: Option<u32>,
    disk_read_bytes: i64,
    disk_written_bytes: i64,
}

impl SampleRow {
    fn into_sample(self) -> anyhow::Result<ProcessSample> {
        Ok(ProcessSample {
            pid: self.pid,
            parent_pid: self.parent_pid,
            name: self.name,
            exe: self.exe,
            cmd: serde_json::from_str(&self.cmd)
                .context("stored command line is not a JSON list")?,
            user: self.user,
            start_time: from_nanos(self.start_time),
            status: ProcessStatus::from_name(&self.status),
            cpu_percent: self.cpu_percent as f32,
            memory_rss_bytes: self.memory_rss_bytes as u64,
            memory_virtual_bytes: self.memory_virtual_bytes as u64,
            memory_private_bytes: self.memory_private_bytes.map(|b| b as u64),
            threads: self.threads,
            handles: self.handles,
            disk_read_bytes: self.disk_read_bytes as u64,
            disk_written_bytes: self.disk_written_bytes as u64,
        })
    }
}

/// One process of a snapshot as the ingest statements read it from JSON:
/// times as stored, byte counts clamped to what SQLite holds.
#[derive(serde::Serialize)]
struct ProcessRow<'a> {
    pid: u32,
    start_time: i64,
    name: &'a str,
    exe: Option<&'a str>,
    cmd: &'a [String],
    user: Option<&'a str>,
    parent_pid: Option<u32>,
    status: &'static str,
    cpu_percent: f32,
    memory_rss_bytes: i64,
    memory_virtual_bytes: i64,
    memory_private_bytes: Option<i64>,
    threads: Option<u32>,
    handles: Option<u32>,
    disk_read_bytes: i64,
    disk_written_bytes: i64,
}

impl<'a> ProcessRow<'a> {
    fn of(p: &'a ProcessSample) -> anyhow::Result<Self> {
        Ok(Self {
            pid: p.pid,
            start_time: nanos(p.start_time)?,
            name: &p.name,
            exe: p.exe.as_deref(),
            cmd: &p.cmd,
            user: p.user.as_deref(),
            parent_pid: p.parent_pid,
            status: p.status.as_str(),
            cpu_percent: p.cpu_percent,
            memory_rss_bytes: int(p.memory_rss_bytes),
            memory_virtual_bytes: int(p.memory_virtual_bytes),
            memory_private_bytes: p.memory_private_bytes.map(int),
            threads: p.threads,
            handles: p.handles,
            disk_read_bytes: int(p.disk_read_bytes),
            disk_written_bytes: int(p.disk_written_bytes),
        })
    }
}

/// SQLite integers are signed; byte counts past i64::MAX (only ever bogus
/// readings) are stored as i64::MAX.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A time as stored: nanoseconds since the epoch. The API rejects times
/// outside what fits (years 1677 to 2262) before they get here.
fn nanos(time: DateTime<Utc>) -> anyhow::Result<i64> {
    time.timestamp_nanos_opt()
        .with_context(|| format!("time {time} is outside the years 1677 to 2262"))
}

fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}
