//! Every process through sysinfo, with what the per-OS code adds
//! (`platform::ProcessDetails`): the process table everywhere but Linux,
//! which reads `/proc` itself (see `linux/table.rs`).

use std::time::Duration;

use procmon_model::ProcessSample;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, ThreadKind, UpdateKind};

use super::users::UserNames;
use super::{from_unix_secs, full_name, platform, status_of};

pub(super) struct ProcessTable {
    details: platform::ProcessDetails,
    users: UserNames,
}

impl ProcessTable {
    /// Takes a first reading of every process into `system`, so that the
    /// first snapshot already has meaningful CPU %. sysinfo reads every
    /// fact on every cycle, so there is nothing to recheck.
    pub(super) fn new(system: &mut System, _recheck: Duration) -> Self {
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, per_cycle_refresh());
        ProcessTable {
            details: platform::ProcessDetails::new(),
            users: UserNames::new(),
        }
    }

    pub(super) fn read(&mut self, system: &mut System) -> Vec<ProcessSample> {
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, per_cycle_refresh());
        self.details.begin_snapshot();
        let mut processes = Vec::with_capacity(system.processes().len());
        for process in system.processes().values() {
            // Linux threads are listed as tasks of their process; only whole
            // processes (kernel threads included, as `ps -e` shows) count.
            if process.thread_kind() == Some(ThreadKind::Userland) {
                continue;
            }
            let pid = process.pid().as_u32();
            let extras = self.details.read(pid);
            let user = extras
                .user
                .or_else(|| process.user_id().map(|uid| self.users.name_of(uid)));
            let disk = process.disk_usage();
            let exe = process.exe().map(|p| p.to_string_lossy().into_owned());
            let cmd: Vec<String> = process
                .cmd()
                .iter()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect();
            processes.push(ProcessSample {
                pid,
                parent_pid: process.parent().map(|p| p.as_u32()),
                name: full_name(&process.name().to_string_lossy(), exe.as_deref(), &cmd),
                exe,
                cmd,
                user,
                start_time: extras
                    .start_time
                    .unwrap_or_else(|| from_unix_secs(process.start_time())),
                status: status_of(process.status()),
                cpu_percent: finite_or_zero(process.cpu_usage()),
                memory_rss_bytes: process.memory(),
                memory_virtual_bytes: extras.virtual_bytes.unwrap_or(process.virtual_memory()),
                memory_private_bytes: extras.private_bytes,
                threads: extras.threads,
                handles: extras.handles,
                disk_read_bytes: disk.total_read_bytes,
                disk_written_bytes: disk.total_written_bytes,
            });
        }
        processes
    }
}

/// What is read for every process on every cycle. Command line, executable
/// and user are read each time because `exec` and `setuid` change them
/// without changing the pid.
fn per_cycle_refresh() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .with_cpu()
        .with_memory()
        .with_disk_usage()
        .with_cmd(UpdateKind::Always)
        .with_exe(UpdateKind::Always)
        .with_user(UpdateKind::Always)
        // Threads are counted by the per-OS code from one file; listing
        // every thread as a task would multiply the work.
        .without_tasks()
}

/// JSON has no NaN; a first reading on some OSes can produce one.
fn finite_or_zero(value: f32) -> f32 {
    if value.is_finite() {
        value
    } else {
        0.0
    }
}
