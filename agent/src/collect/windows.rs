//! Windows: the machine GUID, the product name from the registry, and
//! every process read from the kernel's process table, with no per-process
//! refresh by sysinfo. See the contract in `mod.rs`.
//!
//! Nothing here uses PDH performance counters: they are slow, and Wine
//! does not implement them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use procmon_model::{ProcessSample, ProcessStatus};

use super::cpu::CpuMeter;
use crate::windows::owner::AccountNames;
use crate::windows::process_facts::{self, ProcessFacts};
use crate::windows::process_table::{filetime_to_utc, KernelProcessTable, TableEntry};
use crate::windows::{privilege, registry};

const CRYPTOGRAPHY_KEY: &str = r"SOFTWARE\Microsoft\Cryptography";
const CURRENT_VERSION_KEY: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";

/// `MachineGuid`, which Windows setup creates once per installation (and
/// Wine once per prefix). Images cloned without sysprep share it; the saved
/// id is the fallback only for a registry without one.
pub(super) fn host_id() -> String {
    registry::machine_string(CRYPTOGRAPHY_KEY, "MachineGuid")
        .map(|guid| guid.to_ascii_lowercase())
        .unwrap_or_else(super::saved_id::load_or_create)
}

/// E.g. ("Windows 11 Pro 23H2", "22631.2861"): the product name with its
/// release, and the build with its update revision, as `winver` shows them.
pub(super) fn os_name_and_version() -> (String, String) {
    let build = registry::machine_string(CURRENT_VERSION_KEY, "CurrentBuild")
        .or_else(|| registry::machine_string(CURRENT_VERSION_KEY, "CurrentBuildNumber"))
        .unwrap_or_default();
    let mut name = registry::machine_string(CURRENT_VERSION_KEY, "ProductName")
        .unwrap_or_else(|| "Windows".to_owned());
    // Windows 11 kept Windows 10's ProductName; its builds start at 22000.
    if build.parse::<u32>().is_ok_and(|b| b >= 22000) && name.starts_with("Windows 10") {
        name = name.replacen("Windows 10", "Windows 11", 1);
    }
    if let Some(release) = registry::machine_string(CURRENT_VERSION_KEY, "DisplayVersion") {
        name = format!("{name} {release}");
    }
    let version = match registry::machine_dword(CURRENT_VERSION_KEY, "UBR") {
        Some(revision) if !build.is_empty() => format!("{build}.{revision}"),
        _ => build,
    };
    (name, version)
}

/// A process for its whole life: pid and creation time (pids are reused).
type ProcessKey = (u32, i64);

/// How often a process that let us open it but showed no command line is
/// read again.
const MAX_READS: u32 = 3;

/// What was read of one process when it was new.
struct Known {
    facts: ProcessFacts,
    /// How often it was opened.
    reads: u32,
    /// The number of the last snapshot that listed it.
    seen: u64,
}

/// Reads every process with one system call per snapshot (the kernel's
/// process table: parent, name, start time, CPU times, memory, threads,
/// handles, I/O), and opens a process only once, when it is new, for what
/// never changes while it lives (executable, command line, owner).
pub(super) struct ProcessTable {
    table: KernelProcessTable,
    cpu: CpuMeter<ProcessKey>,
    /// What each living process was opened for, kept until it exits.
    known: HashMap<ProcessKey, Known>,
    accounts: AccountNames,
    /// For the System and Idle processes, which have no creation time.
    boot_time: DateTime<Utc>,
    snapshots: u64,
    table_error_logged: bool,
}

impl ProcessTable {
    /// Takes a first reading of CPU times, so the first snapshot's CPU %
    /// means something. Opens no process yet.
    ///
    /// `recheck` is not used: a Windows process's executable and owner
    /// never change, and its command line changes only if it overwrites
    /// its own memory, which Task Manager does not follow either; so a
    /// process is opened once, when new.
    pub(super) fn new(_system: &mut sysinfo::System, _recheck: Duration) -> Self {
        privilege::enable_debug_privilege();
        let mut reader = ProcessTable {
            table: KernelProcessTable::new(),
            cpu: CpuMeter::new(),
            known: HashMap::new(),
            accounts: AccountNames::default(),
            boot_time: super::from_unix_secs(sysinfo::System::boot_time().unwrap_or(0)),
            snapshots: 0,
            table_error_logged: false,
        };
        if let Some(table) = reader.read_table() {
            for entry in table {
                reader
                    .cpu
                    .percent((entry.pid, entry.create_time), entry.cpu_time);
            }
        }
        reader
    }

    /// Every process now. Never panics; if the table cannot be read (it
    /// always can on Windows 8.1 and later, and under Wine) the snapshot is
    /// empty and a warning is logged once.
    pub(super) fn read(&mut self, _system: &mut sysinfo::System) -> Vec<ProcessSample> {
        let Some(table) = self.read_table() else {
            return Vec::new();
        };
        self.snapshots += 1;
        let mut processes = Vec::with_capacity(table.len());
        for entry in table {
            let key = (entry.pid, entry.create_time);
            let cpu_percent = self.cpu.percent(key, entry.cpu_time);
            let known = self.known.entry(key).or_insert_with(|| Known {
                facts: process_facts::read(entry.pid, &mut self.accounts),
                reads: 1,
                seen: 0,
            });
            known.seen = self.snapshots;
            // A process caught while it starts may not have its parameters
            // in place yet: one that let us in but hid its command line is
            // asked again, a few times.
            if known.facts.user.is_some() && known.facts.cmd.is_empty() && known.reads < MAX_READS {
                known.facts = process_facts::read(entry.pid, &mut self.accounts);
                known.reads += 1;
            }
            let facts = &known.facts;
            processes.push(ProcessSample {
                pid: entry.pid,
                parent_pid: entry.parent_pid,
                name: display_name(entry.pid, entry.name),
                exe: facts.exe.clone(),
                cmd: facts.cmd.clone(),
                user: facts.user.clone(),
                start_time: filetime_to_utc(entry.create_time).unwrap_or(self.boot_time),
                // The table has no state; Windows has no sleeping or
                // stopped process as Unix has, and sysinfo said "running"
                // for every one too.
                status: ProcessStatus::Running,
                cpu_percent,
                memory_rss_bytes: entry.working_set,
                memory_virtual_bytes: entry.virtual_bytes,
                memory_private_bytes: Some(entry.private_bytes),
                threads: Some(entry.threads),
                handles: Some(entry.handles),
                disk_read_bytes: entry.read_bytes,
                disk_written_bytes: entry.written_bytes,
            });
        }
        // Forget what was read of exited processes, so the cache stays the
        // table's size.
        let now = self.snapshots;
        self.known.retain(|_, known| known.seen == now);
        if self.snapshots == 1 {
            self.log_denied();
        }
        processes
    }

    /// The table, with the CPU meter started on it; `None` (logged once)
    /// when it cannot be read.
    fn read_table(&mut self) -> Option<Vec<TableEntry>> {
        match self.table.read() {
            Ok(table) => {
                self.cpu.begin(Instant::now());
                Some(table)
            }
            Err(error) => {
                if !self.table_error_logged {
                    tracing::warn!(%error, "cannot read the process table; snapshots will be empty");
                    self.table_error_logged = true;
                }
                None
            }
        }
    }

    /// After the first snapshot, says once how many processes denied us
    /// their owner (and so their command line too): people otherwise take
    /// the empty columns for a bug.
    fn log_denied(&self) {
        // Idle (0) and System (4) can be opened by no one.
        let denied = self
            .known
            .iter()
            .filter(|((pid, _), known)| known.facts.user.is_none() && *pid > 4)
            .count();
        if denied > 0 {
            tracing::info!(
                "access denied to {denied} processes (other users' or protected ones): they are \
                 reported without owner and command line. Run the agent as administrator, or \
                 install it as the service, to see them"
            );
        }
    }
}

/// The table's name, but the Idle process has none: named as Task Manager
/// names it.
fn display_name(pid: u32, name: String) -> String {
    if pid == 0 && name.is_empty() {
        "System Idle Process".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPINNER: &str = "collect::platform::tests::spin_for_two_seconds";

    /// Run as a busy child by the test below, never alone.
    #[test]
    #[ignore = "a busy child process for the test below"]
    fn spin_for_two_seconds() {
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn a_process_started_after_the_first_snapshot_is_read_whole_and_busy() {
        let mut system = sysinfo::System::new().unwrap();
        let mut table = ProcessTable::new(&mut system, Duration::from_secs(60));
        table.read(&mut system);
        let exe = std::env::current_exe().unwrap();
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", SPINNER, "--ignored"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        table.read(&mut system);
        std::thread::sleep(Duration::from_millis(1000));
        let processes = table.read(&mut system);
        let _ = child.kill();
        let _ = child.wait();

        let pid = child.id();
        let spinner = processes
            .iter()
            .find(|p| p.pid == pid)
            .expect("the child is listed");
        assert_eq!(spinner.parent_pid, Some(std::process::id()), "{spinner:?}");
        assert!(
            spinner
                .exe
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&exe.to_string_lossy())),
            "{spinner:?}"
        );
        assert_eq!(
            spinner.cmd[1..],
            ["--exact", SPINNER, "--ignored"],
            "{spinner:?}"
        );
        assert!(
            spinner.user.as_deref().is_some_and(|u| u.contains('\\')),
            "{spinner:?}"
        );
        // Busy on one core, on a machine that may be busy too.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f32;
        assert!(
            spinner.cpu_percent > 5.0 && spinner.cpu_percent <= 100.0 * cores + 10.0,
            "{spinner:?}"
        );
    }
}
