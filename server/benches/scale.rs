//! What scaling out costs: a simulated fleet against real release server
//! processes, two on one PostgreSQL database against one on SQLite, each
//! figure printed beside its baseline measured in the same run and its
//! target.
//!
//! 1. Sustained change batches per second: 1,000 hosts of 300 processes
//!    (fixtures' churn) at 5 s, then the rate stepped up (x2, x5, x10) while
//!    it holds: p99 send-to-answer under 100 ms, no backlog, no failure.
//!    On PostgreSQL twice: each host staying with one server, then each
//!    alternating at every batch (every base written by the other server).
//!    And the cross-server live event lag, from a viewer on the second.
//! 2. Bytes on disk per process sample after a simulated day of one
//!    1,000-process host at 5 s, written through the store directly.
//! 3. The tree now and at a past time, a process's series and a fleet
//!    search, p95, on PostgreSQL against SQLite on the same data.
//!
//! Run with `scripts/bench-scale` (a throwaway PostgreSQL, then this in
//! release). Settings, for a quicker look (figures then say so):
//! `SCALE_BENCH_HOSTS` (1000), `SCALE_BENCH_PROCESSES` (300),
//! `SCALE_BENCH_SECONDS` per step (60), `SCALE_BENCH_STEPS` (1,2,5,10),
//! `SCALE_BENCH_DAY` snapshots (17280).

use std::time::Duration;

use procmon_server::store::{PostgresStore, SqliteStore, Store};

#[path = "support/day.rs"]
mod day;
#[path = "support/disk.rs"]
mod disk;
#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/queries.rs"]
mod queries;
#[path = "support/report.rs"]
mod report;
#[path = "support/servers.rs"]
mod servers;
#[path = "support/viewers.rs"]
mod viewers;

use fleet::Spread;
use report::{median_p95, ms, percentile, Report, Target};
use servers::{cpu_of, cpu_of_postgres, load_average, Server};

/// The agents' interval at x1.
const INTERVAL: Duration = Duration::from_secs(5);
/// Processes of the host whose day is simulated.
const DAY_PROCESSES: usize = 1_000;
/// Reads of each kind timed per store, and searches.
const READS: usize = 200;
const SEARCHES: usize = 20;

// Targets.
const BATCHES_PER_S: f64 = 2_000.0;
const P99_MS: f64 = 100.0;
const BYTES_PER_SAMPLE: f64 = 8.0;
const READ_RATIO: f64 = 2.0;
const LIVE_LAG_P99_MS: f64 = 1_000.0;
/// Hosts whose live streams a viewer on the second server watches.
const WATCHED: usize = 20;

/// The run's sizes, from the environment.
struct Sizes {
    hosts: usize,
    processes: usize,
    step: Duration,
    steps: Vec<u32>,
    day: usize,
}

impl Sizes {
    fn from_env() -> Result<Sizes, String> {
        let number = |name: &str, default: usize| match std::env::var(name) {
            Err(_) => Ok(default),
            Ok(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!(
                    "{name} is {v:?}: it must be a whole number above 0"
                )),
        };
        let steps = match std::env::var("SCALE_BENCH_STEPS") {
            Err(_) => vec![1, 2, 5, 10],
            Ok(v) => v
                .split(',')
                .map(|f| f.trim().parse::<u32>().ok().filter(|&f| f > 0))
                .collect::<Option<Vec<_>>>()
                .ok_or(format!(
                    "SCALE_BENCH_STEPS is {v:?}: it must be rate factors above 0, e.g. 1,2,5,10"
                ))?,
        };
        Ok(Sizes {
            hosts: number("SCALE_BENCH_HOSTS", 1_000)?,
            processes: number("SCALE_BENCH_PROCESSES", 300)?,
            step: Duration::from_secs(number("SCALE_BENCH_SECONDS", 60)? as u64),
            steps,
            day: number("SCALE_BENCH_DAY", 17_280)?,
        })
    }

    fn is_full(&self) -> bool {
        self.hosts == 1_000
            && self.processes == 300
            && self.step.as_secs() >= 60
            && self.day == 17_280
    }
}

fn main() {
    let sizes = Sizes::from_env().unwrap_or_else(|e| fail(&e));
    let Ok(postgres) = std::env::var("PROCMON_TEST_POSTGRES_URL") else {
        fail("PROCMON_TEST_POSTGRES_URL is not set: run scripts/bench-scale, which starts a throwaway PostgreSQL");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(sizes, postgres));
}

fn fail(message: &str) -> ! {
    eprintln!("scale bench: {message}");
    std::process::exit(2);
}

async fn run(sizes: Sizes, postgres: String) {
    let admin = connect(&postgres).await;
    let settings = admin
        .query_one(
            "SELECT current_setting('server_version'), current_setting('fsync'),
                    current_setting('synchronous_commit'), current_setting('shared_buffers')",
            &[],
        )
        .await
        .expect("PostgreSQL's settings");
    let (version, fsync, commit, buffers): (String, String, String, String) = (
        settings.get(0),
        settings.get(1),
        settings.get(2),
        settings.get(3),
    );
    println!("procmon scale bench: release procmon-server processes, a simulated fleet in this process (fixtures' SimHost churn: 5% of processes move per cycle, ~1% start or exit)");
    println!(
        "  fleet {} hosts x {} processes, agent interval {} s at x1, {} s per step, steps x{}; day {} snapshots of a {DAY_PROCESSES}-process host{}",
        sizes.hosts,
        sizes.processes,
        INTERVAL.as_secs(),
        sizes.step.as_secs(),
        sizes.steps.iter().map(u32::to_string).collect::<Vec<_>>().join(", x"),
        sizes.day,
        if sizes.is_full() { "" } else { " (NOT the full sizes: a quick look)" }
    );
    println!("  PostgreSQL {version}: fsync {fsync}, synchronous_commit {commit}, shared_buffers {buffers}; SQLite: WAL, synchronous NORMAL");
    println!(
        "  machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let mut report = Report::default();

    // 1. The fleet: on PostgreSQL each host staying with one server, then
    // alternating (each on a database of its own), then on SQLite.
    let mut databases = Vec::new();
    let mut on_postgres = Vec::new();
    for (spread, what) in [
        (
            Spread::Stay,
            "each host staying with one server, as behind a balancer that keeps connections",
        ),
        (
            Spread::Alternate,
            "each host alternating at every batch, so every base was written by the other server",
        ),
    ] {
        let db = create_database(
            &admin,
            if spread == Spread::Stay {
                "fleet"
            } else {
                "fleet_alt"
            },
        )
        .await;
        let url = database_url(&postgres, &db);
        databases.push(db);
        println!("\n== 1. the fleet through two servers on PostgreSQL, {what} ==");
        let servers: Vec<Server> = (0..2)
            .map(|_| {
                Server::start(Some(url.as_str()), sizes.hosts + 64).expect("a server on PostgreSQL")
            })
            .collect();
        viewers::add_account(&url).expect("the viewer's account");
        on_postgres.push(ramp(&sizes, &servers, true, spread).await);
    }
    println!("\n== 1. the fleet through one server on SQLite ==");
    let on_sqlite = {
        let servers = vec![Server::start(None, sizes.hosts + 64).expect("a server on SQLite")];
        ramp(&sizes, &servers, false, Spread::Stay).await
    };
    let (alternating, on_postgres) = (on_postgres.pop().unwrap(), on_postgres.pop().unwrap());
    let (pg, lite) = (on_postgres.best(), on_sqlite.best());
    report.add(
        format!(
            "1. batches/s held, 2 servers on PostgreSQL, staying, {}-proc hosts",
            sizes.processes
        ),
        pg.rate,
        "/s",
        Target::AtLeast(BATCHES_PER_S),
        format!("1 server on SQLite {:.0}/s", lite.rate),
    );
    report.add(
        "1. p99 ingest at that rate, PostgreSQL".into(),
        pg.p99_ms,
        "ms",
        Target::Under(P99_MS),
        format!("SQLite {:.1} ms at {:.0}/s", lite.p99_ms, lite.rate),
    );
    report.add(
        format!(
            "1. batches/s held, 2 servers on PostgreSQL, alternating, {}-proc hosts",
            sizes.processes
        ),
        alternating.best().rate,
        "/s",
        Target::AtLeast(BATCHES_PER_S),
        format!("each host staying {:.0}/s", pg.rate),
    );
    report.add(
        format!(
            "1. batches/s held, 1 server on SQLite, {}-proc hosts",
            sizes.processes
        ),
        lite.rate,
        "/s",
        Target::None,
        format!("2 servers on PostgreSQL {:.0}/s", pg.rate),
    );

    report.add(
        "1. cross-server live event lag p99 (send to A, event on B)".into(),
        ms(percentile(&on_postgres.live_lag, 99)),
        "ms",
        Target::Under(LIVE_LAG_P99_MS),
        format!(
            "median {:.1} ms, {} events",
            ms(percentile(&on_postgres.live_lag, 50)),
            on_postgres.live_lag.len()
        ),
    );

    // 2. The day, and 3. the reads on it.
    println!(
        "\n== 2. a simulated day: {} snapshots of a {DAY_PROCESSES}-process host at {} s, through the store directly (load average {}) ==",
        sizes.day,
        INTERVAL.as_secs(),
        load_average()
    );
    let day_db = create_database(&admin, "day").await;
    let day_url = database_url(&postgres, &day_db);
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite_path = dir.path().join("day.db");
    let pg_store = PostgresStore::open(&day_url)
        .await
        .expect("the PostgreSQL store opens");
    let sqlite_store = SqliteStore::open(&sqlite_path)
        .await
        .expect("the SQLite store opens");
    let stores: [&dyn Store; 2] = [&pg_store, &sqlite_store];
    let day = day::write_day(&stores, DAY_PROCESSES, sizes.day, INTERVAL).await;
    for (name, times) in ["PostgreSQL", "SQLite"].iter().zip(&day.ingest) {
        let (p50, p95) = median_p95(times);
        println!(
            "  {name}: ingest {:.2} ms median, {:.2} ms p95 per snapshot",
            ms(p50),
            ms(p95)
        );
    }
    let pg_bytes = disk::postgres_size(&connect(&day_url).await)
        .await
        .expect("the tables' sizes") as f64
        / day.samples as f64;
    let (_, sqlite_bytes) = disk::sqlite_size(&sqlite_path);
    let sqlite_bytes = sqlite_bytes as f64 / day.samples as f64;
    println!(
        "  {} samples sent: PostgreSQL {pg_bytes:.2} B/sample (pg_total_relation_size of every table), SQLite {sqlite_bytes:.2} B/sample (db + wal after a checkpoint)",
        day.samples
    );
    report.add(
        "2. bytes on disk per process sample, PostgreSQL".into(),
        pg_bytes,
        "B",
        Target::Under(BYTES_PER_SAMPLE),
        format!("SQLite {sqlite_bytes:.2} B"),
    );

    println!(
        "\n== 3. reads on the same data: the day, and {} hosts' newest snapshots of {} processes to search (load average {}) ==",
        sizes.hosts,
        sizes.processes,
        load_average()
    );
    day::write_fleet(&stores, sizes.hosts, sizes.processes, day.last).await;
    for read in queries::time_reads(&stores, &day, READS, SEARCHES).await {
        let p95: Vec<f64> = read.times.iter().map(|t| ms(percentile(t, 95))).collect();
        let p50: Vec<f64> = read.times.iter().map(|t| ms(median_p95(t).0)).collect();
        println!(
            "  {}: PostgreSQL {:.2} ms p50, {:.2} ms p95 | SQLite {:.2} ms p50, {:.2} ms p95 ({} reads each)",
            read.what, p50[0], p95[0], p50[1], p95[1], read.times[0].len()
        );
        report.add(
            format!("3. {}, p95 PostgreSQL / SQLite", read.what),
            p95[0] / p95[1],
            "x",
            Target::AtMost(READ_RATIO),
            format!("PostgreSQL {:.2} ms, SQLite {:.2} ms", p95[0], p95[1]),
        );
    }
    pg_store.close().await;
    sqlite_store.close().await;
    databases.push(day_db);
    for db in databases {
        let _ = admin
            .execute(format!("DROP DATABASE {db} WITH (FORCE)").as_str(), &[])
            .await;
    }

    println!(
        "\n== summary (load average {}){} ==",
        load_average(),
        if sizes.is_full() {
            ""
        } else {
            "; NOT the full sizes"
        }
    );
    report.print();
}

/// One step of the fleet's rate.
struct Held {
    rate: f64,
    p99_ms: f64,
}

struct Ramp {
    held: Vec<Held>,
    /// Cross-server live event lags, all steps (two servers only).
    live_lag: Vec<Duration>,
}

impl Ramp {
    /// The highest rate that held (zero when none did).
    fn best(&self) -> &Held {
        static NONE: Held = Held {
            rate: 0.0,
            p99_ms: 0.0,
        };
        self.held.last().unwrap_or(&NONE)
    }
}

/// Starts the fleet on `servers` and steps its rate up while it holds.
async fn ramp(sizes: &Sizes, servers: &[Server], postgres: bool, spread: Spread) -> Ramp {
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let secret = servers[0]
        .enroll_secret
        .clone()
        .expect("the first server's enrollment secret");
    let started = std::time::Instant::now();
    let mut hosts = fleet::start(&urls, &secret, sizes.hosts, sizes.processes, spread)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the fleet cannot start: {e:#}\nthe server's log:\n{}",
                servers[0].log_tail()
            )
        });
    println!(
        "  {} hosts enrolled and their first snapshots stored in {:.1} s",
        sizes.hosts,
        started.elapsed().as_secs_f64()
    );
    // A viewer on the second server watches some hosts; what they send to
    // the first one reaches it across servers.
    let lags = if urls.len() > 1 {
        let sent = viewers::Sent::default();
        let watched: Vec<String> = hosts
            .iter_mut()
            .take(WATCHED)
            .map(|host| {
                host.watch(sent.clone());
                host.id().to_owned()
            })
            .collect();
        Some(
            viewers::watch(&urls[1], &watched, sent, 0)
                .await
                .unwrap_or_else(|e| panic!("the viewer cannot watch: {e:#}")),
        )
    } else {
        None
    };
    let mut live_lag = Vec::new();
    let mut held = Vec::new();
    for &factor in &sizes.steps {
        let interval = INTERVAL / factor;
        let offered = sizes.hosts as f64 / interval.as_secs_f64();
        let cpu = || {
            let servers: Duration = servers.iter().map(|s| cpu_of(s.pid())).sum();
            let pg = if postgres {
                cpu_of_postgres()
            } else {
                Duration::ZERO
            };
            (servers, pg, cpu_of(std::process::id()))
        };
        let before = cpu();
        let (next, step) = fleet::step(hosts, interval, sizes.step).await;
        hosts = next;
        let after = cpu();
        let rate = step.sent as f64 / sizes.step.as_secs_f64();
        let p99 = ms(percentile(&step.latency, 99));
        let backlog = step.due - step.sent - step.failed;
        let ok = p99 < P99_MS && step.failed == 0 && step.sent as f64 >= 0.99 * step.due as f64;
        let per_batch = |d: Duration| ms(d) / step.sent.max(1) as f64;
        println!(
            "  x{factor:<2} offered {offered:.0}/s: {rate:.0} batches/s ({:.0} process samples/s), latency {:.1} ms p50, {:.1} ms p95, {p99:.1} ms p99, max {:.0} ms; lag p99 {:.0} ms; backlog {backlog}, failed {}, resent whole {}; CPU per batch: servers {:.2} ms, postgres {:.2} ms, fleet {:.2} ms; {}; load average {}",
            rate * sizes.processes as f64,
            ms(percentile(&step.latency, 50)),
            ms(percentile(&step.latency, 95)),
            ms(report::max(&step.latency)),
            ms(percentile(&step.lag, 99)),
            step.failed,
            step.resent_whole,
            per_batch(after.0 - before.0),
            per_batch(after.1 - before.1),
            per_batch(after.2 - before.2),
            if ok { "held" } else { "did NOT hold" },
            load_average(),
        );
        if let Some(e) = &step.first_error {
            println!("      first failure: {e}");
        }
        if let Some(lags) = &lags {
            let step_lags = lags.drain();
            println!(
                "      live events on the other server: {} timed from {WATCHED} watched hosts, lag {:.1} ms p50, {:.1} ms p99, max {:.0} ms",
                step_lags.len(),
                ms(percentile(&step_lags, 50)),
                ms(percentile(&step_lags, 99)),
                ms(report::max(&step_lags)),
            );
            if ok {
                live_lag.extend(step_lags);
            }
        }
        if !ok {
            break;
        }
        held.push(Held { rate, p99_ms: p99 });
    }
    Ramp { held, live_lag }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot connect to PostgreSQL: {e}")));
    tokio::spawn(connection);
    client
}

/// A new database of this run, named after `what`.
async fn create_database(admin: &tokio_postgres::Client, what: &str) -> String {
    let name = format!("procmon_scale_{what}_{}", std::process::id());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str(), &[])
        .await
        .unwrap_or_else(|e| fail(&format!("cannot create the database {name}: {e}")));
    name
}

/// `url` with its database replaced by `name`.
fn database_url(url: &str, name: &str) -> String {
    let (server, _) = url
        .rsplit_once('/')
        .expect("a postgres:// URL with a database");
    format!("{server}/{name}")
}
