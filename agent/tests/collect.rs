//! The collector against this machine's real processes.

use std::path::Path;
#[cfg(unix)]
use std::process::{Child, Command, Stdio};
#[cfg(unix)]
use std::thread;
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

use chrono::Utc;
use procmon_agent::Collector;
use procmon_model::{ProcessSample, Snapshot};

const INTERVAL: Duration = Duration::from_secs(2);

fn find(snapshot: &Snapshot, pid: u32) -> &ProcessSample {
    snapshot
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("pid {pid} is not in the snapshot"))
}

/// Kills the child even when an assertion fails first.
#[cfg(unix)]
struct Reaped(Child);

#[cfg(unix)]
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
fn spawn(program: &str, args: &[&str]) -> Reaped {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    // Let exec finish, so the child is `program` and not still a copy of us.
    thread::sleep(Duration::from_millis(100));
    Reaped(child)
}

#[test]
fn the_host_carries_the_labels_it_was_given() {
    let labels = vec!["prod".to_owned(), "role=db".to_owned()];
    let snapshot = Collector::new()
        .with_labels(labels.clone())
        .snapshot(INTERVAL);
    assert_eq!(snapshot.host.labels, labels);
    assert!(Collector::new().snapshot(INTERVAL).host.labels.is_empty());
}

#[test]
fn finds_this_process_with_its_parent_name_and_figures() {
    let snapshot = Collector::new().snapshot(INTERVAL);
    let me = find(&snapshot, std::process::id());

    #[cfg(unix)]
    assert_eq!(me.parent_pid, Some(std::os::unix::process::parent_id()));
    let exe = std::env::current_exe().unwrap();
    let file_name = exe.file_name().unwrap().to_string_lossy();
    // Linux keeps only 15 bytes of a process name.
    assert!(
        file_name.starts_with(&me.name),
        "name {:?} should start the file name {file_name:?}",
        me.name
    );
    assert_eq!(me.exe.as_deref().map(Path::new), Some(exe.as_path()));
    assert_eq!(me.cmd.first().map(Path::new), Some(exe.as_path()));

    assert!(
        me.memory_rss_bytes > 1024 * 1024,
        "rss {}",
        me.memory_rss_bytes
    );
    assert!(me.memory_virtual_bytes >= me.memory_rss_bytes);
    assert!(me.threads.unwrap_or(1) >= 1);
    let age = Utc::now() - me.start_time;
    assert!(
        age >= chrono::Duration::zero() - chrono::Duration::seconds(1)
            && age < chrono::Duration::minutes(30),
        "this test started {age} ago, by its start time {}",
        me.start_time
    );
    assert!(me.user.as_deref().is_some_and(|u| !u.is_empty()));
    assert_eq!(snapshot.interval_ms, 2000);
}

#[test]
fn host_facts_are_sane() {
    let snapshot = Collector::new().snapshot(INTERVAL);
    let host = &snapshot.host;
    assert!(!host.id.is_empty());
    assert_ne!(
        host.id, host.hostname,
        "the host id must not be the hostname"
    );
    assert!(!host.os_name.is_empty());
    assert!(host.cpu_count >= 1);
    assert!(host.memory_total_bytes > 64 * 1024 * 1024);
    assert!(host.boot_time < snapshot.collected_at);
    assert_eq!(host.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(host.arch, std::env::consts::ARCH);
    // Snapshots of one collector are distinct and of one host.
    let mut collector = Collector::new();
    let (a, b) = (collector.snapshot(INTERVAL), collector.snapshot(INTERVAL));
    assert_ne!(a.id, b.id);
    assert_eq!(a.host.id, b.host.id);
}

#[cfg(unix)]
#[test]
fn a_spawned_child_appears_under_this_process_with_its_command_line() {
    let child = spawn("sleep", &["37"]);
    let snapshot = Collector::new().snapshot(INTERVAL);
    let sample = find(&snapshot, child.0.id());
    assert_eq!(sample.parent_pid, Some(std::process::id()));
    assert_eq!(sample.name, "sleep");
    assert_eq!(sample.cmd, ["sleep", "37"]);
    assert!(sample.exe.as_deref().is_some_and(|e| e.ends_with("sleep")));
    assert_eq!(sample.status, procmon_model::ProcessStatus::Sleeping);
}

/// Linux allows command lines of about 2 MiB, the server takes 256 KiB:
/// the collector keeps the start of a longer one, cut to the limit, rather
/// than have the whole snapshot refused.
#[cfg(target_os = "linux")]
#[test]
fn a_command_line_over_the_limit_is_cut_to_fit_keeping_its_start() {
    use procmon_model::limits::{cmd_bytes, MAX_CMD_BYTES};

    // `sleep` adds up its arguments, and each of these reads as 0 seconds:
    // 12 x 100 KiB, well over the limit and within what Linux allows.
    let zeros = "0".repeat(100 * 1024);
    let mut args = vec!["30"];
    args.extend(std::iter::repeat_n(zeros.as_str(), 12));
    let child = spawn("sleep", &args);
    let snapshot = Collector::new().snapshot(INTERVAL);
    let sample = find(&snapshot, child.0.id());
    assert_eq!(sample.name, "sleep");
    assert_eq!(sample.status, procmon_model::ProcessStatus::Sleeping);
    assert_eq!(cmd_bytes(&sample.cmd), MAX_CMD_BYTES);
    assert_eq!(&sample.cmd[..4], ["sleep", "30", &zeros, &zeros]);
    assert_eq!(sample.cmd.len(), 5, "two arguments whole, the third cut");
    assert!(sample.cmd[4].len() < zeros.len() && zeros.starts_with(&sample.cmd[4]));
}

#[cfg(target_os = "linux")]
#[test]
fn a_long_program_name_is_reported_whole_though_linux_cuts_it() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("procmon_test_sleeper_with_a_long_name");
    let sleep = Command::new("sh")
        .args(["-c", "command -v sleep"])
        .output()
        .unwrap();
    let sleep = String::from_utf8(sleep.stdout).unwrap();
    std::fs::copy(sleep.trim(), &long).unwrap();
    let child = spawn(long.to_str().unwrap(), &["39"]);
    let snapshot = Collector::new().snapshot(INTERVAL);
    assert_eq!(
        find(&snapshot, child.0.id()).name,
        "procmon_test_sleeper_with_a_long_name"
    );
}

#[cfg(unix)]
#[test]
fn a_busy_child_uses_cpu_by_the_second_snapshot() {
    let busy = spawn("sh", &["-c", "while :; do :; done"]);
    let mut collector = Collector::new();
    let _first = collector.snapshot(INTERVAL);
    thread::sleep(Duration::from_millis(500));
    let second = collector.snapshot(INTERVAL);
    let sample = find(&second, busy.0.id());
    let ceiling = second.host.cpu_count as f32 * 100.0;
    assert!(
        sample.cpu_percent > 5.0 && sample.cpu_percent <= ceiling,
        "a spinning shell used {}% CPU",
        sample.cpu_percent
    );
    // An idle sleeper next to it stays near zero.
    let idle = spawn("sleep", &["38"]);
    let third = collector.snapshot(INTERVAL);
    assert!(find(&third, idle.0.id()).cpu_percent < 5.0);
}

#[test]
fn the_first_snapshot_already_has_cpu_figures() {
    // `new` takes a baseline, so the first snapshot measures something: the
    // machine as a whole is never at exactly zero.
    let snapshot = Collector::new().snapshot(INTERVAL);
    let total: f32 = snapshot.processes.iter().map(|p| p.cpu_percent).sum();
    assert!(total > 0.0, "no CPU use at all in the first snapshot");
    assert!(snapshot.processes.iter().all(|p| p.cpu_percent.is_finite()));
}

#[cfg(unix)]
#[test]
fn a_storm_of_short_lived_processes_never_breaks_a_snapshot() {
    let stop = Instant::now() + Duration::from_secs(3);
    let storm = thread::spawn(move || {
        let mut started = 0;
        while Instant::now() < stop {
            let children: Vec<_> = (0..8)
                .filter_map(|_| Command::new("true").spawn().ok())
                .collect();
            for mut child in children {
                let _ = child.wait();
                started += 1;
            }
        }
        started
    });
    let mut collector = Collector::new();
    let mut snapshots = 0;
    while Instant::now() < stop {
        let snapshot = collector.snapshot(INTERVAL);
        find(&snapshot, std::process::id());
        snapshots += 1;
    }
    let started = storm.join().expect("the storm thread ended");
    assert!(started > 50, "only {started} processes came and went");
    assert!(snapshots >= 3, "only {snapshots} snapshots in 3 s");
}

#[test]
fn every_process_is_listed_once() {
    let snapshot = Collector::new().snapshot(INTERVAL);
    let mut pids: Vec<u32> = snapshot.processes.iter().map(|p| p.pid).collect();
    let listed = pids.len();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), listed, "a pid is listed twice");
    // Threads are not processes: this test binary runs tests on several
    // threads, yet only its own pid is listed.
    #[cfg(target_os = "linux")]
    {
        let tasks = std::fs::read_dir("/proc/self/task").unwrap().count();
        let me = find(&snapshot, std::process::id());
        assert!(me.threads.unwrap() as usize >= 1 && tasks >= 1);
        let on_proc = std::fs::read_dir("/proc")
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().bytes().all(|b| b.is_ascii_digit())
            })
            .count();
        // Processes come and go between the two listings, but not hundreds.
        assert!(
            listed.abs_diff(on_proc) < 50,
            "{listed} processes in the snapshot, {on_proc} in /proc"
        );
    }
}
