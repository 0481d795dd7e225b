//! A fresh PostgreSQL database per test, on the server that
//! `scripts/with-postgres` starts (and `scripts/test` runs the suite in):
//! it exports `PROCMON_TEST_POSTGRES_URL`. Databases are not dropped
//! afterwards; the whole cluster is thrown away when the run ends.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test server, a `postgres://` URL of a database
/// on it whose user may create databases.
pub const URL_VARIABLE: &str = "PROCMON_TEST_POSTGRES_URL";

/// The URL of a new, empty database on the test server, or `None` when
/// there is no test server: then under `CI=true` this panics (CI must run
/// every test), elsewhere it prints that the PostgreSQL variant is skipped.
pub async fn fresh_database() -> Option<String> {
    let Some(base) = std::env::var(URL_VARIABLE).ok().filter(|u| !u.is_empty()) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{URL_VARIABLE} is not set, and CI must run the PostgreSQL tests: \
                 they need a PostgreSQL server, which scripts/test starts \
                 (through scripts/with-postgres)"
            );
        }
        eprintln!(
            "skipped: the PostgreSQL variant ({URL_VARIABLE} is not set; \
             scripts/with-postgres COMMAND runs COMMAND with a server)"
        );
        return None;
    };
    let name = unique_name();
    let client = connect(&base).await;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| {
            panic!("cannot create the test database {name} on {URL_VARIABLE}: {e}")
        });
    Some(with_database(&base, &name))
}

/// A client of the database at `url`, its connection driven on the test's
/// runtime.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to the test PostgreSQL server ({URL_VARIABLE}): {e}")
        });
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("the test PostgreSQL connection failed: {e}");
        }
    });
    client
}

/// The variable that runs the API tests on PostgreSQL instead of SQLite:
/// `PROCMON_TEST_BACKEND=postgres` (scripts/test runs them both ways).
pub const BACKEND_VARIABLE: &str = "PROCMON_TEST_BACKEND";

/// A fresh database for a test server when the API tests run on
/// PostgreSQL ([`BACKEND_VARIABLE`]); `None` when they run on SQLite.
pub async fn database_for_api_tests() -> Option<String> {
    match std::env::var(BACKEND_VARIABLE).as_deref() {
        Ok("postgres") => Some(fresh_database().await.unwrap_or_else(|| {
            panic!("{BACKEND_VARIABLE}=postgres, but {URL_VARIABLE} is not set")
        })),
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("{BACKEND_VARIABLE}={other:?}: give postgres or sqlite"),
    }
}

/// A name no other test of any run on this cluster has: the process, a
/// count within it, and the time (tests of several binaries run at once).
fn unique_name() -> String {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "procmon_test_{}_{}_{nanos}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database replaced by `name`, keeping user, host, port
/// and any parameters after `?`.
pub fn with_database(url: &str, name: &str) -> String {
    let (rest, query) = match url.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (url, None),
    };
    let (scheme, authority) = rest
        .split_once("://")
        .unwrap_or_else(|| panic!("{URL_VARIABLE} is not a postgres:// URL (no \"://\")"));
    let authority = authority.split_once('/').map_or(authority, |(a, _)| a);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// A PostgreSQL cluster of one test's own, for the tests that stop,
/// restart or freeze the database under a running server (the shared test
/// server cannot be, other tests use it). Made with `initdb` in a
/// temporary directory, on a free port of 127.0.0.1; stopped and removed
/// when dropped. Run as the `postgres` user when the test runs as root,
/// as PostgreSQL requires.
pub struct Cluster {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    postmaster: Option<u32>,
}

impl Cluster {
    /// A new running cluster, or `None` when PostgreSQL is not installed
    /// (under `CI=true` that panics, as for [`fresh_database`]).
    pub fn start() -> Option<Self> {
        let Some(bin) = server_programs() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is not installed (no initdb), and CI must run this test: run scripts/install-test-deps");
            }
            eprintln!(
                "skipped: PostgreSQL is not installed (scripts/install-test-deps installs it)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        give_to_postgres(dir.path());
        let init = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres"])
            .output()
            .expect("run initdb");
        assert!(init.status.success(), "initdb failed: {init:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cluster = Self {
            bin,
            dir,
            port,
            postmaster: None,
        };
        cluster.resume();
        Some(cluster)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it at once (`pg_ctl stop -m immediate`): every connection is
    /// cut, as when the database machine goes away.
    pub fn halt(&mut self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        self.postmaster = None;
    }

    /// Starts it again on the same data and port, and waits until it
    /// takes connections.
    pub fn resume(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.pg_ctl(&[
            "-l",
            log.to_str().expect("a UTF-8 temp path"),
            "-o",
            &options,
            "-w",
            "-t",
            "60",
            "start",
        ]);
        let pid = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .expect("the postmaster's pid file");
        self.postmaster = pid.lines().next().and_then(|l| l.trim().parse().ok());
    }

    /// Freezes every process of the cluster (SIGSTOP): connections stay
    /// open but nothing answers, as behind a network partition.
    pub fn freeze(&self) {
        self.signal_all("STOP");
    }

    /// Lets a frozen cluster run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal_all("CONT");
    }

    fn signal_all(&self, signal: &str) {
        let Some(postmaster) = self.postmaster else {
            panic!("the cluster is not running");
        };
        // The postmaster and its children (backends, writer, ...).
        let children = std::process::Command::new("pgrep")
            .args(["-P", &postmaster.to_string()])
            .output()
            .expect("run pgrep");
        // The postmaster first, so that it starts no child in between; a
        // child may end before its signal (it is gone: nothing to do).
        let signal_one = |pid: &str| {
            std::process::Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(
            signal_one(&postmaster.to_string()),
            "kill -{signal} of the postmaster {postmaster} failed"
        );
        for child in String::from_utf8_lossy(&children.stdout).split_whitespace() {
            signal_one(child);
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let output = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .output()
            .expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl {args:?} failed: {output:?}; its log: {}",
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.postmaster.is_some() {
            self.thaw();
            let _ = as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

/// Where `initdb` and `pg_ctl` are: Debian's versioned folder (the
/// highest), else PATH.
fn server_programs() -> Option<std::path::PathBuf> {
    let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| dir.join("initdb").exists()))
}

/// Whether this test runs as root (then PostgreSQL runs as `postgres`).
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user when this test is root.
fn as_postgres(program: &std::path::Path) -> std::process::Command {
    if is_root() {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        std::process::Command::new(program)
    }
}

/// Gives `dir` to the `postgres` user when this test is root.
fn give_to_postgres(dir: &std::path::Path) {
    if is_root() {
        let status = std::process::Command::new("chown")
            .arg("postgres")
            .arg(dir)
            .status()
            .expect("run chown");
        assert!(status.success(), "chown postgres {} failed", dir.display());
    }
}
