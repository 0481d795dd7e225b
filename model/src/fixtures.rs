//! Snapshots for tests and benchmarks (feature `fixtures`): one plausible
//! snapshot, and a simulated host whose processes churn as real ones do,
//! so every test and bench builds its data from one place.
//!
//! Deterministic: the same seed gives the same sequence, so a failing
//! generated test can be replayed.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::{HostInfo, ProcessSample, ProcessStatus, Snapshot, WIRE_VERSION};

/// A plausible host with a stable id.
pub fn host(host_id: &str, now: DateTime<Utc>) -> HostInfo {
    HostInfo {
        id: host_id.to_owned(),
        hostname: format!("{host_id}-name"),
        os_name: "Debian GNU/Linux".into(),
        os_version: "12".into(),
        kernel: "6.1.0".into(),
        arch: "x86_64".into(),
        cpu_count: 4,
        memory_total_bytes: 8 << 30,
        boot_time: now - Duration::hours(5),
        agent_version: "0.1.0".into(),
        labels: Vec::new(),
    }
}

/// A plausible process: pid 1 is the root, every other one its child.
pub fn process(pid: u32, now: DateTime<Utc>) -> ProcessSample {
    ProcessSample {
        pid,
        parent_pid: (pid != 1).then_some(1),
        name: format!("proc-{pid}"),
        exe: Some(format!("/usr/bin/proc-{pid}")),
        cmd: vec![
            format!("/usr/bin/proc-{pid}"),
            "--flag".into(),
            format!("arg {pid}"),
        ],
        user: Some("root".into()),
        start_time: now - Duration::minutes(i64::from(pid)),
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

/// A snapshot of `host_id` with processes 1 to `count`, taken now.
pub fn snapshot(host_id: &str, count: u32) -> Snapshot {
    snapshot_at(host_id, count, Utc::now())
}

/// A snapshot of `host_id` with processes 1 to `count`, taken at `now`.
pub fn snapshot_at(host_id: &str, count: u32, now: DateTime<Utc>) -> Snapshot {
    Snapshot {
        version: WIRE_VERSION,
        id: Uuid::new_v4(),
        collected_at: now,
        interval_ms: 2000,
        host: host(host_id, now),
        load: None,
        processes: (1..=count).map(|pid| process(pid, now)).collect(),
    }
}

/// How much a simulated host changes per cycle.
#[derive(Debug, Clone, Copy)]
pub struct Churn {
    /// Share of processes whose CPU or memory moves each cycle.
    pub busy: f64,
    /// Share of processes that exit each cycle (as many start).
    pub turnover: f64,
    /// Chance per cycle that one process exec()s or rewrites its argv.
    pub exec: f64,
}

impl Default for Churn {
    /// About 5% move, 1% start or exit, an exec now and then.
    fn default() -> Self {
        Self {
            busy: 0.05,
            turnover: 0.005,
            exec: 0.1,
        }
    }
}

/// A host whose processes live, work, exec and die between snapshots.
#[derive(Debug, Clone)]
pub struct SimHost {
    pub host: HostInfo,
    pub processes: Vec<ProcessSample>,
    pub now: DateTime<Utc>,
    pub interval: Duration,
    pub churn: Churn,
    next_pid: u32,
    rng: u64,
}

const PROGRAMS: &[(&str, &str, &str)] = &[
    ("systemd", "/usr/lib/systemd/systemd", "root"),
    ("sshd", "/usr/sbin/sshd", "root"),
    ("nginx", "/usr/sbin/nginx", "www-data"),
    (
        "postgres",
        "/usr/lib/postgresql/15/bin/postgres",
        "postgres",
    ),
    ("chrome", "/opt/google/chrome/chrome", "alice"),
    ("python3", "/usr/bin/python3.11", "alice"),
    ("bash", "/usr/bin/bash", "bob"),
    ("java", "/usr/lib/jvm/java-17/bin/java", "app"),
    ("node", "/usr/bin/node", "app"),
    ("kworker/0:1", "", "root"),
];

impl SimHost {
    /// A host with `count` processes, first snapshot at `start`.
    pub fn new(host_id: &str, count: usize, seed: u64, start: DateTime<Utc>) -> Self {
        let mut sim = Self {
            host: host(host_id, start),
            processes: Vec::with_capacity(count),
            now: start,
            interval: Duration::seconds(2),
            churn: Churn::default(),
            next_pid: 1,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        };
        for _ in 0..count {
            let p = sim.spawn();
            sim.processes.push(p);
        }
        sim
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        // xorshift64*: small, fast, good enough for test data.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.below(1_000_000) as f64) < p * 1_000_000.0
    }

    fn spawn(&mut self) -> ProcessSample {
        let pid = self.next_pid;
        // Pids wrap as on Linux, so pids are reused.
        self.next_pid = if self.next_pid >= 32_768 {
            300
        } else {
            self.next_pid + 1
        };
        let (name, exe, user) = PROGRAMS[self.below(PROGRAMS.len() as u64) as usize];
        let parent = if self.processes.is_empty() {
            None
        } else {
            let i = self.below(self.processes.len().min(50) as u64) as usize;
            Some(self.processes[i].pid)
        };
        let n = self.below(1000);
        ProcessSample {
            pid,
            parent_pid: parent,
            name: name.to_owned(),
            exe: (!exe.is_empty()).then(|| exe.to_owned()),
            cmd: if exe.is_empty() {
                Vec::new()
            } else {
                vec![
                    exe.to_owned(),
                    format!("--config=/etc/{name}/{name}.conf"),
                    format!("--worker={n}"),
                ]
            },
            user: Some(user.to_owned()),
            start_time: self.now - Duration::seconds(self.below(86_400) as i64),
            status: ProcessStatus::Sleeping,
            cpu_percent: 0.0,
            memory_rss_bytes: (1 + self.below(500)) << 20,
            memory_virtual_bytes: (10 + self.below(4000)) << 20,
            memory_private_bytes: None,
            threads: Some(1 + self.below(32) as u32),
            handles: Some(3 + self.below(200) as u32),
            disk_read_bytes: self.below(1 << 30),
            disk_written_bytes: self.below(1 << 28),
        }
    }

    /// The next snapshot, one interval after the last.
    #[allow(clippy::should_implement_trait)] // never ends, so not an iterator
    pub fn next(&mut self) -> Snapshot {
        self.now += self.interval;
        let count = self.processes.len();
        // Numbers that move.
        let busy = (count as f64 * self.churn.busy).round() as usize;
        for _ in 0..busy {
            let i = self.below(count as u64) as usize;
            // Half of them go idle again, half work.
            let cpu = (self.below(2) == 1) as u64 as f32 * self.below(2000) as f32 / 10.0;
            let rss_step = self.below(64) << 12;
            let read = self.below(1 << 20);
            let p = &mut self.processes[i];
            p.cpu_percent = cpu;
            p.memory_rss_bytes = p.memory_rss_bytes.saturating_add(rss_step);
            p.disk_read_bytes += read;
            p.status = if cpu > 50.0 {
                ProcessStatus::Running
            } else {
                ProcessStatus::Sleeping
            };
        }
        // Exits and starts.
        let turnover = (count as f64 * self.churn.turnover).round() as usize;
        for _ in 0..turnover {
            if self.processes.len() > 1 {
                let i = 1 + self.below(self.processes.len() as u64 - 1) as usize;
                self.processes.swap_remove(i);
            }
        }
        for _ in 0..turnover {
            let p = self.spawn();
            if self.processes.iter().all(|q| q.pid != p.pid) {
                self.processes.push(p);
            }
        }
        // Now and then a process exec()s or rewrites its argv.
        if self.chance(self.churn.exec) && self.processes.len() > 1 {
            let i = 1 + self.below(self.processes.len() as u64 - 1) as usize;
            let n = self.below(100);
            let p = &mut self.processes[i];
            if n.is_multiple_of(2) {
                p.name = format!("{}-exec", p.name);
                p.exe = Some(format!("/usr/local/bin/{}", p.name));
            }
            p.cmd.push(format!("--rewritten={n}"));
        }
        self.snapshot()
    }

    /// The current processes as a snapshot taken now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: WIRE_VERSION,
            id: Uuid::new_v4(),
            collected_at: self.now,
            interval_ms: self.interval.num_milliseconds() as u64,
            host: self.host.clone(),
            load: None,
            processes: self.processes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_host_churns_without_duplicate_pids() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut sim = SimHost::new("h", 1000, 7, start);
        let first = sim.snapshot();
        let mut last = first.clone();
        let mut previous = first.clone();
        for _ in 0..100 {
            previous = last;
            last = sim.next();
            let mut pids: Vec<_> = last.processes.iter().map(|p| p.pid).collect();
            pids.sort_unstable();
            pids.dedup();
            assert_eq!(pids.len(), last.processes.len());
        }
        assert!(last.collected_at > first.collected_at);
        // From one snapshot to the next most processes stay as they were.
        let kept = last
            .processes
            .iter()
            .filter(|p| previous.processes.contains(p))
            .count();
        assert!(kept > 850 && kept < 1000, "{kept} unchanged");
    }
}
