//! Answers from a read transaction: hosts, one snapshot, series, changes.
//! Each function takes a transaction already started (repeatable read), so
//! one answer comes from one consistent view while writers go on.
//!
//! Reads send their queries with `query_typed`: parse, bind and execute in
//! one round trip, where `query` first prepares the statement in a round
//! trip of its own. A snapshot read is five queries, so this is most of
//! its wait on a database that answers fast (see the scale bench).

use std::collections::HashMap;
use std::ops::ControlFlow;

use chrono::DateTime;
use procmon_model::{
    FactChange, HostChanges, HostInfo, ProcessEvent, ProcessFacts, Resolution, Series,
};
use tokio_postgres::types::Type;
use tokio_postgres::{Row, Transaction};

use super::errors::Classify;
use super::replay::{self, Step};
use super::schema::{self, Block, Kind, DAY, HOUR, MINUTE};
use crate::store::chain::{identity, nanos, Event, Identity};
use crate::store::fields::Metric;
use crate::store::load::{self, LoadPoint};
use crate::store::rollup::{self, Buckets};
use crate::store::series::{finish, plan_series};
use crate::store::{
    host_values, Found, Hits, HostMeters, HostRecord, SearchQuery, SnapshotTotals, StoreResult,
    StoredSnapshot, TimeRange, HOST_METRICS,
};

/// What a read may see: the partitions that exist, and the oldest time
/// each kind of history still shows (retention cutoffs).
pub struct View {
    pub blocks: Vec<Block>,
    pub raw_from: i64,
    pub minute_from: i64,
    pub hour_from: i64,
}

impl View {
    pub async fn load(tx: &Transaction<'_>) -> StoreResult<Self> {
        let rows = tx
            .query_typed("SELECT name, value FROM meta", &[])
            .await
            .doing("cannot read the retention marks")?;
        let cutoff = |name: &str| {
            rows.iter()
                .find(|r| r.get::<_, &str>(0) == name)
                .map_or(i64::MIN, |r| r.get(1))
        };
        Ok(Self {
            blocks: schema::blocks(tx).await?,
            raw_from: cutoff("raw_from"),
            minute_from: cutoff("minute_from"),
            hour_from: cutoff("hour_from"),
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

pub const HOST_COLUMNS: &str = "key, id, hostname, os_name, os_version, kernel, arch, cpu_count,
    memory_total_bytes, boot_time, agent_version, interval_ms, first_seen, last_seen, taken_at,
    process_count, cpu_percent_total, memory_rss_total_bytes, minute_done, hour_done,
    first_taken, labels";

pub fn host_row(row: &Row) -> HostRow {
    let time = |i| DateTime::from_timestamp_nanos(row.get::<_, i64>(i));
    HostRow {
        key: row.get(0),
        record: HostRecord {
            info: HostInfo {
                id: row.get(1),
                hostname: row.get(2),
                os_name: row.get(3),
                os_version: row.get(4),
                kernel: row.get(5),
                arch: row.get(6),
                cpu_count: row.get::<_, i64>(7) as u32,
                memory_total_bytes: row.get::<_, i64>(8) as u64,
                boot_time: time(9),
                agent_version: row.get(10),
                labels: row.get(21),
            },
            interval_ms: row.get::<_, i64>(11) as u64,
            first_seen: time(12),
            last_seen: time(13),
            newest_taken_at: time(14),
            first_taken_at: time(20),
            totals: SnapshotTotals {
                process_count: row.get::<_, i64>(15) as u32,
                cpu_percent: row.get(16),
                memory_rss_bytes: row.get::<_, i64>(17) as u64,
            },
        },
        taken_at: row.get(14),
        minute_done: row.get(18),
        hour_done: row.get(19),
    }
}

pub async fn hosts(tx: &Transaction<'_>) -> StoreResult<Vec<HostRow>> {
    let rows = tx
        .query_typed(&format!("SELECT {HOST_COLUMNS} FROM host"), &[])
        .await
        .doing("cannot read the hosts")?;
    Ok(rows.iter().map(host_row).collect())
}

pub async fn host(tx: &Transaction<'_>, host_id: &str) -> StoreResult<Option<HostRow>> {
    let row = tx
        .query_typed_opt(
            &format!("SELECT {HOST_COLUMNS} FROM host WHERE id = $1"),
            &[(&host_id, Type::TEXT)],
        )
        .await
        .doing("cannot read the host")?;
    Ok(row.as_ref().map(host_row))
}

/// The host's newest snapshot at or before `at` (newest of all without),
/// within raw retention.
pub async fn snapshot(
    tx: &Transaction<'_>,
    view: &View,
    host_id: &str,
    at: Option<i64>,
) -> StoreResult<Option<StoredSnapshot>> {
    let Some(host) = host(tx, host_id).await? else {
        return Ok(None);
    };
    let at = at.unwrap_or(host.taken_at).min(host.taken_at);
    let Some(head) = replay::head_at(tx, &view.raw(), host.key, at, view.raw_from).await? else {
        return Ok(None);
    };
    stored(tx, &head).await.map(Some)
}

/// A fleet search in one read: the hosts listed once, then each host's
/// snapshot found and rebuilt in the same transaction (two queries a host),
/// where the trait's default would open a transaction per host.
pub async fn search(
    tx: &Transaction<'_>,
    view: &View,
    query: &SearchQuery,
    at: Option<i64>,
    limit: usize,
) -> StoreResult<(Vec<Found>, bool)> {
    let mut hosts = hosts(tx).await?;
    hosts.sort_by(|a, b| a.record.info.id.cmp(&b.record.info.id));
    let raw = view.raw();
    let mut hits = Hits::new(query, limit);
    for host in hosts {
        let at = at.unwrap_or(host.taken_at).min(host.taken_at);
        let Some(head) = replay::head_at(tx, &raw, host.key, at, view.raw_from).await? else {
            continue;
        };
        if hits.add(&host.record.info.id, stored(tx, &head).await?) {
            break;
        }
    }
    Ok(hits.done())
}

/// The host's snapshot `id`, exactly as sent, if raw retention keeps it.
pub async fn snapshot_by_id(
    tx: &Transaction<'_>,
    view: &View,
    host_id: &str,
    id: uuid::Uuid,
) -> StoreResult<Option<StoredSnapshot>> {
    let Some(host) = host(tx, host_id).await? else {
        return Ok(None);
    };
    match replay::head_of(tx, host.key, id, view.raw_from).await? {
        Some(head) => stored(tx, &head).await.map(Some),
        None => Ok(None),
    }
}

/// The snapshot `head`, its processes rebuilt from its chain.
async fn stored(tx: &Transaction<'_>, head: &replay::Head) -> StoreResult<StoredSnapshot> {
    let (chain, _) = replay::rebuild(tx, head).await?;
    Ok(StoredSnapshot {
        id: head.id,
        collected_at: DateTime::from_timestamp_nanos(head.collected_at),
        received_at: DateTime::from_timestamp_nanos(head.received_at),
        taken_at: DateTime::from_timestamp_nanos(head.taken_at),
        processes: chain.processes().cloned().collect(),
    })
}

/// The host's load points taken at or after `from`, oldest first.
pub async fn load_points(
    tx: &Transaction<'_>,
    host_id: &str,
    from: i64,
) -> StoreResult<Vec<LoadPoint>> {
    let rows = tx
        .query_typed(
            "SELECT collected_at, cpu_percent, memory_rss_bytes, processes, host_load
             FROM load_point WHERE host_id = $1 AND taken_at >= $2
             ORDER BY taken_at, collected_at",
            &[(&host_id, Type::TEXT), (&from, Type::INT8)],
        )
        .await
        .doing("cannot read the host's load")?;
    let points = rows
        .iter()
        .map(|r| load::point(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect::<anyhow::Result<_>>()?;
    Ok(points)
}

fn nanos_of(range: TimeRange) -> (i64, i64) {
    (nanos(range.from), nanos(range.to))
}

/// Where each resolution's data ends for a host, and from where to read:
/// `[from, to]` is split into hour roll-ups, minute roll-ups and raw.
fn split(
    resolution: Resolution,
    (from, to): (i64, i64),
    host: &HostRow,
) -> [Option<(i64, i64)>; 3] {
    let mut cursor = from;
    let mut parts = [None; 3];
    if resolution == Resolution::Hour && cursor < host.hour_done {
        let end = to.min(host.hour_done - 1);
        parts[0] = Some((cursor, end));
        cursor = end + 1;
    }
    if resolution != Resolution::Raw && cursor < host.minute_done && cursor <= to {
        let end = to.min(host.minute_done - 1);
        parts[1] = Some((cursor, end));
        cursor = end + 1;
    }
    if cursor <= to {
        parts[2] = Some((cursor, to));
    }
    parts
}

/// Merges roll-up rows whose period lies in `[from, to]` into `steps`:
/// one process's, or with `None` the host's.
async fn merge_rolled(
    tx: &Transaction<'_>,
    kind: Kind,
    (from, to): (i64, i64),
    process: Option<Identity>,
    host: i64,
    steps: &mut Buckets,
) -> StoreResult<()> {
    let (period, width) = match kind {
        Kind::Minute => (HOUR, MINUTE),
        _ => (DAY, HOUR),
    };
    let first_period = from - from.rem_euclid(period);
    let first_bucket = from - from.rem_euclid(width);
    let table = if kind == Kind::Minute {
        "minute"
    } else {
        "hour"
    };
    let rows = match process {
        Some((pid, start)) => {
            tx.query_typed(
                &format!(
                    "SELECT period, data FROM {table} WHERE host = $1 AND pid = $2
                     AND start_time = $3 AND period BETWEEN $4 AND $5"
                ),
                &[
                    (&host, Type::INT8),
                    (&i64::from(pid), Type::INT8),
                    (&start, Type::INT8),
                    (&first_period, Type::INT8),
                    (&to, Type::INT8),
                ],
            )
            .await
        }
        None => {
            tx.query_typed(
                &format!(
                    "SELECT period, data FROM host_{table} WHERE host = $1
                     AND period BETWEEN $2 AND $3"
                ),
                &[
                    (&host, Type::INT8),
                    (&first_period, Type::INT8),
                    (&to, Type::INT8),
                ],
            )
            .await
        }
    }
    .doing("cannot read roll-ups")?;
    for row in &rows {
        let base: i64 = row.get(0);
        for bucket in rollup::decode(base, width, row.get(1))? {
            if bucket.start >= first_bucket && bucket.start <= to {
                steps.merge(&bucket);
            }
        }
    }
    Ok(())
}

/// One process's charted metrics over `range`.
pub async fn process_series(
    tx: &Transaction<'_>,
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
    if let Some(host) = host(tx, host_id).await? {
        let [hour, minute, raw] = split(plan.resolution, (from.max(view.hour_from), to), &host);
        if let Some(span) = hour {
            merge_rolled(tx, Kind::Hour, span, Some(process), host.key, &mut steps).await?;
        }
        if let Some(span) = minute {
            merge_rolled(tx, Kind::Minute, span, Some(process), host.key, &mut steps).await?;
        }
        if let Some((a, b)) = raw {
            replay::replay_one(
                tx,
                &view.raw(),
                host.key,
                process,
                (a.max(view.raw_from), b),
                |taken, p| {
                    if let Some(p) = p {
                        steps.add(taken, metrics.iter().map(|m| m.chart(m.raw(p))));
                    }
                },
            )
            .await?;
        }
    }
    Ok(finish(range, plan, &names, steps.into_vec()))
}

/// The host's totals over `range`.
pub async fn host_series(
    tx: &Transaction<'_>,
    view: &View,
    host_id: &str,
    range: TimeRange,
    max_points: usize,
) -> StoreResult<Series> {
    let (from, to) = nanos_of(range);
    let plan = plan_series(from, to, max_points, view.raw_from, view.minute_from);
    let mut steps = Buckets::new(plan.step, HOST_METRICS.len());
    if let Some(host) = host(tx, host_id).await? {
        let [hour, minute, raw] = split(plan.resolution, (from.max(view.hour_from), to), &host);
        if let Some(span) = hour {
            merge_rolled(tx, Kind::Hour, span, None, host.key, &mut steps).await?;
        }
        if let Some(span) = minute {
            merge_rolled(tx, Kind::Minute, span, None, host.key, &mut steps).await?;
        }
        if let Some((a, b)) = raw {
            raw_totals(tx, host.key, (a.max(view.raw_from), b), &mut steps).await?;
        }
    }
    Ok(finish(range, plan, &HOST_METRICS, steps.into_vec()))
}

/// Host totals and meters straight from the raw rows, without decoding a
/// payload.
async fn raw_totals(
    tx: &Transaction<'_>,
    host: i64,
    (from, to): (i64, i64),
    steps: &mut Buckets,
) -> StoreResult<()> {
    let rows = tx
        .query_typed(
            "SELECT taken_at, process_count, cpu_percent_total, memory_rss_total_bytes,
                 cpu_machine_percent, memory_used_bytes, memory_available_bytes,
                 swap_used_bytes, swap_total_bytes, load_1m
             FROM raw WHERE host = $1 AND taken_at BETWEEN $2 AND $3",
            &[(&host, Type::INT8), (&from, Type::INT8), (&to, Type::INT8)],
        )
        .await
        .doing("cannot read history")?;
    for row in &rows {
        let bytes = |i| row.get::<_, Option<i64>>(i).map(|b| b as u64);
        let totals = SnapshotTotals {
            process_count: row.get::<_, i64>(1) as u32,
            cpu_percent: row.get(2),
            memory_rss_bytes: row.get::<_, i64>(3) as u64,
        };
        let meters = HostMeters {
            cpu_machine_percent: row.get(4),
            memory_used_bytes: bytes(5),
            memory_available_bytes: bytes(6),
            swap_used_bytes: bytes(7),
            swap_total_bytes: bytes(8),
            load_1m: row.get(9),
        };
        steps.add(row.get(0), host_values(&totals, &meters));
    }
    Ok(())
}

/// Processes started and exited, and facts changed, after `range.from`
/// up to `range.to`.
pub async fn changes(
    tx: &Transaction<'_>,
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
    let Some(host) = host(tx, host_id).await? else {
        return Ok(answer);
    };
    let mut count = 0;
    replay::replay(
        tx,
        &view.raw(),
        host.key,
        (from.saturating_add(1).max(view.raw_from), to),
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
    )
    .await?;
    Ok(answer)
}

/// Summaries of one host-hour (or host-day): per process and for the host.
pub struct Rollup {
    pub processes: Vec<(Identity, Vec<rollup::Bucket>)>,
    pub host: Vec<rollup::Bucket>,
}

/// Computes the minute roll-ups of the host's hour starting at `hour`.
pub async fn roll_up_hour(
    tx: &Transaction<'_>,
    view: &View,
    host: i64,
    hour: i64,
) -> StoreResult<Rollup> {
    let metrics: Vec<Metric> = Metric::charted().collect();
    let mut processes: HashMap<Identity, Buckets> = HashMap::new();
    let mut totals = Buckets::new(MINUTE, HOST_METRICS.len());
    replay::replay(
        tx,
        &view.raw(),
        host,
        (hour, hour + HOUR - 1),
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
    )
    .await?;
    raw_totals(tx, host, (hour, hour + HOUR - 1), &mut totals).await?;
    Ok(Rollup {
        processes: processes
            .into_iter()
            .map(|(id, b)| (id, b.into_vec()))
            .collect(),
        host: totals.into_vec(),
    })
}

/// Computes the hour roll-ups of the host's day starting at `day` from its
/// minute roll-ups.
pub async fn roll_up_day(tx: &Transaction<'_>, host: i64, day: i64) -> StoreResult<Rollup> {
    let metrics = Metric::charted().count();
    let rows = tx
        .query(
            "SELECT pid, start_time, period, data FROM minute
             WHERE host = $1 AND period >= $2 AND period < $3",
            &[&host, &day, &(day + DAY)],
        )
        .await
        .doing("cannot read roll-ups")?;
    let mut processes: HashMap<Identity, Buckets> = HashMap::new();
    for row in &rows {
        let pid = row.get::<_, i64>(0) as u32;
        let hours = processes
            .entry((pid, row.get(1)))
            .or_insert_with(|| Buckets::new(HOUR, metrics));
        for bucket in rollup::decode(row.get(2), MINUTE, row.get(3))? {
            hours.merge(&bucket);
        }
    }
    let rows = tx
        .query(
            "SELECT period, data FROM host_minute
             WHERE host = $1 AND period >= $2 AND period < $3",
            &[&host, &day, &(day + DAY)],
        )
        .await
        .doing("cannot read roll-ups")?;
    let mut totals = Buckets::new(HOUR, HOST_METRICS.len());
    for row in &rows {
        for bucket in rollup::decode(row.get(0), MINUTE, row.get(1))? {
            totals.merge(&bucket);
        }
    }
    Ok(Rollup {
        processes: processes
            .into_iter()
            .map(|(id, b)| (id, b.into_vec()))
            .collect(),
        host: totals.into_vec(),
    })
}
