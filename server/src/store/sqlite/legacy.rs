//! Converting a database of the first layout (a row per process per
//! snapshot in `samples`) into blocks of changes, at start, without losing
//! what it holds. Each old snapshot is read back whole and stored through
//! the writer as a new one would be, oldest first; a conversion cut short
//! (the server killed) starts again where it stopped, since a snapshot id
//! is stored once. The old tables go only once every snapshot is across.

use anyhow::Context;
use chrono::DateTime;
use procmon_model::{HostInfo, ProcessSample, ProcessStatus, Snapshot, WIRE_VERSION};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::writer::Writer;

/// Converts the old tables if there are any.
pub fn convert(writer: &mut Writer) -> anyhow::Result<()> {
    if !has_table(&writer.conn, "samples")? {
        return Ok(());
    }
    let hosts = old_hosts(&writer.conn)?;
    let heads: Vec<(i64, String, String, i64, i64, i64)> = writer
        .conn
        .prepare(
            "SELECT seq, id, host_id, collected_at, received_at, interval_ms FROM snapshots
             ORDER BY taken_at, seq",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    tracing::info!(
        snapshots = heads.len(),
        "converting the database to storage by change; this runs once"
    );
    for (done, (seq, id, host_id, collected, received, interval_ms)) in
        heads.into_iter().enumerate()
    {
        let host = hosts
            .iter()
            .find(|h| h.id == host_id)
            .with_context(|| format!("snapshot {id} names unknown host {host_id}"))?
            .clone();
        let snapshot = std::sync::Arc::new(Snapshot {
            version: WIRE_VERSION,
            id: Uuid::parse_str(&id).context("old snapshot id is not a UUID")?,
            collected_at: DateTime::from_timestamp_nanos(collected),
            interval_ms: interval_ms as u64,
            host,
            load: None,
            processes: old_processes(&writer.conn, seq)?,
        });
        writer
            .ingest(&snapshot, received)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot convert snapshot {id}"))?;
        if (done + 1) % 1000 == 0 {
            tracing::info!(converted = done + 1, "converting the database");
        }
    }
    // Keep when hosts were first seen, which the conversion cannot know.
    writer.conn.execute_batch(
        "UPDATE host SET first_seen = (SELECT min(host.first_seen, h.first_seen)
             FROM hosts h WHERE h.id = host.id)
         WHERE id IN (SELECT id FROM hosts);
         DROP TABLE samples; DROP TABLE processes; DROP TABLE snapshots; DROP TABLE hosts;
         DROP TABLE IF EXISTS _sqlx_migrations;",
    )?;
    tracing::info!("database converted");
    Ok(())
}

fn has_table(conn: &Connection, name: &str) -> anyhow::Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )? > 0)
}

fn old_hosts(conn: &Connection) -> anyhow::Result<Vec<HostInfo>> {
    let mut statement = conn.prepare(
        "SELECT id, hostname, os_name, os_version, kernel, arch, cpu_count, memory_total_bytes,
             boot_time, agent_version FROM hosts",
    )?;
    let hosts = statement
        .query_map([], |r| {
            Ok(HostInfo {
                id: r.get(0)?,
                hostname: r.get(1)?,
                os_name: r.get(2)?,
                os_version: r.get(3)?,
                kernel: r.get(4)?,
                arch: r.get(5)?,
                cpu_count: r.get(6)?,
                memory_total_bytes: r.get::<_, i64>(7)? as u64,
                boot_time: DateTime::from_timestamp_nanos(r.get(8)?),
                agent_version: r.get(9)?,
                // The first layout knew no labels.
                labels: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(hosts)
}

fn old_processes(conn: &Connection, seq: i64) -> anyhow::Result<Vec<ProcessSample>> {
    let mut statement = conn.prepare_cached(
        "SELECT p.pid, s.parent_pid, p.name, p.exe, p.cmd, p.user, p.start_time, s.status,
             s.cpu_percent, s.memory_rss_bytes, s.memory_virtual_bytes, s.memory_private_bytes,
             s.threads, s.handles, s.disk_read_bytes, s.disk_written_bytes
         FROM samples s JOIN processes p ON p.id = s.process WHERE s.snapshot = ?1",
    )?;
    let rows = statement.query_map(params![seq], |r| {
        Ok((
            ProcessSample {
                pid: r.get(0)?,
                parent_pid: r.get(1)?,
                name: r.get(2)?,
                exe: r.get(3)?,
                cmd: Vec::new(),
                user: r.get(5)?,
                start_time: DateTime::from_timestamp_nanos(r.get(6)?),
                status: ProcessStatus::from_name(&r.get::<_, String>(7)?),
                cpu_percent: r.get::<_, f64>(8)? as f32,
                memory_rss_bytes: r.get::<_, i64>(9)? as u64,
                memory_virtual_bytes: r.get::<_, i64>(10)? as u64,
                memory_private_bytes: r.get::<_, Option<i64>>(11)?.map(|b| b as u64),
                threads: r.get(12)?,
                handles: r.get(13)?,
                disk_read_bytes: r.get::<_, i64>(14)? as u64,
                disk_written_bytes: r.get::<_, i64>(15)? as u64,
            },
            r.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (mut p, cmd) = row?;
        p.cmd = serde_json::from_str(&cmd).context("old command line is not a JSON list")?;
        Ok(p)
    })
    .collect()
}
