//! The Linux process table, which reads facts only now and then, against a
//! plain full read of `/proc` taken right after each snapshot: the same
//! processes, the same facts (at most one recheck late, for a command line
//! a process rewrote itself), and the same figures within a cycle's drift.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use procmon_agent::Collector;
use procmon_model::{ProcessSample, Snapshot};

const INTERVAL: Duration = Duration::from_secs(1);
const RECHECK: Duration = Duration::from_secs(1);

/// Kills the child even when an assertion fails first.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

fn spawn(program: &str, args: &[&str]) -> Reaped {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    Reaped(child)
}

/// One process as a plain full read of `/proc` sees it: every file opened
/// afresh, nothing remembered.
#[derive(Debug, Clone)]
struct Truth {
    comm: String,
    state: char,
    parent_pid: Option<u32>,
    start_time: DateTime<Utc>,
    /// Seconds after boot, to the clock tick.
    started_after_boot: f64,
    threads: u32,
    rss_bytes: u64,
    virtual_bytes: u64,
    exe: Option<String>,
    cmd: Vec<String>,
    user: Option<String>,
    read_bytes: Option<u64>,
    write_bytes: Option<u64>,
    fds: Option<u32>,
}

struct Reference {
    users: sysinfo::Users,
    boot_time: u64,
    ticks: u64,
    page: u64,
}

impl Reference {
    fn new() -> Self {
        let stat = fs::read_to_string("/proc/stat").unwrap();
        let boot_time = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        Reference {
            users: sysinfo::Users::new_with_refreshed_list().unwrap(),
            boot_time,
            // What every Linux of the last decades uses; `getconf` agrees.
            ticks: getconf("CLK_TCK"),
            page: getconf("PAGESIZE"),
        }
    }

    fn read_all(&self) -> HashMap<u32, Truth> {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| Some((pid, self.read(pid)?)))
            .collect()
    }

    fn read(&self, pid: u32) -> Option<Truth> {
        let dir = format!("/proc/{pid}");
        let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // fields[0] is field 3 of proc(5).
        let field = |n: usize| fields[n - 3].parse::<u64>().unwrap();
        let cmd = fs::read(format!("{dir}/cmdline"))
            .map(|raw| {
                raw.split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let exe = fs::read_link(format!("{dir}/exe")).ok().map(|p| {
            let bytes = p.as_os_str().as_bytes();
            let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
            String::from_utf8_lossy(bytes).into_owned()
        });
        let status = fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned);
        let user = uid.map(|uid| {
            let parsed: sysinfo::Uid = uid.parse().unwrap();
            self.users
                .get_user_by_id(&parsed)
                .map_or(uid, |u| u.name().to_owned())
        });
        let io = fs::read_to_string(format!("{dir}/io")).ok();
        let io_value = |key: &str| {
            io.as_deref()?
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))?
                .parse()
                .ok()
        };
        let fds = fs::read_dir(format!("{dir}/fd"))
            .ok()
            .map(|d| d.count() as u32);
        let parent = field(4) as u32;
        let start_secs = self.boot_time + field(22) / self.ticks;
        Some(Truth {
            comm,
            state: fields[0].chars().next()?,
            parent_pid: (parent != 0).then_some(parent),
            start_time: DateTime::from_timestamp(start_secs as i64, 0)?,
            started_after_boot: field(22) as f64 / self.ticks as f64,
            threads: field(20) as u32,
            rss_bytes: field(24) * self.page,
            virtual_bytes: field(23),
            exe,
            cmd,
            user,
            read_bytes: io_value("read_bytes"),
            write_bytes: io_value("write_bytes"),
            fds,
        })
    }
}

/// Seconds since boot (suspend included), the clock of stat's start.
fn uptime_secs() -> f64 {
    let uptime = fs::read_to_string("/proc/uptime").unwrap();
    uptime.split_whitespace().next().unwrap().parse().unwrap()
}

fn getconf(name: &str) -> u64 {
    let out = Command::new("getconf").arg(name).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn find(snapshot: &Snapshot, pid: u32) -> &ProcessSample {
    snapshot
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("pid {pid} is not in the snapshot"))
}

/// The facts of one process, as far as the snapshot and the full read
/// must agree; a name cut at 15 bytes may be completed in the snapshot.
fn facts_differ(sample: &ProcessSample, truth: &Truth) -> Option<String> {
    let name_ok = if truth.comm.len() >= 15 {
        sample.name.starts_with(&truth.comm)
    } else {
        sample.name == truth.comm
    };
    let differences: Vec<String> = [
        (!name_ok).then(|| format!("name {:?} vs {:?}", sample.name, truth.comm)),
        (sample.exe != truth.exe).then(|| format!("exe {:?} vs {:?}", sample.exe, truth.exe)),
        (sample.cmd != truth.cmd).then(|| format!("cmd {:?} vs {:?}", sample.cmd, truth.cmd)),
        (sample.user != truth.user).then(|| format!("user {:?} vs {:?}", sample.user, truth.user)),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!differences.is_empty()).then(|| differences.join(", "))
}

/// Facts that differed from the full read.
struct Stale {
    since: Instant,
    what: String,
    /// Consecutive cycles in which the name (so the comm) differed too.
    renamed_cycles: u32,
}

fn same_process(sample: &ProcessSample, truth: &Truth) -> bool {
    (sample.start_time - truth.start_time).num_seconds().abs() <= 1
}

#[test]
fn the_table_reports_what_a_full_read_of_proc_reports() {
    let reference = Reference::new();
    let idle = spawn("sleep", &["30"]);
    // Starts as `sh` and becomes `sleep`: a new comm, read on the next cycle.
    let execs = spawn("sh", &["-c", "sleep 0.6; exec sleep 31"]);
    // Rewrites its arguments but keeps its comm ("perl"): only the slow
    // recheck can see it.
    let rewrites = spawn("perl", &["-e", "sleep 1; $0 = 'perl'; sleep 30"]);
    // Rewrites its arguments and so, through prctl, its comm too.
    let renames = spawn("perl", &["-e", "sleep 1; $0 = 'renamed by test'; sleep 30"]);
    let mut exits = spawn("sleep", &["1.2"]);
    let mut late = None;

    let mut collector = Collector::with_recheck(RECHECK);
    let started = Instant::now();
    // Facts that differ from the full read, by (pid, start), since when.
    let mut stale: HashMap<(u32, DateTime<Utc>), Stale> = HashMap::new();
    let mut cycles = 0;
    let mut exits_seen_gone = false;
    while started.elapsed() < Duration::from_millis(4500) {
        if cycles == 3 {
            late = Some(spawn("sleep", &["32"]));
        }
        // Reaped once it exits, so it does not linger as a zombie.
        let exited = exits.0.try_wait().unwrap().is_some();
        // Short-lived processes come and go between the cycles.
        for _ in 0..3 {
            let _ = Command::new("true").status();
        }
        let began = uptime_secs();
        let snapshot = collector.snapshot(INTERVAL);
        let truth = reference.read_all();
        let now = Instant::now();
        cycles += 1;

        for sample in &snapshot.processes {
            match truth.get(&sample.pid) {
                // A zombie shows neither command line nor executable; the
                // table keeps the last ones read, as sysinfo did.
                Some(t) if t.state == 'Z' => {}
                Some(t) if same_process(sample, t) => {
                    let key = (sample.pid, sample.start_time);
                    match facts_differ(sample, t) {
                        Some(what) => {
                            // Kernel threads (no command line) rename
                            // themselves all the time, and have no facts.
                            let renamed = what.starts_with("name") && !t.cmd.is_empty();
                            let entry = stale.entry(key).or_insert(Stale {
                                since: now,
                                what: String::new(),
                                renamed_cycles: 0,
                            });
                            entry.renamed_cycles =
                                if renamed { entry.renamed_cycles + 1 } else { 0 };
                            entry.what = what;
                        }
                        None => {
                            stale.remove(&key);
                        }
                    }
                    assert_eq!(sample.parent_pid, t.parent_pid, "parent of {}", sample.pid);
                }
                // Gone (or replaced) since the snapshot: it must really be.
                _ => assert!(
                    reference
                        .read(sample.pid)
                        .is_none_or(|t| !same_process(sample, &t)),
                    "{} ({}) is in the snapshot, yet a full read does not see it",
                    sample.pid,
                    sample.name
                ),
            }
        }
        stale.retain(|(pid, start), _| {
            snapshot
                .processes
                .iter()
                .any(|p| p.pid == *pid && p.start_time == *start)
        });
        // Every process the full read sees was in the snapshot, unless it
        // started after the snapshot began.
        for (pid, t) in &truth {
            let listed = snapshot.processes.iter().any(|p| p.pid == *pid);
            assert!(
                listed || t.started_after_boot >= began,
                "{pid} ({}, started {:.2} s after boot) is missing from the snapshot begun at {began:.2}",
                t.comm,
                t.started_after_boot,
            );
        }
        // A fact may lag only until the recheck (plus the cycle that
        // notices); a new comm (exec) is seen at the next cycle.
        for ((pid, _), stale) in &stale {
            let what = &stale.what;
            assert!(
                now.duration_since(stale.since) <= RECHECK + Duration::from_millis(700),
                "{pid} still differs from the full read after {:?}: {what}",
                now.duration_since(stale.since)
            );
            assert!(
                stale.renamed_cycles < 2,
                "{pid} has a new comm, yet its facts were not read again: {what}"
            );
        }

        // The test's own processes, once their changes are done (the last
        // at 1 s), stand still: their figures are equal.
        let settled = started.elapsed() > Duration::from_millis(2500);
        let still = [Some(&idle), late.as_ref()];
        let changing = [&execs, &rewrites, &renames].map(|c| settled.then_some(c));
        for child in still.into_iter().chain(changing).flatten() {
            let sample = find(&snapshot, child.pid());
            let Some(t) = truth.get(&child.pid()) else {
                panic!("{} vanished", child.pid())
            };
            let what = format!("{sample:?} vs {t:?}");
            assert_eq!(sample.threads, Some(t.threads), "{what}");
            assert_eq!(sample.memory_virtual_bytes, t.virtual_bytes, "{what}");
            assert_eq!(sample.memory_rss_bytes, t.rss_bytes, "{what}");
            assert_eq!(sample.start_time, t.start_time, "{what}");
            assert_eq!(Some(sample.disk_read_bytes), t.read_bytes, "{what}");
            assert_eq!(Some(sample.disk_written_bytes), t.write_bytes, "{what}");
            assert_eq!(sample.handles, t.fds, "{what}");
            assert_eq!(sample.status.as_str(), "sleeping", "{what}");
            assert_eq!(t.state, 'S', "{what}");
        }
        if exited {
            assert!(
                !snapshot.processes.iter().any(|p| p.pid == exits.pid()),
                "an exited process is still listed"
            );
            exits_seen_gone = true;
        }
        // Processes of the machine that stood still (no CPU used) have the
        // same figures; busy ones may drift within the cycle, and a rare
        // idle one too (memory reclaimed meanwhile).
        let idle_mismatches: Vec<String> = snapshot
            .processes
            .iter()
            .filter(|p| p.cpu_percent == 0.0)
            .filter_map(|p| Some((p, truth.get(&p.pid)?)))
            // One just started may not have used a whole tick yet.
            .filter(|(p, t)| same_process(p, t) && t.started_after_boot < began - 1.0)
            .filter(|(p, t)| {
                p.threads != Some(t.threads)
                    || p.memory_virtual_bytes != t.virtual_bytes
                    || p.memory_rss_bytes.abs_diff(t.rss_bytes) > p.memory_rss_bytes / 10
            })
            .map(|(p, t)| format!("{} {}: {p:?} vs {t:?}", p.pid, p.name))
            .collect();
        assert!(
            idle_mismatches.len() <= 2,
            "idle processes with other figures: {idle_mismatches:#?}"
        );
    }
    assert!(cycles >= 6, "only {cycles} cycles");
    assert!(exits_seen_gone);

    // By now every change has been seen.
    let last = collector.snapshot(INTERVAL);
    let execs = find(&last, execs.pid());
    assert_eq!(execs.name, "sleep");
    assert_eq!(execs.cmd, ["sleep", "31"]);
    assert_eq!(find(&last, rewrites.pid()).cmd, ["perl"]);
    let renames = find(&last, renames.pid());
    assert_eq!(renames.name, "renamed by test");
    assert_eq!(renames.cmd, ["renamed by test"]);
    let late = late.expect("started during the run");
    assert_eq!(find(&last, late.pid()).cmd, ["sleep", "32"]);
    assert_eq!(find(&last, idle.pid()).cmd, ["sleep", "30"]);
}

/// Ticks used by `pid` so far, read by the test itself.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_busy_loop_reads_one_core_and_a_sleeper_none() {
    let busy = spawn("sh", &["-c", "while :; do :; done"]);
    let idle = spawn("sleep", &["33"]);
    let mut collector = Collector::new();
    let _baseline = collector.snapshot(INTERVAL);
    let ticks_before = cpu_ticks(busy.pid());
    let measured_from = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let snapshot = collector.snapshot(INTERVAL);
    let seconds = measured_from.elapsed().as_secs_f64();
    let expected =
        (cpu_ticks(busy.pid()) - ticks_before) as f64 / getconf("CLK_TCK") as f64 / seconds * 100.0;
    let reported = f64::from(find(&snapshot, busy.pid()).cpu_percent);
    // One core at most; less only if other work on this machine takes
    // the loop's core, which the test's own reading then shows too.
    assert!(
        reported <= 105.0 && (reported - expected).abs() < 12.0,
        "a busy loop read {reported:.1} %, the test measured {expected:.1} %"
    );
    if expected > 90.0 {
        assert!(reported > 85.0, "a busy loop read {reported:.1} %");
    }
    assert_eq!(find(&snapshot, idle.pid()).cpu_percent, 0.0);
}
