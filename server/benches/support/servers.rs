//! Real procmon servers for the scale bench: the `procmon-server` binary
//! this bench was built with (release), each a process of its own with its
//! own data directory, on a port the kernel picks, without the embedded
//! agent. The address and the enrollment secret are read from what it
//! prints at start; its log goes to a file in its data directory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use secrecy::SecretString;
use tempfile::TempDir;

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    /// Where agents send, e.g. `http://127.0.0.1:41234/`.
    pub url: String,
    /// The enrollment secret, printed only by the first server of a database.
    pub enroll_secret: Option<SecretString>,
    log: PathBuf,
    _data: TempDir,
}

impl Server {
    /// Starts a server on `database` (a `postgres://` URL), or on an SQLite
    /// file in its data directory when `None`, serving up to
    /// `max_connections` connections (each simulated agent keeps one).
    pub fn start(database: Option<&str>, max_connections: usize) -> anyhow::Result<Server> {
        let data = tempfile::tempdir().context("a data directory")?;
        let log = data.path().join("server.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_procmon-server"));
        command
            .args(["--no-agent", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(["--max-connections", &max_connections.to_string()])
            .env_remove("PROCMON_CONFIG")
            .current_dir(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).context("the server's log file")?);
        if let Some(url) = database {
            command.args(["--database", url]);
        }
        let mut child = command.spawn().context("cannot start procmon-server")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut server = Server {
            child,
            url: String::new(),
            enroll_secret: None,
            log,
            _data: data,
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut secret_next = false;
        loop {
            let Some(line) = lines.next().transpose().context("the server's stdout")? else {
                bail!(
                    "procmon-server exited while starting; its log:\n{}",
                    server.log_tail()
                );
            };
            let line = line.trim();
            if let Some(url) = line.strip_prefix("procmon is running at ") {
                server.url = url.to_owned();
            } else if line.starts_with("agents enroll with this secret") {
                secret_next = true;
            } else if secret_next {
                server.enroll_secret = Some(SecretString::from(line.to_owned()));
                secret_next = false;
            } else if line == "Ctrl-C stops it" {
                break;
            }
        }
        if server.url.is_empty() {
            bail!(
                "procmon-server did not print its address; its log:\n{}",
                server.log_tail()
            );
        }
        // Nothing more comes on stdout; it is drained so a line never blocks it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(server)
    }

    /// The process id, to read its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user and system, all threads) used so far by the process
/// `pid`, from `/proc/<pid>/stat`.
pub fn cpu_of(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The fields after the command name (which may hold spaces), from the
    // state (field 3) on: utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

/// CPU time used so far by every process named `postgres` (the server and
/// its backends).
pub fn cpu_of_postgres() -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .map(cpu_of)
        .sum()
}

/// The machine's load averages over 1, 5 and 15 minutes, as printed.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}
