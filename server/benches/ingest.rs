//! What storing one snapshot of a busy host costs, against the least a
//! database write of the same data costs: the same rows inserted into a bare
//! table, one prepared statement stepped once per row through SQLite's C API,
//! in one transaction, on a file opened the same way. Also the newest
//! listing read back as `GET /api/processes/` reads it (`Store::snapshot`),
//! and the bytes each snapshot adds to the database file.
//! Run with `cargo bench -p procmon-server --bench ingest`.

use std::ffi::{c_char, c_int, CStr};
use std::path::Path;
use std::ptr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use libsqlite3_sys as ffi;
use procmon_model::{HostInfo, ProcessSample, ProcessStatus, Snapshot, WIRE_VERSION};
use procmon_server::store::{SqliteStore, Store};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use uuid::Uuid;

const PROCESSES: usize = 2_000;
/// Processes that exit, and as many that start, between two snapshots.
const CHURN: usize = 10;
const WARM_UP: usize = 5;
const ROUNDS: usize = 30;
const READS: usize = 15;
const HOST_ID: &str = "4c4c4544-0042-3510-8052-b4c04f4e4d32";

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store_path = dir.path().join("procmon.db");
    let base_path = dir.path().join("baseline.db");
    // Exactly as the server opens its database.
    let store = SqliteStore::open(&store_path)
        .await
        .expect("the store opens");
    let base = open_baseline(&base_path).await;

    // Snapshots are made before anything is timed.
    let mut host = Host::new();
    let snapshots: Vec<Snapshot> = (0..WARM_UP + ROUNDS).map(|_| host.next()).collect();

    // Store and baseline take turns, so a busy moment of the machine falls
    // on both alike.
    let mut store_times = Vec::with_capacity(ROUNDS);
    let mut base_times = Vec::with_capacity(ROUNDS);
    let mut first_size = 0;
    let mut warm_size = (0, 0);
    for (i, snapshot) in snapshots.iter().enumerate() {
        let received_at = snapshot.collected_at + chrono::Duration::milliseconds(40);
        let started = Instant::now();
        store
            .ingest(snapshot, received_at)
            .await
            .expect("the store ingests");
        let store_time = started.elapsed();

        let started = Instant::now();
        baseline_write(&base, i as i64, snapshot).await;
        let base_time = started.elapsed();

        if i == 0 {
            first_size = file_size(&store_path).await;
        }
        if i + 1 == WARM_UP {
            warm_size = (file_size(&store_path).await, file_size(&base_path).await);
        }
        if i >= WARM_UP {
            store_times.push(store_time);
            base_times.push(base_time);
        }
    }
    let end_size = (file_size(&store_path).await, file_size(&base_path).await);

    let mut read_times = Vec::with_capacity(READS);
    for _ in 0..READS {
        let started = Instant::now();
        let listing = store
            .snapshot(HOST_ID, None)
            .await
            .expect("the store reads")
            .expect("a snapshot is stored");
        read_times.push(started.elapsed());
        assert_eq!(listing.processes.len(), PROCESSES);
    }

    let (identities, samples) = counts(&store_path).await;
    store.close().await;
    base.close().await;

    let (store_median, store_p95) = median_p95(&mut store_times);
    let (base_median, base_p95) = median_p95(&mut base_times);
    let (read_median, read_p95) = median_p95(&mut read_times);
    let per_store = (end_size.0 - warm_size.0) / ROUNDS as u64;
    let per_base = (end_size.1 - warm_size.1) / ROUNDS as u64;

    println!(
        "processes per snapshot:            {PROCESSES} ({CHURN} replaced each time), \
         {ROUNDS} snapshots timed after {WARM_UP}"
    );
    println!(
        "baseline (bare table, row by row): {:>8.2} ms median  {:>8.2} ms p95",
        ms(base_median),
        ms(base_p95)
    );
    println!(
        "store ingest (steady state):       {:>8.2} ms median  {:>8.2} ms p95",
        ms(store_median),
        ms(store_p95)
    );
    println!(
        "newest listing read back:          {:>8.2} ms median  {:>8.2} ms p95",
        ms(read_median),
        ms(read_p95)
    );
    println!(
        "ratio ingest / baseline:           time x{:.1} (median)",
        ms(store_median) / ms(base_median).max(f64::MIN_POSITIVE)
    );
    println!(
        "database file after 1st snapshot:  {:>8.1} KiB",
        kib(first_size)
    );
    println!(
        "bytes added per snapshot:          store {per_store} ({} per process), \
         baseline {per_base} ({} per process)",
        per_store / PROCESSES as u64,
        per_base / PROCESSES as u64
    );
    println!(
        "rows in the store:                 {identities} processes, {samples} samples \
         for {} snapshots",
        snapshots.len()
    );
}

/// A file opened as `SqliteStore::open` opens its own, holding one bare
/// table with the columns of a stored process and its sample.
async fn open_baseline(path: &Path) -> SqlitePool {
    let pool = open_pool(path).await;
    sqlx::query(
        "CREATE TABLE baseline (snapshot INTEGER, host_id TEXT, pid INTEGER,
             start_time INTEGER, name TEXT, exe TEXT, cmd TEXT, user TEXT, parent_pid INTEGER,
             status TEXT, cpu_percent REAL, memory_rss_bytes INTEGER,
             memory_virtual_bytes INTEGER, memory_private_bytes INTEGER, threads INTEGER,
             handles INTEGER, disk_read_bytes INTEGER, disk_written_bytes INTEGER)",
    )
    .execute(&pool)
    .await
    .expect("the baseline table is made");
    pool
}

/// One connection to `path`, opened as `SqliteStore::open` opens its own.
async fn open_pool(path: &Path) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteStore::connect_options(path))
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// The floor: one transaction (begun and committed as the store does), and
/// in it one statement, prepared once, bound and stepped for each process.
async fn baseline_write(pool: &SqlitePool, seq: i64, snapshot: &Snapshot) {
    let mut tx = pool.begin().await.expect("a transaction");
    {
        let mut handle = tx.lock_handle().await.expect("the connection's handle");
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: `db` is an open connection, locked for this block.
        unsafe { insert_rows(db, seq, snapshot) };
    }
    tx.commit().await.expect("the transaction commits");
}

/// # Safety
/// `db` must be an open connection that nothing else uses meanwhile.
unsafe fn insert_rows(db: *mut ffi::sqlite3, seq: i64, snapshot: &Snapshot) {
    const SQL: &CStr = c"INSERT INTO baseline VALUES
        (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
    let mut stmt = ptr::null_mut();
    let rc = unsafe { ffi::sqlite3_prepare_v2(db, SQL.as_ptr(), -1, &mut stmt, ptr::null_mut()) };
    assert_eq!(rc, ffi::SQLITE_OK, "the baseline insert prepares");
    for p in &snapshot.processes {
        let cmd = serde_json::to_string(&p.cmd).expect("a list of strings serialises");
        unsafe {
            ffi::sqlite3_bind_int64(stmt, 1, seq);
            bind_text(stmt, 2, Some(&snapshot.host.id));
            ffi::sqlite3_bind_int64(stmt, 3, p.pid.into());
            ffi::sqlite3_bind_int64(stmt, 4, nanos(p.start_time));
            bind_text(stmt, 5, Some(&p.name));
            bind_text(stmt, 6, p.exe.as_deref());
            bind_text(stmt, 7, Some(&cmd));
            bind_text(stmt, 8, p.user.as_deref());
            bind_int(stmt, 9, p.parent_pid.map(i64::from));
            bind_text(stmt, 10, Some(p.status.as_str()));
            ffi::sqlite3_bind_double(stmt, 11, p.cpu_percent.into());
            bind_int(stmt, 12, Some(int(p.memory_rss_bytes)));
            bind_int(stmt, 13, Some(int(p.memory_virtual_bytes)));
            bind_int(stmt, 14, p.memory_private_bytes.map(int));
            bind_int(stmt, 15, p.threads.map(i64::from));
            bind_int(stmt, 16, p.handles.map(i64::from));
            bind_int(stmt, 17, Some(int(p.disk_read_bytes)));
            bind_int(stmt, 18, Some(int(p.disk_written_bytes)));
            let rc = ffi::sqlite3_step(stmt);
            assert_eq!(rc, ffi::SQLITE_DONE, "a baseline row is inserted");
            ffi::sqlite3_reset(stmt);
            // The texts were bound without a copy; `cmd` goes now.
            ffi::sqlite3_clear_bindings(stmt);
        }
    }
    unsafe { ffi::sqlite3_finalize(stmt) };
}

/// Binds `text` without copying it: it must outlive the next step.
unsafe fn bind_text(stmt: *mut ffi::sqlite3_stmt, index: c_int, text: Option<&str>) {
    unsafe {
        match text {
            Some(text) => ffi::sqlite3_bind_text(
                stmt,
                index,
                text.as_ptr() as *const c_char,
                c_int::try_from(text.len()).expect("a short text"),
                ffi::SQLITE_STATIC(),
            ),
            None => ffi::sqlite3_bind_null(stmt, index),
        };
    }
}

unsafe fn bind_int(stmt: *mut ffi::sqlite3_stmt, index: c_int, value: Option<i64>) {
    unsafe {
        match value {
            Some(value) => ffi::sqlite3_bind_int64(stmt, index, value),
            None => ffi::sqlite3_bind_null(stmt, index),
        };
    }
}

/// Bytes of the database file once its write-ahead log is copied into it
/// (untimed), so the figure is what the data takes, not where it waits.
async fn file_size(path: &Path) -> u64 {
    let pool = open_pool(path).await;
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&pool)
        .await
        .expect("the log is checkpointed");
    assert_eq!(busy, 0, "nothing blocked the checkpoint");
    pool.close().await;
    std::fs::metadata(path).expect("the database file").len()
}

/// Rows in the store's processes (identities) and samples tables.
async fn counts(path: &Path) -> (i64, i64) {
    let pool = open_pool(path).await;
    let counts =
        sqlx::query_as("SELECT (SELECT count(*) FROM processes), (SELECT count(*) FROM samples)")
            .fetch_one(&pool)
            .await
            .expect("rows are counted");
    pool.close().await;
    counts
}

/// A kind of process on a busy Linux server, with how many of it run. In
/// names and arguments `{n}` becomes a running number, `{hex}` a container
/// id and `{port}` a client port.
struct Kind {
    count: usize,
    name: &'static str,
    exe: Option<&'static str>,
    args: &'static [&'static str],
    user: &'static str,
    rss_mib: u64,
}

const fn kind(
    count: usize,
    name: &'static str,
    exe: Option<&'static str>,
    args: &'static [&'static str],
    user: &'static str,
    rss_mib: u64,
) -> Kind {
    Kind {
        count,
        name,
        exe,
        args,
        user,
        rss_mib,
    }
}

/// The steady population (2,000 processes in all), the first one pid 1.
#[rustfmt::skip]
const RESIDENT: &[Kind] = &[
    kind(1, "systemd", Some("/usr/lib/systemd/systemd"), &["/sbin/init", "splash"], "root", 12),
    kind(1, "kthreadd", None, &[], "root", 0),
    kind(120, "kworker/{n}:1-events", None, &[], "root", 0),
    kind(16, "ksoftirqd/{n}", None, &[], "root", 0),
    kind(16, "migration/{n}", None, &[], "root", 0),
    kind(16, "cpuhp/{n}", None, &[], "root", 0),
    kind(32, "irq/{n}-nvme0q{n}", None, &[], "root", 0),
    kind(1, "systemd-journald", Some("/usr/lib/systemd/systemd-journald"),
        &["/usr/lib/systemd/systemd-journald"], "root", 40),
    kind(1, "systemd-udevd", Some("/usr/bin/udevadm"), &["/lib/systemd/systemd-udevd"], "root", 8),
    kind(1, "systemd-resolve", Some("/usr/lib/systemd/systemd-resolved"),
        &["/lib/systemd/systemd-resolved"], "systemd-resolve", 10),
    kind(1, "dbus-daemon", Some("/usr/bin/dbus-daemon"),
        &["@dbus-daemon", "--system", "--address=systemd:", "--nofork", "--nopidfile",
          "--systemd-activation", "--syslog-only"], "messagebus", 5),
    kind(1, "rsyslogd", Some("/usr/sbin/rsyslogd"), &["/usr/sbin/rsyslogd", "-n", "-iNONE"],
        "syslog", 6),
    kind(1, "cron", Some("/usr/sbin/cron"), &["/usr/sbin/cron", "-f", "-P"], "root", 3),
    kind(1, "containerd", Some("/usr/bin/containerd"), &["/usr/bin/containerd"], "root", 60),
    kind(1, "dockerd", Some("/usr/bin/dockerd"),
        &["/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"],
        "root", 90),
    kind(60, "containerd-shim", Some("/usr/bin/containerd-shim-runc-v2"),
        &["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "{hex}", "-address",
          "/run/containerd/containerd.sock"], "root", 12),
    kind(20, "sshd", Some("/usr/sbin/sshd"), &["sshd: alice@pts/{n}"], "alice", 7),
    kind(60, "bash", Some("/usr/bin/bash"), &["-bash"], "alice", 5),
    kind(8, "tmux: server", Some("/usr/bin/tmux"), &["tmux", "new-session", "-s", "work{n}"],
        "alice", 6),
    kind(10, "vim", Some("/usr/bin/vim.basic"), &["vim", "src/store/sqlite_{n}.rs"], "alice", 14),
    kind(2, "nginx", Some("/usr/sbin/nginx"),
        &["nginx: master process /usr/sbin/nginx", "-g", "daemon on; master_process on;"],
        "root", 10),
    kind(64, "nginx", Some("/usr/sbin/nginx"), &["nginx: worker process"], "www-data", 18),
    kind(6, "postgres", Some("/usr/lib/postgresql/16/bin/postgres"),
        &["postgres: 16/main: background writer"], "postgres", 30),
    kind(150, "postgres", Some("/usr/lib/postgresql/16/bin/postgres"),
        &["postgres: 16/main: app appdb 10.0.3.{n}({port}) idle"], "postgres", 24),
    kind(200, "gunicorn", Some("/usr/local/bin/python3.12"),
        &["/usr/local/bin/python3", "/usr/local/bin/gunicorn", "app.wsgi:application",
          "--workers", "9", "--bind", "0.0.0.0:8000"], "app", 110),
    kind(120, "celery", Some("/usr/local/bin/python3.12"),
        &["/usr/local/bin/python3", "-m", "celery", "-A", "tasks", "worker",
          "--loglevel=INFO", "--concurrency=8", "-n", "worker{n}@%h"], "app", 150),
    kind(150, "node", Some("/usr/bin/node"),
        &["/usr/bin/node", "/srv/api/dist/server.js", "--port", "{port}"], "app", 90),
    kind(20, "java", Some("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"),
        &["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-Xms1g", "-Xmx2g", "-XX:+UseG1GC",
          "-Dlog4j.configuration=file:/etc/kafka/log4j.properties", "-cp", "/opt/kafka/libs/*",
          "kafka.Kafka", "/etc/kafka/server.properties"], "kafka", 1400),
    kind(200, "php-fpm8.2", Some("/usr/sbin/php-fpm8.2"), &["php-fpm: pool www"], "www-data", 35),
    kind(8, "redis-server", Some("/usr/bin/redis-server"), &["/usr/bin/redis-server *:{port}"],
        "redis", 40),
    kind(362, "chrome", Some("/opt/google/chrome/chrome"),
        &["/opt/google/chrome/chrome", "--type=renderer", "--crashpad-handler-pid=2231",
          "--enable-crash-reporter", "--lang=en-US", "--num-raster-threads=4",
          "--renderer-client-id={n}", "--shared-files=v8_context_snapshot_data:100"],
        "alice", 180),
    kind(20, "python3", Some("/usr/bin/python3.11"),
        &["/usr/bin/python3", "/usr/bin/networkd-dispatcher", "--run-startup-triggers"],
        "root", 20),
    kind(240, "python3", Some("/usr/bin/python3.11"),
        &["/usr/bin/python3", "-m", "app.consumer", "--queue", "events-{n}"], "app", 60),
    kind(60, "tini", Some("/usr/bin/tini"), &["/usr/bin/tini", "--", "docker-entrypoint.sh"],
        "app", 1),
    kind(30, "ssh-agent", Some("/usr/bin/ssh-agent"), &["/usr/bin/ssh-agent", "-s"], "alice", 2),
];

/// What starts, runs a few seconds and exits: the processes replaced.
#[rustfmt::skip]
const SHORT_LIVED: &[Kind] = &[
    kind(1, "sh", Some("/usr/bin/dash"),
        &["/bin/sh", "-c", "test -x /usr/sbin/anacron || run-parts --report /etc/cron.hourly"],
        "root", 1),
    kind(1, "grep", Some("/usr/bin/grep"), &["grep", "-r", "--color=auto", "TODO", "src/"],
        "alice", 3),
    kind(1, "curl", Some("/usr/bin/curl"),
        &["curl", "-fsS", "-m", "5", "http://127.0.0.1:{port}/health"], "app", 6),
    kind(1, "git", Some("/usr/bin/git"), &["git", "fetch", "--prune", "origin"], "alice", 9),
    kind(1, "logrotate", Some("/usr/sbin/logrotate"),
        &["/usr/sbin/logrotate", "/etc/logrotate.conf"], "root", 4),
];

/// One host whose processes mostly stay from one snapshot to the next:
/// same identities, new CPU and memory figures, `CHURN` replaced each time.
struct Host {
    info: HostInfo,
    processes: Vec<ProcessSample>,
    now: DateTime<Utc>,
    next_pid: u32,
    random: u64,
}

impl Host {
    fn new() -> Self {
        let now = Utc::now() - chrono::Duration::hours(1);
        let boot_time = now - chrono::Duration::days(12);
        let mut host = Self {
            info: HostInfo {
                id: HOST_ID.into(),
                hostname: "app-eu-west-3".into(),
                os_name: "Ubuntu".into(),
                os_version: "24.04".into(),
                kernel: "6.8.0-45-generic".into(),
                arch: "x86_64".into(),
                cpu_count: 16,
                memory_total_bytes: 64 << 30,
                boot_time,
                agent_version: "0.1.0".into(),
            },
            processes: Vec::with_capacity(PROCESSES),
            now,
            next_pid: 1,
            random: 0x9e37_79b9_7f4a_7c15,
        };
        for kind in RESIDENT {
            for _ in 0..kind.count {
                let started = boot_time + chrono::Duration::seconds(host.below(1_000_000) as i64);
                let process = host.spawn(kind, started);
                host.processes.push(process);
            }
        }
        assert_eq!(host.processes.len(), PROCESSES);
        host
    }

    /// The next snapshot, 2 s after the previous one.
    fn next(&mut self) -> Snapshot {
        self.now += chrono::Duration::seconds(2);
        for _ in 0..CHURN {
            // Never pid 1 or kthreadd.
            let gone = 2 + self.below(self.processes.len() as u64 - 2) as usize;
            let kind = &SHORT_LIVED[self.below(SHORT_LIVED.len() as u64) as usize];
            self.processes[gone] = self.spawn(kind, self.now);
        }
        for i in 0..self.processes.len() {
            let cpu = if self.below(10) == 0 {
                self.below(4000) as f32 / 100.0
            } else {
                0.0
            };
            let rss_change = self.below(1 << 16) as i64 - (1 << 15);
            let read = self.below(1 << 14);
            let busy = self.below(50) == 0;
            let p = &mut self.processes[i];
            if p.exe.is_some() {
                p.cpu_percent = cpu;
                p.memory_rss_bytes = p.memory_rss_bytes.saturating_add_signed(rss_change);
                p.disk_read_bytes += read;
                p.disk_written_bytes += read / 4;
                p.status = if busy {
                    ProcessStatus::Running
                } else {
                    ProcessStatus::Sleeping
                };
            }
        }
        Snapshot {
            version: WIRE_VERSION,
            id: Uuid::new_v4(),
            collected_at: self.now,
            interval_ms: 2000,
            host: self.info.clone(),
            processes: self.processes.clone(),
        }
    }

    fn spawn(&mut self, kind: &Kind, started: DateTime<Utc>) -> ProcessSample {
        let pid = self.next_pid;
        self.next_pid += 1 + self.below(4) as u32;
        let n = self.below(64).to_string();
        let port = (32768 + self.below(28000)).to_string();
        let hex = format!("{:016x}{:016x}", self.next_random(), self.next_random());
        let fill = |text: &str| {
            text.replace("{n}", &n)
                .replace("{port}", &port)
                .replace("{hex}", &hex)
        };
        let kernel = kind.exe.is_none();
        let rss = kind.rss_mib << 20;
        ProcessSample {
            pid,
            parent_pid: (pid != 1).then_some(if kernel { 2 } else { 1 }),
            name: fill(kind.name),
            exe: kind.exe.map(str::to_owned),
            cmd: kind.args.iter().map(|a| fill(a)).collect(),
            user: Some(kind.user.to_owned()),
            start_time: started,
            status: if kernel {
                ProcessStatus::Idle
            } else {
                ProcessStatus::Sleeping
            },
            cpu_percent: 0.0,
            memory_rss_bytes: rss + self.below(rss / 4 + 1),
            memory_virtual_bytes: rss * 4 + (200 << 20),
            memory_private_bytes: None,
            threads: Some(if kernel { 1 } else { 1 + self.below(40) as u32 }),
            handles: (!kernel).then(|| 4 + self.below(200) as u32),
            disk_read_bytes: if kernel { 0 } else { self.below(1 << 30) },
            disk_written_bytes: if kernel { 0 } else { self.below(1 << 28) },
        }
    }

    /// xorshift64*: the same figures every run, no dependency.
    fn next_random(&mut self) -> u64 {
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        self.random.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next_random() % bound
    }
}

/// Median and 95th percentile (nearest rank).
fn median_p95(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let p95 = (times.len() * 95).div_ceil(100) - 1;
    (times[times.len() / 2], times[p95])
}

fn nanos(time: DateTime<Utc>) -> i64 {
    time.timestamp_nanos_opt()
        .expect("a time within 1677 to 2262")
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}
