//! What keeping history costs: simulated agents (`SimHost`, realistic
//! churn) against the real store and the real server, each figure printed
//! beside its target and a baseline measured in the same run.
//!
//! 1. Store ingest per snapshot (`Store::ingest` on a real SQLite file), for
//!    500 and 2,000 processes, on an empty database and on one holding a
//!    simulated day of a 1,000-process host at 2 s; baseline: the same rows
//!    inserted into a bare table (one prepared statement stepped per row, one
//!    transaction, same pragmas).
//! 2. HTTP ingest end to end (`Application`, keep-alive clients, 50 hosts of
//!    500 processes): snapshots/s; baseline: an axum handler that only parses
//!    the JSON into a `Snapshot`.
//! 3. The tree now and at past times of the day (`Store::snapshot`).
//! 4. A process's series and the host's totals over the day
//!    (`Store::process_series`, `Store::host_series`), 1,000 points.
//! 5. Bytes on disk per process sample sent.
//!
//! Run with `cargo bench -p procmon-server --bench history`.
//! `HISTORY_BENCH_DAY=<snapshots>` shortens the day for a quick look (the
//! figures then do not describe a day, and say so).

use std::future::IntoFuture;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use procmon_model::fixtures::SimHost;
use procmon_model::{ProcessSample, ProcessStatus, Snapshot};
use procmon_server::clock::ManualClock;
use procmon_server::config::Settings;
use procmon_server::startup::Application;
use procmon_server::store::{Retention, SqliteStore, Store, TimeRange};
use rusqlite::{params, Connection};
use secrecy::ExposeSecret;

// Its PostgreSQL half is the scale bench's.
#[allow(dead_code)]
#[path = "support/disk.rs"]
mod disk;
#[path = "support/report.rs"]
mod report;

use disk::sqlite_size as disk_size;
use report::{max, median_p95, ms, Report, Target};

/// Snapshots in a simulated day at 2 s.
const DAY: usize = 43_200;
const INTERVAL_S: i64 = 2;
/// Processes of the host whose day is simulated.
const DAY_PROCESSES: usize = 1_000;
const DAY_HOST: &str = "day-host-1000";
/// Snapshots between two maintenance passes while building the day (a
/// simulated minute, as the server's background task runs).
const MAINTAIN_EVERY: usize = 30;
/// Ingest timing: snapshots stored untimed first, then timed.
const WARM_UP: usize = 10;
const TIMED: usize = 300;
/// Reads timed for each read figure.
const READS: usize = 200;
/// HTTP: hosts, processes each, rounds (one snapshot of every host each),
/// concurrent keep-alive clients, and the longest a run may take.
const HTTP_HOSTS: usize = 50;
/// Rounds of the HTTP ingest figure (its median is reported).
const HTTP_RUNS: usize = 3;
const HTTP_PROCESSES: usize = 500;
const HTTP_ROUNDS: usize = 60;
const HTTP_CLIENTS: usize = 8;
const HTTP_DEADLINE: Duration = Duration::from_secs(10);
/// Snapshots of the day stored in the bare table for its bytes/sample and
/// read baselines (the first 20 minutes of the same day).
const BARE_DAY: usize = 600;

// Targets.
const INGEST_500_MS: f64 = 0.5;
const DAY_OLD_RATIO: f64 = 1.2;
const HTTP_PER_S: f64 = 1_000.0;
const TREE_P95_MS: f64 = 10.0;
const SERIES_P95_MS: f64 = 20.0;
const BYTES_PER_SAMPLE: f64 = 4.0;

/// The simulated day starts at a fixed, realistic time.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
}

/// When the server receives a snapshot.
fn received(s: &Snapshot) -> DateTime<Utc> {
    s.collected_at + chrono::Duration::milliseconds(40)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let day = std::env::var("HISTORY_BENCH_DAY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DAY);
    print_header(day);
    let mut report = Report::default();
    let dir = tempfile::tempdir().expect("a temp dir");
    let started = Instant::now();

    // The day.
    println!(
        "\n== building the day: {day} snapshots of a {DAY_PROCESSES}-process host at {INTERVAL_S} s, maintain every {MAINTAIN_EVERY} ==",
    );
    let day_path = dir.path().join("day.db");
    let store = SqliteStore::open(&day_path).await.expect("the store opens");
    let mut bare_day = BareDay::open(&dir.path().join("bare-day.db"));
    let built = build_day(&store, &mut bare_day, day).await;
    println!(
        "built in {:.1} s: ingest {:.3} ms median, {:.3} ms p95 over the day; first hour {:.3} ms median, last hour {:.3} ms median; maintain {:.1} ms median, {:.1} ms max ({} passes, {:.1} s in all)",
        built.elapsed.as_secs_f64(),
        ms(median_p95(&built.ingest).0),
        ms(median_p95(&built.ingest).1),
        ms(median_p95(&built.ingest[..built.ingest.len().min(1_800)]).0),
        ms(median_p95(&built.ingest[built.ingest.len().saturating_sub(1_800)..]).0),
        ms(median_p95(&built.maintain).0),
        ms(max(&built.maintain)),
        built.maintain.len(),
        built.maintain.iter().sum::<Duration>().as_secs_f64(),
    );

    let first_hour = median_p95(&built.ingest[..built.ingest.len().min(1_800)]).0;
    let last_hour = median_p95(&built.ingest[built.ingest.len().saturating_sub(1_800)..]).0;
    report.add(
        format!("1. ingest {DAY_PROCESSES} procs during the day, median"),
        ms(median_p95(&built.ingest).0),
        "ms",
        Target::None,
        "-".into(),
    );
    report.add(
        format!("1. ingest {DAY_PROCESSES} procs, last/first hour median"),
        ms(last_hour) / ms(first_hour),
        "x",
        Target::None,
        "-".into(),
    );

    // 5. Bytes on disk.
    println!("\n== 5. bytes on disk ==");
    let (before, after) = disk_size(&day_path);
    let per_sample = after as f64 / built.samples as f64;
    let bare_bytes = bare_day.bytes_per_sample();
    println!(
        "store: {} samples sent; db+wal {:.1} MiB before checkpoint, {:.1} MiB after: {per_sample:.2} bytes/sample",
        built.samples,
        mib(before),
        mib(after)
    );
    println!(
        "bare table: {bare_bytes:.1} bytes/sample, measured on the day's first {} snapshots ({} samples) and linear in them",
        bare_day.snapshots, bare_day.samples
    );
    report.add(
        "5. bytes on disk per process sample".into(),
        per_sample,
        "B",
        Target::Under(BYTES_PER_SAMPLE),
        format!("bare {bare_bytes:.1} B (first {BARE_DAY} snapshots)"),
    );

    // 3. Trees.
    println!("\n== 3. the tree, after the day ==");
    bare_day.index();
    let mut rng = Rng(0x5EED);
    let day_span = built.last - built.first;
    let mut now_t = Vec::with_capacity(READS);
    for _ in 0..READS {
        let t = Instant::now();
        let s = store
            .snapshot(DAY_HOST, None)
            .await
            .expect("the store reads")
            .expect("the host has a snapshot");
        now_t.push(t.elapsed());
        assert_eq!(s.processes.len(), built.last_count);
    }
    let mut past_t = Vec::with_capacity(READS);
    for _ in 0..READS {
        let at = built.first
            + chrono::Duration::nanoseconds(
                rng.below(day_span.num_nanoseconds().unwrap() as u64) as i64
            );
        let t = Instant::now();
        let s = store
            .snapshot(DAY_HOST, Some(at))
            .await
            .expect("the store reads")
            .expect("a snapshot at that time");
        past_t.push(t.elapsed());
        assert!(s.taken_at <= at && s.processes.len() > DAY_PROCESSES / 2);
    }
    let mut bare_t = Vec::with_capacity(READS);
    for _ in 0..READS {
        let n = rng.below(bare_day.snapshots as u64) as i64;
        let t = Instant::now();
        let ps = bare_day.read_snapshot(n);
        bare_t.push(t.elapsed());
        assert!(ps.len() > DAY_PROCESSES / 2);
    }
    let (b50, b95) = median_p95(&bare_t);
    for (what, times) in [("now", &now_t), ("past", &past_t)] {
        let (p50, p95) = median_p95(times);
        println!(
            "{what:>4}: {:.2} ms p50, {:.2} ms p95, max {:.2} | bare table (one snapshot's rows by index, into ProcessSamples): {:.2} ms p50, {:.2} ms p95",
            ms(p50), ms(p95), ms(max(times)), ms(b50), ms(b95)
        );
        report.add(
            format!("3. tree {what}, {DAY_PROCESSES} procs, p50"),
            ms(p50),
            "ms",
            Target::None,
            format!("bare {:.2} ms", ms(b50)),
        );
        report.add(
            format!("3. tree {what}, {DAY_PROCESSES} procs, p95"),
            ms(p95),
            "ms",
            Target::Under(TREE_P95_MS),
            format!("bare {:.2} ms", ms(b95)),
        );
    }

    // 4. Series.
    println!("\n== 4. series over the day, 1,000 points ==");
    let range = TimeRange {
        from: built.first,
        to: built.last,
    };
    let mut proc_t = Vec::with_capacity(READS);
    let mut points = 0;
    for _ in 0..READS {
        let t = Instant::now();
        let s = store
            .process_series(DAY_HOST, 1, built.pid1_start, range, 1_000)
            .await
            .expect("the store reads the series");
        proc_t.push(t.elapsed());
        points = s.points.len();
    }
    let mut host_t = Vec::with_capacity(READS);
    let mut host_points = 0;
    for _ in 0..READS {
        let t = Instant::now();
        let s = store
            .host_series(DAY_HOST, range, 1_000)
            .await
            .expect("the store reads the series");
        host_t.push(t.elapsed());
        host_points = s.points.len();
    }
    let (from, to) = (nanos(range.from), nanos(range.to));
    let bare_proc: Vec<Duration> = (0..READS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(bare_day.series("pid1", from, to, 1_000));
            t.elapsed()
        })
        .collect();
    let bare_host: Vec<Duration> = (0..READS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(bare_day.series("totals", from, to, 1_000));
            t.elapsed()
        })
        .collect();
    for (what, times, base, n) in [
        ("process (pid 1)", &proc_t, &bare_proc, points),
        ("host totals", &host_t, &bare_host, host_points),
    ] {
        let (p50, p95) = median_p95(times);
        let (b50, b95) = median_p95(base);
        println!(
            "{what}: {n} points, {:.2} ms p50, {:.2} ms p95, max {:.2} | bare table (the day's {} raw rows by primary key, bucketed): {:.2} ms p50, {:.2} ms p95",
            ms(p50), ms(p95), ms(max(times)), built.snapshots, ms(b50), ms(b95)
        );
        report.add(
            format!("4. series {what}, day, p95"),
            ms(p95),
            "ms",
            Target::Under(SERIES_P95_MS),
            format!("bare {:.2} ms", ms(b95)),
        );
    }

    // 1. Ingest: the same snapshots into a fresh database, into the one
    // holding the day and into the bare table, turn by turn, so that a busy
    // moment of the machine (shared with others) falls on all alike.
    println!("\n== 1. store ingest: empty database vs. the one holding the day ==");
    let after_day = built.last + chrono::Duration::seconds(INTERVAL_S);
    let mut bare = Bare::open(&dir.path().join("bare.db"));
    for (count, seed) in [(500, 11), (2_000, 12)] {
        let empty = SqliteStore::open(&dir.path().join(format!("empty-{count}.db")))
            .await
            .expect("the store opens");
        let host = format!("new-host-{count}");
        let [e, d, b] = ingest_run(&empty, &store, &mut bare, &host, count, seed, after_day).await;
        empty.close().await;
        let (e50, e95) = median_p95(&e);
        let (d50, d95) = median_p95(&d);
        let (b50, b95) = median_p95(&b);
        let ratio = ms(d50) / ms(e50);
        println!(
            "{count:>5} processes: empty db {:.3} ms median, {:.3} ms p95, max {:.3} | day-old db {:.3} ms median, {:.3} ms p95, max {:.3} (x{ratio:.2} median, x{:.2} p95) | bare table {:.3} ms median, {:.3} ms p95",
            ms(e50), ms(e95), ms(max(&e)), ms(d50), ms(d95), ms(max(&d)), ms(d95) / ms(e95), ms(b50), ms(b95)
        );
        let target = if count == 500 {
            Target::AtMost(INGEST_500_MS)
        } else {
            Target::None
        };
        for (what, v50, v95) in [("empty db", e50, e95), ("day-old db", d50, d95)] {
            report.add(
                format!("1. ingest {count} procs, {what}, median"),
                ms(v50),
                "ms",
                target,
                format!("bare {:.3} ms", ms(b50)),
            );
            report.add(
                format!("1. ingest {count} procs, {what}, p95"),
                ms(v95),
                "ms",
                target,
                format!("bare {:.3} ms", ms(b95)),
            );
        }
        report.add(
            format!("1. ingest {count} procs, day-old/empty median"),
            ratio,
            "x",
            Target::AtMost(DAY_OLD_RATIO),
            "-".into(),
        );
    }
    store.close().await;

    // 2. HTTP.
    println!(
        "\n== 2. HTTP ingest: {HTTP_HOSTS} hosts x {HTTP_PROCESSES} processes, {HTTP_CLIENTS} keep-alive clients =="
    );
    let bodies = http_bodies();
    // The day's hundreds of MB were just written: flushed first, so the
    // server's commits below do not queue behind that writeback.
    let _ = std::process::Command::new("sync").status();
    println!(
        "{} pre-serialized bodies, {:.0} KiB each on average",
        bodies.len(),
        bodies.iter().map(|b| b.len()).sum::<usize>() as f64 / bodies.len() as f64 / 1024.0
    );
    // Three rounds of each, in turn, each server on a fresh database: on a
    // shared 2-core machine one round moves by a fifth from run to run.
    let mut bases = Vec::new();
    let mut reals = Vec::new();
    for round in 0..HTTP_RUNS {
        bases.push(http_baseline(&bodies).await);
        reals.push(http_server(&bodies, &dir.path().join(format!("http-{round}"))).await);
    }
    for (what, runs) in [("parse-only handler", &bases), ("real server", &reals)] {
        for r in runs {
            println!(
                "{what}: {} snapshots in {:.2} s: {:.0}/s; request {:.2} ms p50, {:.2} ms p95",
                r.sent,
                r.elapsed.as_secs_f64(),
                r.rate(),
                ms(median_p95(&r.latency).0),
                ms(median_p95(&r.latency).1)
            );
        }
    }
    let median_rate = |runs: &[HttpRun]| {
        let mut rates: Vec<f64> = runs.iter().map(HttpRun::rate).collect();
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    report.add(
        format!("2. HTTP ingest, {HTTP_PROCESSES}-proc snapshots, median of {HTTP_RUNS}"),
        median_rate(&reals),
        "/s",
        Target::AtLeast(HTTP_PER_S),
        format!("parse-only {:.0}/s", median_rate(&bases)),
    );

    println!(
        "\n== summary (whole bench {:.0} s{}) ==",
        started.elapsed().as_secs_f64(),
        if day == DAY {
            String::new()
        } else {
            format!("; SHORTENED DAY: {day} snapshots, not {DAY}")
        }
    );
    report.print();
}

fn print_header(day: usize) {
    println!("procmon history bench: simulated agents (SimHost churn: 5% of processes move per cycle, ~1% start/exit, an exec now and then)");
    println!("Figures, each beside its target and a baseline measured in this run:");
    println!("  1. store ingest: time of one Store::ingest (real SQLite file, through the trait) per snapshot, on an empty database");
    println!("     and on one holding a day of a {DAY_PROCESSES}-process host; baseline: the same rows into a bare table (one prepared");
    println!("     INSERT stepped per row, one transaction, WAL + synchronous NORMAL). Target <= {INGEST_500_MS} ms per 500 processes, day-old within 20%.");
    println!("  2. HTTP ingest: snapshots/s through the real server (POST /api/processes/, {HTTP_CLIENTS} keep-alive clients, clients on the same");
    println!("     2 cores); baseline: an axum handler that only parses the JSON into a Snapshot. Target >= {HTTP_PER_S:.0}/s.");
    println!("  3. the tree after the day: Store::snapshot now and at random past times; baseline: one snapshot's rows read from a");
    println!("     bare indexed table into ProcessSamples. Target p95 < {TREE_P95_MS} ms.");
    println!("  4. series over the day at 1,000 points: Store::process_series (pid 1) and Store::host_series; baseline: the day's");
    println!("     raw rows of that one process (or of the totals) in a bare table keyed by time, bucketed. Target p95 < {SERIES_P95_MS} ms.");
    println!("  5. bytes on disk (db + wal after a TRUNCATE checkpoint) per process sample sent; baseline: the bare table. Target < {BYTES_PER_SAMPLE} B.");
    println!("The day: {day} snapshots at {INTERVAL_S} s from {}, received 40 ms after collection; Store::maintain every simulated minute.", start());
}

// ---------------------------------------------------------------- ingest

/// Stores `WARM_UP + TIMED` snapshots of a simulated host in two stores
/// and the bare table, timing each write after the warm-up; the two stores
/// take turns going first.
async fn ingest_run(
    empty: &SqliteStore,
    old: &SqliteStore,
    bare: &mut Bare,
    host: &str,
    count: usize,
    seed: u64,
    at: DateTime<Utc>,
) -> [Vec<Duration>; 3] {
    let mut sim = SimHost::new(host, count, seed, at);
    let snapshots: Vec<Snapshot> = (0..WARM_UP + TIMED).map(|_| sim.next()).collect();
    let mut times: [Vec<Duration>; 3] = Default::default();
    for (i, s) in snapshots.iter().enumerate() {
        let mut took = [Duration::ZERO; 3];
        for which in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
            let store = if which == 0 { empty } else { old };
            // The server hands over the snapshot it parsed; the copy here
            // stands for that parse and is not timed.
            let owned = std::sync::Arc::new(s.clone());
            let t = Instant::now();
            store
                .ingest(owned, received(s))
                .await
                .expect("the store ingests");
            took[which] = t.elapsed();
        }
        let t = Instant::now();
        bare.insert(s);
        took[2] = t.elapsed();
        if i >= WARM_UP {
            for (all, one) in times.iter_mut().zip(took) {
                all.push(one);
            }
        }
    }
    times
}

struct Day {
    elapsed: Duration,
    ingest: Vec<Duration>,
    maintain: Vec<Duration>,
    snapshots: usize,
    samples: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    last_count: usize,
    pid1_start: DateTime<Utc>,
}

/// Stores the day, calling `maintain` as the server's background task
/// would; the first `BARE_DAY` snapshots also go into the bare table, and
/// pid 1's samples and the totals into the bare series tables.
async fn build_day(store: &SqliteStore, bare: &mut BareDay, day: usize) -> Day {
    let mut sim = SimHost::new(DAY_HOST, DAY_PROCESSES, 1, start());
    let pid1 = sim.processes[0].clone();
    assert_eq!(pid1.pid, 1);
    let started = Instant::now();
    let mut ingest = Vec::with_capacity(day);
    let mut maintain = Vec::with_capacity(day / MAINTAIN_EVERY + 1);
    let mut samples = 0u64;
    let mut first = None;
    let mut last = start();
    let mut last_count = 0;
    let mut store_busy = Duration::ZERO;
    for i in 0..day {
        let s = sim.next();
        samples += s.processes.len() as u64;
        first.get_or_insert(s.collected_at);
        last = s.collected_at;
        last_count = s.processes.len();
        let owned = std::sync::Arc::new(s.clone());
        let t = Instant::now();
        store
            .ingest(owned, received(&s))
            .await
            .expect("the store ingests");
        let took = t.elapsed();
        ingest.push(took);
        store_busy += took;
        bare.add_series(&s);
        if i < BARE_DAY {
            bare.insert(&s);
        }
        if (i + 1) % MAINTAIN_EVERY == 0 {
            let t = Instant::now();
            store
                .maintain(received(&s), Retention::default())
                .await
                .expect("maintenance runs");
            let took = t.elapsed();
            maintain.push(took);
            store_busy += took;
        }
        if (i + 1) % (day / 6).max(1) == 0 || i + 1 == day {
            let done = i + 1;
            let wall = started.elapsed().as_secs_f64();
            println!(
                "  {done:>6}/{day} snapshots ({:>4.1} simulated h): {wall:>5.1} s wall, {:.1} s in the store; ingest median so far {:.3} ms; whole day projected {:.0} s",
                done as f64 * INTERVAL_S as f64 / 3600.0,
                store_busy.as_secs_f64(),
                ms(median_p95(&ingest).0),
                wall / done as f64 * day as f64
            );
        }
    }
    bare.finish();
    Day {
        elapsed: started.elapsed(),
        ingest,
        maintain,
        snapshots: day,
        samples,
        first: first.expect("at least one snapshot"),
        last,
        last_count,
        pid1_start: pid1.start_time,
    }
}

// ---------------------------------------------------------------- bare SQLite

/// A file opened with the store's pragmas (WAL, synchronous NORMAL).
fn bare_connection(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("the bare database opens");
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("WAL");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous NORMAL");
    conn
}

const BARE_TABLE: &str = "CREATE TABLE baseline (snapshot INTEGER, host_id TEXT, pid INTEGER,
    start_time INTEGER, name TEXT, exe TEXT, cmd TEXT, user TEXT, parent_pid INTEGER,
    status TEXT, cpu_percent REAL, memory_rss_bytes INTEGER, memory_virtual_bytes INTEGER,
    memory_private_bytes INTEGER, threads INTEGER, handles INTEGER, disk_read_bytes INTEGER,
    disk_written_bytes INTEGER)";

/// Every process of a snapshot as one row of a bare table: one statement,
/// prepared once, bound and stepped per row, in one transaction.
fn insert_rows(conn: &Connection, seq: i64, s: &Snapshot) {
    conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
    {
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO baseline VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )
            .expect("the bare insert prepares");
        for p in &s.processes {
            let cmd = serde_json::to_string(&p.cmd).expect("a list of strings serialises");
            stmt.execute(params![
                seq,
                s.host.id,
                p.pid,
                nanos(p.start_time),
                p.name,
                p.exe,
                cmd,
                p.user,
                p.parent_pid,
                p.status.as_str(),
                p.cpu_percent,
                int(p.memory_rss_bytes),
                int(p.memory_virtual_bytes),
                p.memory_private_bytes.map(int),
                p.threads,
                p.handles,
                int(p.disk_read_bytes),
                int(p.disk_written_bytes),
            ])
            .expect("a bare row is inserted");
        }
    }
    conn.execute_batch("COMMIT").expect("commit");
}

/// The bare table the ingest baseline writes.
struct Bare {
    conn: Connection,
    seq: i64,
}

impl Bare {
    fn open(path: &Path) -> Self {
        let conn = bare_connection(path);
        conn.execute_batch(BARE_TABLE).expect("the bare table");
        Self { conn, seq: 0 }
    }

    fn insert(&mut self, s: &Snapshot) {
        self.seq += 1;
        insert_rows(&self.conn, self.seq, s);
    }
}

/// The bare tables of the day: the first snapshots in full, in a file of
/// their own (bytes and tree baselines), and every sample of pid 1 and
/// every snapshot's totals in another (series baselines).
struct BareDay {
    path: std::path::PathBuf,
    conn: Connection,
    series: Connection,
    snapshots: usize,
    samples: u64,
    pending: usize,
}

const SERIES_COLUMNS: &str = "cpu REAL, rss INTEGER, vms INTEGER, private INTEGER,
    threads INTEGER, handles INTEGER, read INTEGER, written INTEGER";

impl BareDay {
    fn open(path: &Path) -> Self {
        let conn = bare_connection(path);
        conn.execute_batch(BARE_TABLE).expect("the bare table");
        let series = bare_connection(&path.with_extension("series.db"));
        series
            .execute_batch(&format!(
                "CREATE TABLE pid1 (taken_at INTEGER PRIMARY KEY, {SERIES_COLUMNS});
                 CREATE TABLE totals (taken_at INTEGER PRIMARY KEY, count INTEGER, cpu REAL,
                     rss INTEGER);
                 BEGIN;"
            ))
            .expect("the bare series tables");
        Self {
            path: path.to_owned(),
            conn,
            series,
            snapshots: 0,
            samples: 0,
            pending: 0,
        }
    }

    /// The series rows, committed a few hundred snapshots at a time.
    fn add_series(&mut self, s: &Snapshot) {
        let taken = nanos(s.collected_at);
        if let Some(p) = s.processes.iter().find(|p| p.pid == 1) {
            self.series
                .prepare_cached("INSERT INTO pid1 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
                .and_then(|mut st| {
                    st.execute(params![
                        taken,
                        p.cpu_percent,
                        int(p.memory_rss_bytes),
                        int(p.memory_virtual_bytes),
                        p.memory_private_bytes.map(int),
                        p.threads,
                        p.handles,
                        int(p.disk_read_bytes),
                        int(p.disk_written_bytes),
                    ])
                })
                .expect("a pid 1 row");
        }
        let (cpu, rss) = s.processes.iter().fold((0.0, 0u64), |(c, r), p| {
            (
                c + f64::from(p.cpu_percent),
                r.saturating_add(p.memory_rss_bytes),
            )
        });
        self.series
            .prepare_cached("INSERT INTO totals VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut st| st.execute(params![taken, s.processes.len(), cpu, int(rss)]))
            .expect("a totals row");
        self.pending += 1;
        if self.pending == 500 {
            self.series.execute_batch("COMMIT; BEGIN").expect("commit");
            self.pending = 0;
        }
    }

    /// A whole snapshot into the bare table.
    fn insert(&mut self, s: &Snapshot) {
        self.snapshots += 1;
        self.samples += s.processes.len() as u64;
        insert_rows(&self.conn, self.snapshots as i64, s);
    }

    fn finish(&mut self) {
        self.series.execute_batch("COMMIT").expect("commit");
    }

    /// Bytes of the full-snapshot file per sample.
    fn bytes_per_sample(&self) -> f64 {
        disk_size(&self.path).1 as f64 / self.samples as f64
    }

    /// An index to read one snapshot's rows by (made after the bytes are
    /// counted).
    fn index(&self) {
        self.conn
            .execute_batch("CREATE INDEX baseline_snapshot ON baseline (snapshot)")
            .expect("the index");
    }

    /// One snapshot's processes, as a store read returns them.
    fn read_snapshot(&self, n: i64) -> Vec<ProcessSample> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT pid, parent_pid, name, exe, cmd, user, start_time, status, cpu_percent,
                     memory_rss_bytes, memory_virtual_bytes, memory_private_bytes, threads,
                     handles, disk_read_bytes, disk_written_bytes
                 FROM baseline WHERE snapshot = ?1",
            )
            .expect("the read prepares");
        let rows = stmt
            .query_map([n + 1], |r| {
                let cmd: String = r.get(4)?;
                let status: String = r.get(7)?;
                Ok(ProcessSample {
                    pid: r.get(0)?,
                    parent_pid: r.get(1)?,
                    name: r.get(2)?,
                    exe: r.get(3)?,
                    cmd: serde_json::from_str(&cmd).unwrap_or_default(),
                    user: r.get(5)?,
                    start_time: DateTime::from_timestamp_nanos(r.get(6)?),
                    status: ProcessStatus::from_name(&status),
                    cpu_percent: r.get::<_, f64>(8)? as f32,
                    memory_rss_bytes: r.get::<_, i64>(9)? as u64,
                    memory_virtual_bytes: r.get::<_, i64>(10)? as u64,
                    memory_private_bytes: r.get::<_, Option<i64>>(11)?.map(|v| v as u64),
                    threads: r.get(12)?,
                    handles: r.get(13)?,
                    disk_read_bytes: r.get::<_, i64>(14)? as u64,
                    disk_written_bytes: r.get::<_, i64>(15)? as u64,
                })
            })
            .expect("the read runs");
        rows.collect::<Result<_, _>>().expect("rows decode")
    }

    /// Average, minimum and maximum of every column of `table` over
    /// `from..=to`, in `points` steps.
    fn series(&self, table: &str, from: i64, to: i64, points: i64) -> Vec<(i64, Vec<[f64; 3]>)> {
        let step = ((to - from) / points).max(1);
        let mut stmt = self
            .series
            .prepare_cached(&format!(
                "SELECT * FROM {table} WHERE taken_at BETWEEN ?1 AND ?2 ORDER BY taken_at"
            ))
            .expect("the series read prepares");
        let width = stmt.column_count() - 1;
        let mut out: Vec<(i64, Vec<[f64; 3]>, u32)> = Vec::new();
        let mut rows = stmt.query([from, to]).expect("the series read runs");
        while let Some(row) = rows.next().expect("a row") {
            let taken: i64 = row.get(0).expect("a time");
            let bucket = from + (taken - from) / step * step;
            if out.last().is_none_or(|b| b.0 != bucket) {
                out.push((bucket, vec![[0.0, f64::MAX, f64::MIN]; width], 0));
            }
            let b = out.last_mut().expect("a bucket");
            b.2 += 1;
            for (i, stat) in b.1.iter_mut().enumerate() {
                let v: f64 = row
                    .get::<_, Option<f64>>(i + 1)
                    .ok()
                    .flatten()
                    .unwrap_or(0.0);
                stat[0] += v;
                stat[1] = stat[1].min(v);
                stat[2] = stat[2].max(v);
            }
        }
        out.into_iter()
            .map(|(at, mut stats, n)| {
                for s in &mut stats {
                    s[0] /= f64::from(n);
                }
                (at, stats)
            })
            .collect()
    }
}

// ---------------------------------------------------------------- HTTP

/// Each host's snapshots, round by round, as JSON.
fn http_bodies() -> Vec<Bytes> {
    let mut hosts: Vec<SimHost> = (0..HTTP_HOSTS)
        .map(|h| {
            SimHost::new(
                &format!("http-host-{h:02}"),
                HTTP_PROCESSES,
                100 + h as u64,
                start(),
            )
        })
        .collect();
    let mut bodies = Vec::with_capacity(HTTP_HOSTS * HTTP_ROUNDS);
    for _ in 0..HTTP_ROUNDS {
        for sim in &mut hosts {
            bodies.push(Bytes::from(serde_json::to_vec(&sim.next()).expect("JSON")));
        }
    }
    bodies
}

struct HttpRun {
    sent: usize,
    elapsed: Duration,
    latency: Vec<Duration>,
}

impl HttpRun {
    fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }
}

/// Posts the bodies in order from `HTTP_CLIENTS` keep-alive clients, until
/// all are sent or the deadline passes.
/// Body `i` is sent with `keys[i % keys.len()]`: bodies go round the hosts
/// in order, and each host has its own key.
async fn post_all(url: String, keys: Vec<String>, bodies: &[Bytes]) -> HttpRun {
    let bodies: Arc<Vec<Bytes>> = Arc::new(bodies.to_vec());
    let keys = Arc::new(keys);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..HTTP_CLIENTS)
        .map(|_| {
            let (bodies, next, url, keys) =
                (bodies.clone(), next.clone(), url.clone(), keys.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut latency = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() || started.elapsed() > HTTP_DEADLINE {
                        return latency;
                    }
                    let t = Instant::now();
                    let response = client
                        .post(&url)
                        .bearer_auth(&keys[i % keys.len()])
                        .header("content-type", "application/json")
                        .body(bodies[i].clone())
                        .send()
                        .await
                        .expect("the request is sent");
                    let status = response.status();
                    let _ = response.bytes().await;
                    assert_eq!(status, StatusCode::CREATED, "snapshot {i} refused");
                    latency.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latency = Vec::new();
    for w in workers {
        latency.extend(w.await.expect("a client task"));
    }
    HttpRun {
        sent: latency.len(),
        elapsed: started.elapsed(),
        latency,
    }
}

/// The same requests against a handler that parses the body and answers.
async fn http_baseline(bodies: &[Bytes]) -> HttpRun {
    async fn parse(Json(s): Json<Snapshot>) -> StatusCode {
        std::hint::black_box(&s);
        StatusCode::CREATED
    }
    let app = axum::Router::new().route("/api/processes/", axum::routing::post(parse));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}/api/processes/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let run = post_all(url, vec!["unused".into()], bodies).await;
    let _ = stop.send(());
    let _ = server.await;
    run
}

/// The real server: fresh data directory, embedded agent off, port 0, its
/// clock just after the last snapshot.
async fn http_server(bodies: &[Bytes], data_dir: &Path) -> HttpRun {
    let mut settings = Settings::with_data_dir(data_dir);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    // The bench measures how fast the server can take snapshots, not its
    // per-host rate limit (a burst of 20, then 10/s by default), which
    // 60 snapshots per host in a few seconds would pass.
    settings.ingest_burst = 100_000;
    settings.ingest_per_second = 100_000;
    let mut application = Application::build(settings)
        .await
        .expect("the server builds");
    let end = start() + chrono::Duration::seconds(INTERVAL_S * (HTTP_ROUNDS as i64 + 1));
    application.set_clock(Arc::new(ManualClock::new(end)));
    // Each host its own key, as agents have.
    let mut keys = Vec::with_capacity(HTTP_HOSTS);
    for h in 0..HTTP_HOSTS {
        let key = application
            .state()
            .agent_keys
            .create(Some(&format!("http-host-{h:02}")), "bench", end)
            .await
            .expect("a key");
        keys.push(key.key.expose_secret().to_owned());
    }
    let url = format!("{}api/processes/", application.local_url());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    let run = post_all(url, keys, bodies).await;
    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
    run
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().expect("a storable time")
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// xorshift64*: the past times read, the same every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
