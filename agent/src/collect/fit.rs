//! Fitting a snapshot within the limits the server enforces
//! ([`procmon_model::limits`]).
//!
//! The server refuses a whole snapshot when any one process breaks a limit,
//! so without this one odd process (Linux allows command lines of 2 MiB;
//! under Wine sysinfo once gave start times in the year 21086) would get
//! every snapshot of its host refused, and the host would vanish from the
//! page. [`fit`] cuts what is too long, replaces what is impossible and
//! says what it did, so the caller can tell people once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use procmon_model::limits::{
    cmd_bytes, is_storable_time, INTERVAL_MS, MAX_CMD_ARGS, MAX_CMD_BYTES, MAX_CPU_PERCENT,
    MAX_HOST_FIELD, MAX_NAME, MAX_PATH, MAX_PROCESSES, MAX_SNAPSHOT_CMD_ARGS,
};
use procmon_model::Snapshot;

/// How far past the snapshot's own time a start or boot time may lie before
/// it counts as impossible. Both come from this machine's clock, so they
/// should never be later at all; a day leaves room for an OS that reports
/// local time as UTC.
const FUTURE_SLACK: TimeDelta = TimeDelta::days(1);

/// One kind of change [`fit`] can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cut {
    /// A host fact (id, hostname, OS, kernel...) cut to `MAX_HOST_FIELD`.
    HostField,
    /// A boot time that cannot be true, replaced by the Unix epoch.
    BootTime,
    /// The interval moved into `INTERVAL_MS`.
    Interval,
    /// A second process with a pid already listed, dropped.
    DuplicatePid,
    /// Processes beyond `MAX_PROCESSES` (the highest pids), dropped.
    TooManyProcesses,
    /// A process name cut to `MAX_NAME`.
    Name,
    /// A user name cut to `MAX_NAME`.
    User,
    /// An executable path cut to `MAX_PATH`.
    Exe,
    /// A command line cut to `MAX_CMD_BYTES`.
    CommandLine,
    /// A command line cut to `MAX_CMD_ARGS` arguments, or to what is left
    /// of `MAX_SNAPSHOT_CMD_ARGS`.
    CommandArgs,
    /// A start time that cannot be true, replaced by the boot time.
    StartTime,
    /// A negative CPU %, made 0.
    CpuPercent,
    /// A CPU % over `MAX_CPU_PERCENT`, lowered to it.
    CpuPercentHigh,
    /// A host id with spaces around it, trimmed (the server refuses those).
    HostIdSpaces,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cut::HostField => "host fact cut",
            Cut::BootTime => "impossible boot time replaced by 1970-01-01",
            Cut::Interval => "interval moved into the range the server accepts",
            Cut::DuplicatePid => "process with a pid already listed dropped",
            Cut::TooManyProcesses => "processes beyond the most one snapshot may hold dropped",
            Cut::Name => "process name cut",
            Cut::User => "user name cut",
            Cut::Exe => "executable path cut",
            Cut::CommandLine => "command line cut",
            Cut::StartTime => "impossible start time replaced by the boot time",
            Cut::CpuPercent => "negative CPU % made 0",
            Cut::CpuPercentHigh => "CPU % over 100 per core for 4096 cores lowered to that",
            Cut::HostIdSpaces => "spaces around the host id removed",
            Cut::CommandArgs => "command line cut to the most arguments the server accepts",
        })
    }
}

/// What [`fit`] changed: for each kind of change, how many times it was
/// made and the first one described.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cuts(BTreeMap<Cut, (usize, String)>);

impl Cuts {
    /// True when the snapshot was already within every limit.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many times `kind` of change was made.
    pub fn count(&self, kind: Cut) -> usize {
        self.0.get(&kind).map_or(0, |(count, _)| *count)
    }

    /// Each kind of change made, with its count and first instance.
    pub fn iter(&self) -> impl Iterator<Item = (Cut, usize, &str)> {
        self.0
            .iter()
            .map(|(kind, (count, first))| (*kind, *count, first.as_str()))
    }

    fn note(&mut self, kind: Cut, describe: impl FnOnce() -> String) {
        self.note_many(kind, 1, describe);
    }

    fn note_many(&mut self, kind: Cut, count: usize, describe: impl FnOnce() -> String) {
        self.0.entry(kind).or_insert_with(|| (0, describe())).0 += count;
    }
}

/// Brings `snapshot` within every limit of [`procmon_model::limits`], so the
/// server accepts it, changing as little as it can:
///
/// - strings too long are cut at a character boundary; of a command line
///   the leading arguments are kept whole as far as they fit and the next
///   one is cut, so people still see how it starts;
/// - a pid listed twice keeps its first process; beyond `MAX_PROCESSES`
///   the lowest pids are kept (the system's own processes come first). The
///   processes end up in pid order;
/// - impossible boot and start times are replaced: a start time by the
///   boot time, so it stays the same every cycle (see `fit_times`);
/// - the interval is moved into `INTERVAL_MS`, a negative CPU % made 0.
///
/// The snapshot's own time is left alone: it is the clock it is, and the
/// server copes with clocks that are wrong.
pub fn fit(snapshot: &mut Snapshot) -> Cuts {
    let mut cuts = Cuts::default();

    let host = &mut snapshot.host;
    if host.id.trim() != host.id {
        let before = host.id.clone();
        host.id = before.trim().to_owned();
        cuts.note(Cut::HostIdSpaces, || format!("host.id was {before:?}"));
    }
    for (field, value) in [
        ("id", &mut host.id),
        ("hostname", &mut host.hostname),
        ("os_name", &mut host.os_name),
        ("os_version", &mut host.os_version),
        ("kernel", &mut host.kernel),
        ("arch", &mut host.arch),
        ("agent_version", &mut host.agent_version),
    ] {
        let before = value.len();
        if truncate_utf8(value, MAX_HOST_FIELD) {
            cuts.note(Cut::HostField, || {
                format!("host.{field} cut from {before} to {} bytes", value.len())
            });
        }
    }

    let clamped = snapshot
        .interval_ms
        .clamp(*INTERVAL_MS.start(), *INTERVAL_MS.end());
    if clamped != snapshot.interval_ms {
        let before = snapshot.interval_ms;
        cuts.note(Cut::Interval, || {
            format!("interval {before} ms sent as {clamped} ms")
        });
        snapshot.interval_ms = clamped;
    }

    let processes = &mut snapshot.processes;
    // A stable sort keeps the first of two processes with one pid first.
    processes.sort_by_key(|p| p.pid);
    let listed = processes.len();
    processes.dedup_by(|later, earlier| {
        let twice = later.pid == earlier.pid;
        if twice {
            cuts.note(Cut::DuplicatePid, || {
                format!("pid {} listed twice", later.pid)
            });
        }
        twice
    });
    if processes.len() > MAX_PROCESSES {
        let over = processes.len() - MAX_PROCESSES;
        let highest_kept = processes[MAX_PROCESSES - 1].pid;
        processes.truncate(MAX_PROCESSES);
        cuts.note_many(Cut::TooManyProcesses, over, || {
            format!("{listed} processes: those above pid {highest_kept} dropped")
        });
    }

    let mut args_left = MAX_SNAPSHOT_CMD_ARGS;
    for p in processes.iter_mut() {
        let pid = p.pid;
        let before = p.name.len();
        if truncate_utf8(&mut p.name, MAX_NAME) {
            cuts.note(Cut::Name, || {
                format!(
                    "name of pid {pid} cut from {before} to {} bytes",
                    p.name.len()
                )
            });
        }
        if let Some(user) = &mut p.user {
            let before = user.len();
            if truncate_utf8(user, MAX_NAME) {
                cuts.note(Cut::User, || {
                    format!(
                        "user of pid {pid} cut from {before} to {} bytes",
                        user.len()
                    )
                });
            }
        }
        if let Some(exe) = &mut p.exe {
            let before = exe.len();
            if truncate_utf8(exe, MAX_PATH) {
                cuts.note(Cut::Exe, || {
                    format!("exe of pid {pid} cut from {before} to {} bytes", exe.len())
                });
            }
        }
        let before = cmd_bytes(&p.cmd);
        if fit_cmd(&mut p.cmd, MAX_CMD_BYTES) {
            cuts.note(Cut::CommandLine, || {
                format!(
                    "command line of pid {pid} ({}) cut from {before} to {} bytes",
                    p.name,
                    cmd_bytes(&p.cmd)
                )
            });
        }
        let most = MAX_CMD_ARGS.min(args_left);
        if p.cmd.len() > most {
            let before = p.cmd.len();
            p.cmd.truncate(most);
            cuts.note(Cut::CommandArgs, || {
                format!(
                    "command line of pid {pid} ({}) cut from {before} to {most} arguments",
                    p.name
                )
            });
        }
        args_left -= p.cmd.len();
        if p.cpu_percent < 0.0 || !p.cpu_percent.is_finite() {
            let before = p.cpu_percent;
            cuts.note(Cut::CpuPercent, || {
                format!("CPU % of pid {pid} was {before}")
            });
            p.cpu_percent = 0.0;
        } else if p.cpu_percent > MAX_CPU_PERCENT {
            let before = p.cpu_percent;
            cuts.note(Cut::CpuPercentHigh, || {
                format!("CPU % of pid {pid} was {before}")
            });
            p.cpu_percent = MAX_CPU_PERCENT;
        }
    }

    fit_times(snapshot, &mut cuts);
    cuts
}

/// Replaces boot and start times that cannot be true: before 1970 (no
/// running machine booted earlier, and the server stores nothing before
/// 1677) or more than [`FUTURE_SLACK`] after the snapshot was taken (the
/// server stores nothing after 2262).
///
/// A start time is part of a process's identity (host, pid, start time), so
/// its replacement must be the same in every snapshot, or the process would
/// look new each time: the boot time is (it is also the earliest the process
/// can have started), the snapshot's time is not. An impossible boot time
/// becomes the Unix epoch, which the agent also reports when the OS does
/// not say when it booted.
fn fit_times(snapshot: &mut Snapshot, cuts: &mut Cuts) {
    let latest = snapshot
        .collected_at
        .checked_add_signed(FUTURE_SLACK)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let possible = |time: DateTime<Utc>| {
        time >= DateTime::UNIX_EPOCH && time <= latest && is_storable_time(time)
    };

    let boot_time = snapshot.host.boot_time;
    if !possible(boot_time) {
        cuts.note(Cut::BootTime, || format!("host.boot_time was {boot_time}"));
        snapshot.host.boot_time = DateTime::UNIX_EPOCH;
    }
    let boot_time = snapshot.host.boot_time;
    for p in &mut snapshot.processes {
        if !possible(p.start_time) {
            let (pid, before) = (p.pid, p.start_time);
            cuts.note(Cut::StartTime, || {
                format!("start time of pid {pid} was {before}")
            });
            p.start_time = boot_time;
        }
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary so it stays
/// valid UTF-8 (it may end up a few bytes shorter than `max`). True when it
/// was cut.
pub fn truncate_utf8(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// Cuts a command line to at most `max` bytes, all arguments together: the
/// leading arguments that fit are kept whole, the next one is cut to the
/// room left (and dropped if nothing of it fits), the rest are dropped.
/// True when it was cut.
pub fn fit_cmd(cmd: &mut Vec<String>, max: usize) -> bool {
    let mut room = max;
    let Some(first_over) = cmd
        .iter()
        .position(|arg| match room.checked_sub(arg.len()) {
            Some(left) => {
                room = left;
                false
            }
            None => true,
        })
    else {
        return false;
    };
    truncate_utf8(&mut cmd[first_over], room);
    let keep = if cmd[first_over].is_empty() {
        first_over
    } else {
        first_over + 1
    };
    cmd.truncate(keep);
    true
}

/// Tells people about cuts without repeating itself every cycle: the first
/// time each kind of change is made it is a warning, later only debug.
#[derive(Debug, Default)]
pub(super) struct CutLog {
    warned: BTreeSet<Cut>,
}

impl CutLog {
    pub(super) fn log(&mut self, cuts: &Cuts) {
        for (kind, count, first) in cuts.iter() {
            if self.warned.insert(kind) {
                tracing::warn!(
                    "snapshot fitted within the server's limits: {kind} ({count}x, e.g. {first}); \
                     said once, later ones are logged at debug level"
                );
            } else {
                tracing::debug!("snapshot fitted: {kind} ({count}x, e.g. {first})");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn at(year: i32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(year, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    }

    use procmon_model::fixtures::process;

    /// The shared test snapshot, with processes of these pids.
    fn snapshot(pids: &[u32]) -> Snapshot {
        let mut s = procmon_model::fixtures::snapshot("0123456789abcdef", 0);
        s.processes = pids
            .iter()
            .map(|&pid| process(pid, s.collected_at))
            .collect();
        s
    }

    #[test]
    fn argument_counts_cpu_and_host_id_are_fitted() {
        let mut s = snapshot(&[1, 2, 3]);
        s.host.id = " 0123456789abcdef\n".into();
        s.processes[0].cmd = vec![String::new(); MAX_CMD_ARGS + 5];
        s.processes[1].cpu_percent = 3e38;
        let cuts = fit(&mut s);
        assert_eq!(s.host.id, "0123456789abcdef");
        assert_eq!(s.processes[0].cmd.len(), MAX_CMD_ARGS);
        assert_eq!(s.processes[1].cpu_percent, MAX_CPU_PERCENT);
        assert_eq!(cuts.count(Cut::HostIdSpaces), 1);
        assert_eq!(cuts.count(Cut::CommandArgs), 1);
        assert_eq!(cuts.count(Cut::CpuPercentHigh), 1);

        // The snapshot-wide count: the later processes get what is left.
        let per_process = MAX_CMD_ARGS;
        let full = MAX_SNAPSHOT_CMD_ARGS / per_process;
        let pids: Vec<u32> = (1..=full as u32 + 2).collect();
        let mut s = snapshot(&pids);
        for p in &mut s.processes {
            p.cmd = vec![String::new(); per_process];
        }
        let cuts = fit(&mut s);
        let total: usize = s.processes.iter().map(|p| p.cmd.len()).sum();
        assert_eq!(total, MAX_SNAPSHOT_CMD_ARGS);
        assert_eq!(
            s.processes[full].cmd.len(),
            MAX_SNAPSHOT_CMD_ARGS - full * per_process
        );
        assert!(s.processes[full + 1].cmd.is_empty());
        assert_eq!(cuts.count(Cut::CommandArgs), 2);
    }

    #[test]
    fn short_strings_are_left_alone() {
        let mut text = "sleep".to_owned();
        assert!(!truncate_utf8(&mut text, 5));
        assert_eq!(text, "sleep");
    }

    #[test]
    fn long_ascii_is_cut_to_the_limit() {
        let mut text = "x".repeat(MAX_NAME + 10);
        assert!(truncate_utf8(&mut text, MAX_NAME));
        assert_eq!(text, "x".repeat(MAX_NAME));
    }

    #[test]
    fn multi_byte_text_is_cut_before_a_character_not_inside_it() {
        // "é" is 2 bytes, "日" 3, "🦀" 4: a cut at 6 bytes falls inside the
        // crab, which goes whole.
        let mut text = "é日🦀z".to_owned();
        assert!(truncate_utf8(&mut text, 6));
        assert_eq!(text, "é日");
        let mut text = "日".repeat(1000); // 3000 bytes
        assert!(truncate_utf8(&mut text, 1024));
        assert_eq!(text.len(), 1023);
        assert!(text.chars().all(|c| c == '日'));
        let mut text = "🦀".to_owned();
        assert!(truncate_utf8(&mut text, 3));
        assert_eq!(text, "");
    }

    #[test]
    fn a_command_line_keeps_its_leading_arguments_and_cuts_the_next() {
        let mut cmd = vec![
            "prog".to_owned(),
            "ab".to_owned(),
            "cdef".to_owned(),
            "gh".to_owned(),
        ];
        assert!(fit_cmd(&mut cmd, 8));
        assert_eq!(cmd, ["prog", "ab", "cd"]);
        // An argument of which nothing fits is dropped, not left empty.
        let mut cmd = vec!["prog".to_owned(), "ab".to_owned(), "cdef".to_owned()];
        assert!(fit_cmd(&mut cmd, 6));
        assert_eq!(cmd, ["prog", "ab"]);
        // One that fits exactly is untouched.
        let mut cmd = vec!["prog".to_owned(), "ab".to_owned()];
        assert!(!fit_cmd(&mut cmd, 6));
        assert_eq!(cmd, ["prog", "ab"]);
        // A single huge argument (a rewritten command line) is cut.
        let mut cmd = vec!["é".repeat(MAX_CMD_BYTES)];
        assert!(fit_cmd(&mut cmd, MAX_CMD_BYTES));
        assert_eq!(cmd.len(), 1);
        assert_eq!(cmd_bytes(&cmd), MAX_CMD_BYTES);
        // Cut inside a multi-byte character: it goes whole.
        let mut cmd = vec!["ab".to_owned(), "日日".to_owned()];
        assert!(fit_cmd(&mut cmd, 7));
        assert_eq!(cmd, ["ab", "日"]);
    }

    #[test]
    fn a_two_megabyte_command_line_is_cut_to_the_limit() {
        // As Linux allows: many arguments of up to 128 KiB each.
        let arg = 128 * 1024 - 1;
        let mut cmd = vec!["sleep".to_owned(), "30".to_owned()];
        cmd.extend((b'a'..=b'p').map(|c| char::from(c).to_string().repeat(arg)));
        assert!(cmd_bytes(&cmd) > 2_000_000);
        assert!(fit_cmd(&mut cmd, MAX_CMD_BYTES));
        assert_eq!(cmd_bytes(&cmd), MAX_CMD_BYTES);
        assert_eq!(&cmd[..2], ["sleep", "30"]);
        assert_eq!(cmd[2], "a".repeat(arg));
        assert_eq!(cmd[3], "b".repeat(MAX_CMD_BYTES - "sleep30".len() - arg));
        assert_eq!(cmd.len(), 4);
    }

    #[test]
    fn a_snapshot_within_the_limits_is_unchanged() {
        let mut s = snapshot(&[1, 2, 3]);
        let before = s.clone();
        assert!(fit(&mut s).is_empty());
        assert_eq!(s, before);
    }

    #[test]
    fn every_field_too_long_is_cut() {
        let mut s = snapshot(&[1, 2]);
        s.host.hostname = "h".repeat(300);
        s.host.kernel = "ü".repeat(200); // 400 bytes
        s.processes[0].name = "n".repeat(MAX_NAME + 1);
        s.processes[0].user = Some("u".repeat(MAX_NAME * 2));
        s.processes[1].exe = Some("/".repeat(MAX_PATH + 1));
        s.processes[1].cmd = vec!["c".repeat(MAX_CMD_BYTES + 1)];
        let cuts = fit(&mut s);

        assert_eq!(s.host.hostname.len(), MAX_HOST_FIELD);
        assert_eq!(s.host.kernel, "ü".repeat(128));
        assert_eq!(cuts.count(Cut::HostField), 2);
        assert_eq!(s.processes[0].name.len(), MAX_NAME);
        assert_eq!(s.processes[0].user.as_ref().unwrap().len(), MAX_NAME);
        assert_eq!(s.processes[1].exe.as_ref().unwrap().len(), MAX_PATH);
        assert_eq!(cmd_bytes(&s.processes[1].cmd), MAX_CMD_BYTES);
        for kind in [Cut::Name, Cut::User, Cut::Exe, Cut::CommandLine] {
            assert_eq!(cuts.count(kind), 1, "{kind}");
        }
        let (_, _, first) = cuts.iter().find(|(k, ..)| *k == Cut::CommandLine).unwrap();
        assert!(first.contains("pid 2"), "{first}");
    }

    #[test]
    fn impossible_times_become_the_boot_time() {
        let mut s = snapshot(&[1, 2, 3, 4, 5]);
        let boot = s.host.boot_time;
        let now = s.collected_at;
        s.processes[0].start_time = at(21086); // sysinfo under Wine
        s.processes[1].start_time = at(1500);
        s.processes[2].start_time = at(1969);
        s.processes[3].start_time = now + TimeDelta::hours(2); // within the slack
        let cuts = fit(&mut s);
        assert_eq!(cuts.count(Cut::StartTime), 3);
        assert_eq!(s.processes[0].start_time, boot);
        assert_eq!(s.processes[1].start_time, boot);
        assert_eq!(s.processes[2].start_time, boot);
        assert_eq!(s.processes[3].start_time, now + TimeDelta::hours(2));
        assert_eq!(s.processes[4].start_time, now - TimeDelta::minutes(5));
        // The same input gives the same start time every cycle, so the
        // process keeps its identity.
        let mut again = snapshot(&[1]);
        again.host.boot_time = boot;
        again.processes[0].start_time = at(21086);
        fit(&mut again);
        assert_eq!(again.processes[0].start_time, s.processes[0].start_time);
    }

    #[test]
    fn an_impossible_boot_time_becomes_the_epoch_and_so_do_start_times() {
        let mut s = snapshot(&[1, 2]);
        s.host.boot_time = at(3000);
        s.processes[1].start_time = at(1000);
        let cuts = fit(&mut s);
        assert_eq!(cuts.count(Cut::BootTime), 1);
        assert_eq!(s.host.boot_time, DateTime::UNIX_EPOCH);
        assert_eq!(s.processes[1].start_time, DateTime::UNIX_EPOCH);
        assert!(s.processes[0].start_time > DateTime::UNIX_EPOCH);
    }

    #[test]
    fn a_pid_listed_twice_keeps_its_first_process() {
        let mut s = snapshot(&[5, 7, 1, 7, 5]);
        s.processes[1].name = "first".into();
        s.processes[3].name = "second".into();
        let cuts = fit(&mut s);
        assert_eq!(cuts.count(Cut::DuplicatePid), 2);
        let pids: Vec<u32> = s.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [1, 5, 7]);
        assert_eq!(s.processes[2].name, "first");
    }

    #[test]
    fn beyond_the_most_processes_the_lowest_pids_are_kept() {
        let count = u32::try_from(MAX_PROCESSES).unwrap() + 3;
        let pids: Vec<u32> = (1..=count).rev().collect();
        let mut s = snapshot(&pids);
        let cuts = fit(&mut s);
        assert_eq!(cuts.count(Cut::TooManyProcesses), 3);
        assert_eq!(s.processes.len(), MAX_PROCESSES);
        assert_eq!(s.processes.first().unwrap().pid, 1);
        assert_eq!(s.processes.last().unwrap().pid, count - 3);
    }

    #[test]
    fn the_interval_and_cpu_are_moved_into_range() {
        let mut s = snapshot(&[1]);
        s.interval_ms = 3 * 86_400_000;
        s.processes[0].cpu_percent = -2.0;
        let cuts = fit(&mut s);
        assert_eq!(s.interval_ms, *INTERVAL_MS.end());
        assert_eq!(s.processes[0].cpu_percent, 0.0);
        assert_eq!(cuts.count(Cut::Interval), 1);
        assert_eq!(cuts.count(Cut::CpuPercent), 1);
    }
}
