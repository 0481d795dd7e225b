//! Small helpers for the store's unit tests.

use chrono::{DateTime, Duration};
use procmon_model::{ProcessSample, ProcessStatus};

/// A plausible process with pid `pid`.
pub fn process(pid: u32) -> ProcessSample {
    let epoch = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    ProcessSample {
        pid,
        parent_pid: (pid != 1).then_some(1),
        name: format!("proc-{pid}"),
        exe: Some(format!("/usr/bin/proc-{pid}")),
        cmd: vec![
            format!("/usr/bin/proc-{pid}"),
            "--flag".into(),
            format!("{pid}"),
        ],
        user: Some("root".into()),
        start_time: epoch + Duration::seconds(i64::from(pid)),
        status: ProcessStatus::Sleeping,
        cpu_percent: 0.5,
        memory_rss_bytes: 1_000_000 + u64::from(pid),
        memory_virtual_bytes: 10_000_000,
        memory_private_bytes: Some(500_000),
        threads: Some(2),
        handles: Some(10),
        disk_read_bytes: 4096,
        disk_written_bytes: 512,
    }
}

/// The processes ordered by pid, to compare sets.
pub fn sorted(processes: impl IntoIterator<Item = ProcessSample>) -> Vec<ProcessSample> {
    let mut v: Vec<_> = processes.into_iter().collect();
    v.sort_by_key(|p| (p.pid, p.start_time));
    v
}
