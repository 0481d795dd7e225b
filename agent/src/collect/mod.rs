//! Taking snapshots of this machine's processes.
//!
//! One long-lived [`Collector`] keeps its process table between cycles, so
//! CPU % is measured over the time between two snapshots, and it reads only
//! what changes: per cycle the process table; the host's facts (hostname,
//! OS, memory size) only every [`HOST_REFRESH`]; its id once.
//!
//! # Per-OS code
//!
//! Everything that differs between operating systems lives in exactly one of
//! `linux/`, `windows.rs` or `other.rs`, picked with `cfg` and used as
//! `platform`. Each of them provides:
//!
//! - `fn host_id() -> String`: the machine's stable id (Linux machine-id,
//!   Windows `MachineGuid`), never the hostname; if the OS has none, a
//!   stable fallback explained in a comment there.
//! - `fn os_name_and_version() -> (String, String)`: e.g.
//!   `("Debian GNU/Linux", "12")` or `("Windows 10 Pro", "19045")`.
//!
//! and the process table, `ProcessTable` with
//! `fn new(&mut System, recheck: Duration) -> Self`, which takes a first
//! reading of every process as a baseline for CPU %, and
//! `fn read(&mut self, &mut System) -> Vec<ProcessSample>`, which must
//! never panic. It comes from one of two places:
//!
//! - Linux: `platform::ProcessTable` reads `/proc` itself, near the least
//!   the kernel allows (one read of each process's `stat` per cycle); facts
//!   that rarely change are read again only on `exec` and every `recheck`.
//! - Windows: `platform::ProcessTable` reads the kernel's process table with
//!   one system call per cycle, and opens a process only when it is new
//!   for its executable, command line and owner (never again: `recheck`
//!   is not used); sysinfo is asked for host facts only.
//! - Elsewhere: `sysinfo_table::ProcessTable` refreshes every process
//!   through sysinfo and asks `platform::ProcessDetails` (with
//!   `fn new() -> Self`, `fn begin_snapshot(&mut self)` and
//!   `fn read(&mut self, pid: u32) -> PlatformExtras`) for what sysinfo
//!   does not give, or gives wrongly (threads, handles, private bytes,
//!   virtual size, and on Windows the user as `DOMAIN\name`). It may keep
//!   caches between calls. `begin_snapshot` is called once per snapshot,
//!   after sysinfo's refresh and before any `read`, for what is read for
//!   all processes at once (the Windows process table). `read` is called
//!   once per process per snapshot and must never panic: a process that
//!   vanished or denies access yields `PlatformExtras::default()` or
//!   whatever could be read.
//!
//! The rest of the agent never sees a platform.
//!
//! # Limits
//!
//! Every snapshot is fitted within the limits the server enforces
//! ([`fit`]) before it leaves the collector, so one odd process cannot get
//! a whole snapshot refused.

mod cpu;
pub mod fit;
mod host;
mod load;
mod saved_id;
#[cfg(not(windows))]
mod users;

#[cfg(target_os = "linux")]
#[path = "linux/mod.rs"]
mod platform;
#[cfg(windows)]
#[path = "windows.rs"]
mod platform;
#[cfg(not(any(target_os = "linux", windows)))]
#[path = "other.rs"]
mod platform;

#[cfg(not(any(target_os = "linux", windows)))]
mod sysinfo_table;

#[cfg(any(target_os = "linux", windows))]
use self::platform::ProcessTable;
/// For actions: a process's start time exactly as snapshots give it.
#[cfg(target_os = "linux")]
pub(crate) use self::platform::{identify, Identity};
#[cfg(not(any(target_os = "linux", windows)))]
use self::sysinfo_table::ProcessTable;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
#[cfg(not(windows))]
use procmon_model::ProcessStatus;
use procmon_model::{HostInfo, Snapshot, WIRE_VERSION};
use sysinfo::System;
use uuid::Uuid;

use self::fit::CutLog;

/// How often the host's slowly changing facts are read again.
const HOST_REFRESH: Duration = Duration::from_secs(60);

/// How often facts that change without the kernel showing it (a process
/// rewriting its own command line) are read again, where the process table
/// does not read them every cycle.
const FACTS_RECHECK: Duration = Duration::from_secs(60);

/// CPU % over a shorter span than this is mostly noise (sysinfo's own
/// minimum is 200 ms), so a snapshot taken sooner waits for the rest.
const MIN_CPU_SPAN: Duration = Duration::from_millis(250);

/// What `platform::ProcessDetails` adds to sysinfo's view of one process
/// (not used on Linux, which reads `/proc` itself). Every field
/// is optional: `None` means the OS has no such figure or it was denied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformExtras {
    /// Number of threads.
    pub threads: Option<u32>,
    /// Open handles (Windows) or file descriptors (Unix).
    pub handles: Option<u32>,
    /// Private bytes (Windows commit charge).
    pub private_bytes: Option<u64>,
    /// Virtual size, where the OS reports it better than sysinfo (on
    /// Windows sysinfo gives the commit charge here, not the address space).
    pub virtual_bytes: Option<u64>,
    /// Start time, where the OS reports it better than sysinfo (under Wine
    /// sysinfo's reading can be centuries off).
    pub start_time: Option<DateTime<Utc>>,
    /// The owner as the OS names it, when the platform knows better than a
    /// uid lookup (Windows: `DOMAIN\name` from the process token).
    pub user: Option<String>,
}

/// Takes snapshots of every process on this machine.
///
/// Keep one for the life of the agent: CPU % is measured between one
/// snapshot and the next, and caches (user names, host facts) carry over.
pub struct Collector {
    /// For host facts; elsewhere than Linux, the process table's too.
    system: System,
    processes: ProcessTable,
    host: HostInfo,
    host_read_at: Instant,
    last_refresh: Instant,
    cut_log: CutLog,
    load: Option<load::LoadMeter>,
}

impl Collector {
    /// Reads the host's facts and takes a first reading of every process, so
    /// that the first snapshot already has meaningful CPU %.
    pub fn new() -> Collector {
        Self::with_recheck(FACTS_RECHECK)
    }

    /// As [`Collector::new`], with facts that can change unseen (a command
    /// line a process rewrote) read again every `recheck` rather than every
    /// minute. For tests; where the process table reads every fact every
    /// cycle, `recheck` changes nothing.
    pub fn with_recheck(recheck: Duration) -> Collector {
        // `System::new` only fails where sysinfo has no support at all, and
        // an agent that cannot see processes has nothing to do.
        let mut system = System::new().expect("this OS is not supported by sysinfo");
        let processes = ProcessTable::new(&mut system, recheck);
        // Read once: the id names this machine for as long as the agent
        // runs, and a made-up one that could not be saved would otherwise
        // be made up anew at every refresh.
        let host = host::read(&mut system, platform::host_id(), &[]);
        Collector {
            system,
            processes,
            host,
            host_read_at: Instant::now(),
            last_refresh: Instant::now(),
            cut_log: CutLog::default(),
            load: load::LoadMeter::new(),
        }
    }

    /// The same collector, its snapshots carrying `labels` as the host's
    /// (`HostInfo::labels`). They are sent as given: the settings check
    /// them against the server's limits (`procmon_model::limits::check_label`).
    pub fn with_labels(mut self, labels: Vec<String>) -> Collector {
        self.host.labels = labels;
        self
    }

    /// Takes one snapshot of every process, fitted within the server's
    /// limits ([`fit::fit`]). Blocks for a moment when called very soon
    /// after the previous one, so CPU % means something.
    ///
    /// `interval` is how often the caller takes snapshots; it travels in the
    /// snapshot so the server knows when this host counts as offline.
    pub fn snapshot(&mut self, interval: Duration) -> Snapshot {
        let since_last = self.last_refresh.elapsed();
        if since_last < MIN_CPU_SPAN {
            std::thread::sleep(MIN_CPU_SPAN - since_last);
        }
        self.last_refresh = Instant::now();
        let processes = self.processes.read(&mut self.system);
        let collected_at = Utc::now();

        if self.host_read_at.elapsed() >= HOST_REFRESH {
            self.host = host::read(&mut self.system, self.host.id.clone(), &self.host.labels);
            self.host_read_at = Instant::now();
        }

        let mut snapshot = Snapshot {
            version: WIRE_VERSION,
            id: Uuid::new_v4(),
            collected_at,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            host: self.host.clone(),
            load: self.load.as_mut().map(load::LoadMeter::read),
            processes,
        };
        let cuts = fit::fit(&mut snapshot);
        self.cut_log.log(&cuts);
        snapshot
    }
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

/// Linux keeps only the first 15 bytes of a process's name; when the
/// executable's or the first argument's file name continues the cut name,
/// that is the full one ("chrome_crashpad" is "chrome_crashpad_handler").
#[cfg(not(windows))]
fn full_name(name: &str, exe: Option<&str>, cmd: &[String]) -> String {
    const CUT_AT: usize = 15;
    if name.len() != CUT_AT {
        return name.to_owned();
    }
    let file_name = |path: &str| path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned();
    // A rewritten command line can be one argument holding them all.
    let program = match cmd {
        [all_in_one] => all_in_one.split(' ').next(),
        _ => cmd.first().map(String::as_str),
    };
    exe.into_iter()
        .chain(program)
        .map(file_name)
        .find(|candidate| candidate.len() > CUT_AT && candidate.starts_with(name))
        .unwrap_or_else(|| name.to_owned())
}

#[cfg(not(windows))]
fn status_of(status: sysinfo::ProcessStatus) -> ProcessStatus {
    use sysinfo::ProcessStatus as S;
    match status {
        S::Run => ProcessStatus::Running,
        S::Sleep | S::Waking | S::Wakekill | S::Parked | S::LockBlocked => ProcessStatus::Sleeping,
        S::UninterruptibleDiskSleep => ProcessStatus::DiskSleep,
        S::Idle => ProcessStatus::Idle,
        S::Stop | S::Tracing | S::Suspended => ProcessStatus::Stopped,
        S::Zombie => ProcessStatus::Zombie,
        S::Dead => ProcessStatus::Dead,
        S::Unknown(_) => ProcessStatus::Unknown,
    }
}

pub(crate) fn from_unix_secs(secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(all(test, not(windows)))]
mod tests {
    use super::full_name;

    #[test]
    fn a_name_cut_at_15_bytes_is_completed_from_the_executable_or_command() {
        let cut = "chrome_crashpad";
        let exe = Some("/usr/lib/chromium/chrome_crashpad_handler");
        assert_eq!(full_name(cut, exe, &[]), "chrome_crashpad_handler");
        let cmd = ["/opt/x/chrome_crashpad_handler --dir=/tmp/y".to_owned()];
        assert_eq!(full_name(cut, None, &cmd), "chrome_crashpad_handler");
        let cmd = [
            "/opt/x/chrome_crashpad_handler".to_owned(),
            "--dir=/a b".to_owned(),
        ];
        assert_eq!(full_name(cut, None, &cmd), "chrome_crashpad_handler");
        // A different program, or a short name, is left as the OS gave it.
        assert_eq!(full_name(cut, Some("/usr/bin/python3"), &[]), cut);
        assert_eq!(
            full_name("sleep", Some("/usr/bin/sleep-longer"), &[]),
            "sleep"
        );
    }
}
