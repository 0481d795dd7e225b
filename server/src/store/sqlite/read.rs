//! Answers from a read transaction: hosts, one snapshot, series, changes.
//! Each function takes a connection already inside `BEGIN`, so that one
//! answer comes from one consistent view even while the writer and
//! maintenance go on.

use std::ops::ControlFlow;

use anyhow::Context;
use chrono::DateTime;
use procmon_model::{FactChange, HostChanges, HostInfo, ProcessEvent, ProcessFacts, Series};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::errors::Classify;
use super::replay::{self, Step};
use super::schema::{Block, Kind, DAY, HOUR, MINUTE};
use crate::store::chain::{identity, Event, Identity};
use crate::store::fields::Metric;
use crate::store::load::{self, LoadPoint};
use crate::store::rollup::{self, Buckets};
use crate::store::series::{finish, plan_series};
use crate::store::{
    host_values, HostMeters, HostRecord, SnapshotTotals, StoreResult, StoredSnapshot, TimeRange,
    HOST_METRICS,
};
use procmon_model::Resolution;

/// What a read may see: the blocks that exist, and the oldest time each
/// kind of history still shows (retention cutoffs).
pub struct View {
    pub blocks: Vec<Block>,
    pub raw_from: i64,
    pub minute_from: i64,
    pub hour_from: i64,
}

impl View {
    pub fn load(conn: &Connection) -> StoreResult<Self> {
        let cutoff = |name: &str| -> StoreResult<i64> {
            Ok(conn
                .prepare_cached("SELECT value FROM meta WHERE name = ?1")
                .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
                .doing("cannot read the retention marks")?
                .unwrap_or(i64::MIN))
        };
        Ok(Self {
            blocks: super::schema::blocks(conn)?,
            raw_from: cutoff("raw_from")?,
            minute_from: cutoff("minute_from")?,
            hour_from: cutoff("hour_from")?,
        })
    }

    pub fn raw(&self) -> Vec<Block> {
        self.of(Kind::Raw)
    }

    fn of(&self, kind: Kind) -> Vec<Block> {
        self.blocks
            .iter()
            .copied()
            .filter(|b| b.kind == kind)
            .collect()
    }
}

/// A host's row, with its key and roll-up marks.
pub struct HostRow {
    pub key: i64,
    pub record: HostRecord,
    pub taken_at: i64,
    pub minute_done: i64,
    pub hour_done: i64,
}

const HOST_COLUMNS: &str = "key, id, hostname, os_name, os_version, kernel, arch, cpu_count,
    memory_total_bytes, boot_time, agent_version, interval_ms, first_seen, last_seen, taken_at,
    process_count, cpu_percent_total, memory_rss_total_bytes, minute_done, hour_done,
    coalesce(first_taken, first_seen), labels";

/// A host's labels as the `labels` column keeps them: joined by commas,
/// which no label holds (ingest refuses one that does).
pub fn labels_text(labels: &[String]) -> String {
    labels.join(",")
}

/// The inverse of [`labels_text`].
fn labels_of(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|label| !label.is_empty())
        .map(str::to_owned)
        .collect()
}

fn host_row(row: &Row<'_>) -> rusqlite::Result<HostRow> {
    let time = |i| row.get::<_, i64>(i).map(DateTime::from_timestamp_nanos);
    Ok(HostRow {
        key: row.get(0)?,
        record: HostRecord {
            info: HostInfo {
                id: row.get(1)?,
                hostname: row.get(2)?,
                os_name: row.get(3)?,
                os_version: row.get(4)?,
                kernel: row.get(5)?,
                arch: row.get(6)?,
                cpu_count: row.get(7)?,
                memory_total_bytes: row.get::<_, i64>(8)? as u64,
                boot_time: time(9)?,
                agent_version: row.get(10)?,
                labels: labels_of(&row.get::<_, String>(21)?),
            },
            interval_ms: row.get::<_, i64>(11)? as u64,
            first_seen: time(12)?,
            last_seen: time(13)?,
            newest_taken_at: time(14)?,
            first_taken_at: time(20)?,
            totals: SnapshotTotals {
                process_count: row.get(15)?,
                cpu_percent: row.get(16)?,
                memory_rss_bytes: row.get::<_, i64>(17)? as u64,
            },
        },
        taken_at: row.get(14)?,
        minute_done: row.get(18)?,
        hour_done: row.get(19)?,
    })
}

pub fn hosts(conn: &Connection) -> StoreResult<Vec<HostRow>> {
    let mut statement = conn
        .prepare_cached(&format!("SELECT {HOST_COLUMNS} FROM host"))
        .doing("cannot read the hosts")?;
    let rows = statement
        .query_map([], host_row)
        .doing("cannot read the hosts")?;
    rows.collect::<Result<_, _>>()
        .doing("cannot read the hosts")
}

pub fn host(conn: &Connection, host_id: &str) -> StoreResult<Option<HostRow>> {
    conn.prepare_cached(&format!("SELECT {HOST_COLUMNS} FROM host WHERE id = ?1"))
        .and_then(|mut s| s.query_row([host_id], host_row).optional())
        .doing("cannot read the host")
}

/// The host's newest snapshot at or before `at` (newest of all without),
/// within raw retention.
pub fn snapshot(
    conn: &Connection,
    view: &View,
    host_id: &str,
    at: Option<i64>,
) -> StoreResult<Option<StoredSnapshot>> {
    let Some(host) = host(conn, host_id)? else {
        return Ok(None);
    };
    let at = at.unwrap_or(host.taken_at).min(host.taken_at);
    let Some(head) = replay::head_at(conn, &view.raw(), host.key, at, view.raw_from)? else {
        return Ok(None);
    };
    stored(conn, &head).map(Some)
}

/// The host's snapshot `id`, exactly as sent, if raw retention keeps it.
pub fn snapshot_by_id(
    conn: &Connection,
    view: &View,
    host_id: &str,
    id: uuid::Uuid,
) -> StoreResult<Option<StoredSnapshot>> {
    let Some(host) = host(conn, host_id)? else {
        return Ok(None);
    };
    match replay::head_of(conn, &view.raw(), host.key, id, view.raw_from)? {
        Some(head) => stored(conn, &head).map(Some),
        None => Ok(None),
    }
}

/// The snapshot `head`, its processes rebuilt from its chain.
fn stored(conn: &Connection, head: &replay::Head) -> StoreResult<StoredSnapshot> {
    let (chain, _) = replay::rebuild(conn, head)?;
    Ok(StoredSnapshot {
        id: head.id,
        collected_at: DateTime::from_timestamp_nanos(head.collected_at),
        received_at: DateTime::from_timestamp_nanos(head.received_at),
        taken_at: DateTime::from_timestamp_nanos(head.taken_at),
        processes: chain.processes().cloned().collect(),
    })
}

/// The host's load points taken at or after `from`, oldest first.
pub fn load_points(conn: &Connection, host_id: &str, from: i64) -> StoreResult<Vec<LoadPoint>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT collected_at, cpu_percent, memory_rss_bytes, processes, host_load
             FROM load_point WHERE host_id = ?1 AND taken_at >= ?2
             ORDER BY taken_at, rowid",
        )
        .doing("cannot read the host's load")?;
    let rows = statement
        .query_map(rusqlite::params![host_id, from], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, f64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .doing("cannot read the host's load")?;
    let mut points = Vec::new();
    for row in rows {
        let (at, cpu, rss, processes, load) = row.doing("cannot read the host's load")?;
        points.push(load::point(at, cpu, rss, processes, load.as_deref())?);
    }
    Ok(points)
}

fn nanos_of(range: TimeRange) -> (i64, i64) {
    (
        crate::store::chain::nanos(range.from),
        crate::store::chain::nanos(range.to),
    )
}

/// Where each resolution's data ends for a host: roll-ups hold what is
/// before their marks, raw samples the rest.
struct Sources {
    hour_until: i64,
    minute_until: i64,
}

/// Fills step buckets for `[from, to]` from the finest data the plan
/// allows: hour roll-ups, then minute roll-ups, then raw samples.
fn fill(
    resolution: Resolution,
    (from, to): (i64, i64),
    marks: Sources,
    steps: &mut Buckets,
    mut rolled: impl FnMut(Kind, i64, i64, &mut Buckets) -> StoreResult<()>,
    raw: impl FnOnce(i64, i64, &mut Buckets) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut cursor = from;
    if resolution == Resolution::Hour && cursor < marks.hour_until {
        let end = to.min(marks.hour_until - 1);
        rolled(Kind::Hour, cursor, end, steps)?;
        cursor = end + 1;
    }
    if resolution != Resolution::Raw && cursor < marks.minute_until && cursor <= to {
        let end = to.min(marks.minute_until - 1);
        rolled(Kind::Minute, cursor, end, steps)?;
        cursor = end + 1;
    }
    if cursor <= to {
        raw(cursor, to, steps)?;
    }
    Ok(())
}

/// Merges the roll-up rows of `table_of(block)` whose period lies in
/// `[from, to]` into `steps`; `filter` picks the rows (`host`, or `host`
/// and a process).
fn merge_rolled(
    conn: &Connection,
    view: &View,
    kind: Kind,
    (from, to): (i64, i64),
    process: Option<Identity>,
    host: i64,
    steps: &mut Buckets,
) -> StoreResult<()> {
    // A minute roll-up row covers an hour; an hour roll-up row a day.
    let (period, width) = match kind {
        Kind::Minute => (HOUR, MINUTE),
        _ => (DAY, HOUR),
    };
    let first_period = from - from.rem_euclid(period);
    let first_bucket = from - from.rem_euclid(width);
    for block in view.of(kind) {
        if block.end() <= first_period || block.start() > to {
            continue;
        }
        let (sql, args) = match process {
            Some((pid, start)) => {
                // One look-up per period, each by the whole key: the
                // periods are few (an hour or a day each), the rows of
                // other processes many.
                let periods: Vec<String> = (0..)
                    .map(|i| {
                        first_period.max(block.start() - block.start().rem_euclid(period))
                            + i * period
                    })
                    .take_while(|&p| p <= to && p < block.end())
                    .map(|p| p.to_string())
                    .collect();
                (
                    format!(
                        "SELECT period, data FROM {} WHERE host = ?1 AND pid = ?2
                         AND start_time = ?3 AND period IN ({})",
                        block.table(),
                        periods.join(",")
                    ),
                    vec![host, i64::from(pid), start],
                )
            }
            None => (
                format!(
                    "SELECT period, data FROM {} WHERE host = ?1 AND period BETWEEN ?2 AND ?3",
                    block.host_table()
                ),
                vec![host, first_period, to],
            ),
        };
        let mut statement = conn.prepare_cached(&sql).doing("cannot read roll-ups")?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(args))
            .doing("cannot read roll-ups")?;
        while let Some(row) = rows.next().doing("cannot read roll-ups")? {
            let base: i64 = row.get(0).doing("cannot read roll-ups")?;
            let data = row.get_ref(1).doing("cannot read roll-ups")?;
            let data = data.as_blob().context("roll-up is not a blob")?;
            for bucket in rollup::decode(base, width, data)? {
                if bucket.start >= first_bucket && bucket.start <= to {
                    steps.merge(&bucket);
                }
            }
        }
    }
    Ok(())
}

/// One process's charted metrics over `range`.
pub fn process_series(
    conn: &Connection,
    view: &View,
    host_id: &str,
    process: Identity,
    range: TimeRange,
    max_points: usize,
) -> StoreResult<Series> {
    let metrics: Vec<Metric> = Metric::charted().collect();
    let names: Vec<&str> = metrics.iter().map(|m| m.name()).collect();
    let (from, to) = nanos_of(range);
    let plan = plan_series(from, to, max_points, view.raw_from, view.minute_from);
    let mut steps = Buckets::new(plan.step, metrics.len());
    if let Some(host) = host(conn, host_id)? {
        let from = from.max(view.hour_from);
        let raw = view.raw();
        fill(
            plan.resolution,
            (from, to),
            Sources {
                hour_until: host.hour_done,
                minute_until: host.minute_done,
            },
            &mut steps,
            |kind, a, b, steps| {
                merge_rolled(conn, view, kind, (a, b), Some(process), host.key, steps)
            },
            |a, b, steps| {
                replay::replay_one(
                    conn,
                    &raw,
                    host.key,
                    process,
                    a.max(view.raw_from),
                    b,
                    |taken, p| {
                        if let Some(p) = p {
                            steps.add(taken, metrics.iter().map(|m| m.chart(m.raw(p))));
                        }
                    },
                )
            },
        )?;
    }
    Ok(finish(range, plan, &names, steps.into_vec()))
}

/// The host's totals over `range`.
pub fn host_series(
    conn: &Connection,
    view: &View,
    host_id: &str,
    range: TimeRange,
    max_points: usize,
) -> StoreResult<Series> {
    let (from, to) = nanos_of(range);
    let plan = plan_series(from, to, max_points, view.raw_from, view.minute_from);
    let mut steps = Buckets::new(plan.step, HOST_METRICS.len());
    if let Some(host) = host(conn, host_id)? {
        let from = from.max(view.hour_from);
        fill(
            plan.resolution,
            (from, to),
            Sources {
                hour_until: host.hour_done,
                minute_until: host.minute_done,
            },
            &mut steps,
            |kind, a, b, steps| merge_rolled(conn, view, kind, (a, b), None, host.key, steps),
            |a, b, steps| raw_totals(conn, view, host.key, a.max(view.raw_from), b, steps),
        )?;
    }
    Ok(finish(range, plan, &HOST_METRICS, steps.into_vec()))
}

/// Host totals and meters straight from the raw rows, without decoding a
/// payload.
fn raw_totals(
    conn: &Connection,
    view: &View,
    host: i64,
    from: i64,
    to: i64,
    steps: &mut Buckets,
) -> StoreResult<()> {
    for block in view.raw() {
        if block.end() <= from || block.start() > to {
            continue;
        }
        let mut statement = conn
            .prepare_cached(&format!(
                "SELECT taken_at, process_count, cpu_percent_total, memory_rss_total_bytes,
                     cpu_machine_percent, memory_used_bytes, memory_available_bytes,
                     swap_used_bytes, swap_total_bytes, load_1m
                 FROM {} WHERE host = ?1 AND taken_at BETWEEN ?2 AND ?3",
                block.table()
            ))
            .doing("cannot read history")?;
        let mut rows = statement
            .query(params![host, from, to])
            .doing("cannot read history")?;
        while let Some(row) = rows.next().doing("cannot read history")? {
            let bytes = |i| row.get::<_, Option<i64>>(i).map(|b| b.map(|b| b as u64));
            let (taken, totals, meters) = (|| {
                Ok::<_, rusqlite::Error>((
                    row.get::<_, i64>(0)?,
                    SnapshotTotals {
                        process_count: row.get(1)?,
                        cpu_percent: row.get(2)?,
                        memory_rss_bytes: row.get::<_, i64>(3)? as u64,
                    },
                    HostMeters {
                        cpu_machine_percent: row.get(4)?,
                        memory_used_bytes: bytes(5)?,
                        memory_available_bytes: bytes(6)?,
                        swap_used_bytes: bytes(7)?,
                        swap_total_bytes: bytes(8)?,
                        load_1m: row.get(9)?,
                    },
                ))
            })()
            .doing("cannot read history")?;
            steps.add(taken, host_values(&totals, &meters));
        }
    }
    Ok(())
}

/// Processes started and exited, and facts changed, after `range.from`
/// up to `range.to`.
pub fn changes(
    conn: &Connection,
    view: &View,
    host_id: &str,
    range: TimeRange,
    limit: usize,
) -> StoreResult<HostChanges> {
    let (from, to) = nanos_of(range);
    let mut answer = HostChanges {
        host_id: host_id.to_owned(),
        from: range.from,
        to: range.to,
        started: Vec::new(),
        exited: Vec::new(),
        changed: Vec::new(),
        truncated: false,
    };
    let Some(host) = host(conn, host_id)? else {
        return Ok(answer);
    };
    let mut count = 0;
    replay::replay(
        conn,
        &view.raw(),
        host.key,
        from.saturating_add(1).max(view.raw_from),
        to,
        true,
        |Step {
             taken_at,
             state,
             events,
         }| {
            let at = DateTime::from_timestamp_nanos(taken_at);
            if count + events.len() > limit {
                answer.truncated = true;
                return ControlFlow::Break(());
            }
            count += events.len();
            for event in events {
                match event {
                    Event::Started(slot) => {
                        if let Some(p) = state.slot(*slot) {
                            answer.started.push(ProcessEvent {
                                at,
                                process: ProcessFacts::from(p),
                            });
                        }
                    }
                    Event::Exited(p) => answer.exited.push(ProcessEvent {
                        at,
                        process: ProcessFacts::from(p),
                    }),
                    Event::FactsChanged { slot, before } => {
                        if let Some(after) = state.slot(*slot) {
                            answer.changed.push(FactChange {
                                at,
                                before: ProcessFacts::from(before),
                                after: ProcessFacts::from(after),
                            });
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    Ok(answer)
}

/// Summaries of one host-hour of raw history: per process and for the
/// host, one bucket per minute.
pub struct HourRollup {
    pub processes: Vec<(Identity, Vec<rollup::Bucket>)>,
    pub host: Vec<rollup::Bucket>,
}

/// Computes the minute roll-ups of the host's hour starting at `hour`.
pub fn roll_up_hour(
    conn: &Connection,
    view: &View,
    host: i64,
    hour: i64,
) -> StoreResult<HourRollup> {
    let metrics: Vec<Metric> = Metric::charted().collect();
    let mut processes: std::collections::HashMap<Identity, Buckets> = Default::default();
    let mut totals = Buckets::new(MINUTE, HOST_METRICS.len());
    replay::replay(
        conn,
        &view.raw(),
        host,
        hour,
        hour + HOUR - 1,
        false,
        |step| {
            for p in step.state.processes() {
                processes
                    .entry(identity(p))
                    .or_insert_with(|| Buckets::new(MINUTE, metrics.len()))
                    .add(step.taken_at, metrics.iter().map(|m| m.chart(m.raw(p))));
            }
            ControlFlow::Continue(())
        },
    )?;
    // The host's totals and meters are beside each snapshot: no replay.
    raw_totals(conn, view, host, hour, hour + HOUR - 1, &mut totals)?;
    Ok(HourRollup {
        processes: processes
            .into_iter()
            .map(|(id, b)| (id, b.into_vec()))
            .collect(),
        host: totals.into_vec(),
    })
}

/// Computes the hour roll-ups of the host's day starting at `day` from its
/// minute roll-ups.
pub fn roll_up_day(conn: &Connection, view: &View, host: i64, day: i64) -> StoreResult<HourRollup> {
    let block = Block::of(Kind::Minute, day);
    let mut answer = HourRollup {
        processes: Vec::new(),
        host: Vec::new(),
    };
    if !view.blocks.contains(&block) {
        return Ok(answer);
    }
    let metrics = Metric::charted().count();
    let mut processes: std::collections::HashMap<Identity, Buckets> = Default::default();
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT pid, start_time, period, data FROM {} WHERE host = ?1",
            block.table()
        ))
        .doing("cannot read roll-ups")?;
    let mut rows = statement.query([host]).doing("cannot read roll-ups")?;
    while let Some(row) = rows.next().doing("cannot read roll-ups")? {
        let pid: u32 = row.get(0).doing("cannot read roll-ups")?;
        let start: i64 = row.get(1).doing("cannot read roll-ups")?;
        let period: i64 = row.get(2).doing("cannot read roll-ups")?;
        let data = row.get_ref(3).doing("cannot read roll-ups")?;
        let hours = processes
            .entry((pid, start))
            .or_insert_with(|| Buckets::new(HOUR, metrics));
        for bucket in rollup::decode(
            period,
            MINUTE,
            data.as_blob().context("roll-up is not a blob")?,
        )? {
            hours.merge(&bucket);
        }
    }
    let mut totals = Buckets::new(HOUR, HOST_METRICS.len());
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT period, data FROM {} WHERE host = ?1",
            block.host_table()
        ))
        .doing("cannot read roll-ups")?;
    let mut rows = statement.query([host]).doing("cannot read roll-ups")?;
    while let Some(row) = rows.next().doing("cannot read roll-ups")? {
        let period: i64 = row.get(0).doing("cannot read roll-ups")?;
        let data = row.get_ref(1).doing("cannot read roll-ups")?;
        for bucket in rollup::decode(
            period,
            MINUTE,
            data.as_blob().context("roll-up is not a blob")?,
        )? {
            totals.merge(&bucket);
        }
    }
    answer.processes = processes
        .into_iter()
        .map(|(id, b)| (id, b.into_vec()))
        .collect();
    answer.host = totals.into_vec();
    Ok(answer)
}
