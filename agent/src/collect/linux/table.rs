//! Every process of this machine, read from `/proc` at close to the least
//! the kernel allows: the process table listed once and one read of each
//! process's `stat` per cycle.
//!
//! Our own reader, not sysinfo's: sysinfo opens `status`, `stat`, `statm`,
//! `io` and `cmdline` and reads the `exe` link of every process on every
//! refresh (about eleven times the least), and it can neither keep a file
//! open per process nor skip fields per process. Here:
//!
//! - Every cycle `/proc` is listed (the only way to learn of new processes)
//!   and each process's `stat` is read once, with `pread` on a descriptor
//!   kept open since the process was first seen. That read fails (`ESRCH`)
//!   once the process has exited, even if a new one has taken its pid.
//! - Facts (command line, executable, owner) are read when a process is
//!   first seen, when its name (`comm`) changes, which `exec` does, and at a
//!   slow recheck every `recheck` (spread over the cycles by pid), which
//!   catches a process rewriting its own arguments: that changes nothing
//!   else the kernel shows.
//! - Disk I/O and the descriptor count are read only when the process used
//!   CPU since the last cycle, or at the recheck; otherwise the last values
//!   are carried.
//!
//! A process is its pid *and* its start: a pid seen again with another
//! start is a new process, read afresh, never compared with the old one.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use procmon_model::ProcessSample;
use sysinfo::{CpuRefreshKind, System, Uid};

use super::stat::{self, Stat};
use super::StartClock;
use crate::collect::users::UserNames;
use crate::collect::{full_name, status_of};

/// Descriptors left for everything else the agent opens (its sockets, log,
/// and the files read here once) when deciding how many `stat` files to
/// keep open.
const FD_RESERVE: u64 = 256;

/// The process table and what is remembered of each process between cycles.
pub(in crate::collect) struct ProcessTable {
    entries: HashMap<u32, Entry>,
    users: UserNames,
    recheck: Duration,
    clock_ticks_per_sec: u64,
    page_size: u64,
    /// Start times, as actions compute them too.
    start_clock: &'static StartClock,
    max_cpu_percent: f32,
    /// How many `stat` files may be kept open; past it, a process's `stat`
    /// is opened, read and closed each cycle.
    fd_budget: usize,
    fds_kept: usize,
    cycle: u64,
    /// What the last cycle read, for tests and the debug log.
    counts: CycleCounts,
    last_read: Option<LastRead>,
    stat_buf: Vec<u8>,
    buf: Vec<u8>,
}

/// What one cycle read beyond each process's `stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CycleCounts {
    processes: usize,
    /// `stat` files opened (new processes, or past the descriptor budget).
    stat_opened: usize,
    /// Processes whose command line, executable and owner were read.
    facts_read: usize,
    /// Processes whose disk I/O and descriptors were read.
    counters_read: usize,
}

/// When the previous cycle began.
#[derive(Clone, Copy)]
struct LastRead {
    at: Instant,
    /// The same moment in clock ticks since boot, the clock of `stat`'s
    /// start field.
    boot_ticks: u64,
}

/// What is kept of one process between cycles.
struct Entry {
    /// Its `stat`, kept open to be read again with `pread`; `None` past the
    /// descriptor budget.
    stat_file: Option<File>,
    /// With the pid, names the process.
    start_ticks: u64,
    cpu_ticks: u64,
    /// The name the facts were read under; another one means `exec`.
    comm: Vec<u8>,
    name: String,
    exe: Option<String>,
    cmd: Vec<String>,
    user: Option<String>,
    disk_read_bytes: u64,
    disk_written_bytes: u64,
    handles: Option<u32>,
    /// `io` was refused (another user's process): not asked again before
    /// the recheck.
    io_denied: bool,
    next_recheck: Instant,
    seen_in: u64,
}

impl ProcessTable {
    /// A table that reads facts again every `recheck`, with a first reading
    /// of every process taken as the baseline for CPU %. `system` is the
    /// collector's, for host facts: it is given the CPU list once, which
    /// sysinfo otherwise learns while refreshing processes.
    pub(in crate::collect) fn new(system: &mut System, recheck: Duration) -> Self {
        system.refresh_cpu_list(CpuRefreshKind::nothing());
        let mut table = Self::with_fd_budget(recheck, descriptor_budget());
        drop(table.read(system));
        table
    }

    fn with_fd_budget(recheck: Duration, fd_budget: usize) -> Self {
        // SAFETY: sysconf only reads a configuration value.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        // SAFETY: as above.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
        ProcessTable {
            entries: HashMap::new(),
            users: UserNames::new(),
            recheck,
            clock_ticks_per_sec: super::clock_ticks_per_sec(),
            page_size: u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096),
            start_clock: StartClock::get(),
            max_cpu_percent: cpus as f32 * 100.0,
            fd_budget,
            fds_kept: 0,
            cycle: 0,
            counts: CycleCounts::default(),
            last_read: None,
            stat_buf: Vec::with_capacity(1024),
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Reads every process once. The first call (made by `new`) only takes
    /// a baseline for CPU %: every process then reads 0 %.
    pub(in crate::collect) fn read(&mut self, _system: &mut System) -> Vec<ProcessSample> {
        let now = Instant::now();
        let read_now = LastRead {
            at: now,
            boot_ticks: boot_ticks(self.clock_ticks_per_sec),
        };
        let span = self.last_read.replace(read_now).map(|before| Span {
            seconds: now.duration_since(before.at).as_secs_f64(),
            began_at_ticks: before.boot_ticks,
        });
        self.cycle += 1;
        self.counts = CycleCounts::default();
        let mut samples = Vec::with_capacity(self.entries.len() + 64);
        let listing = match fs::read_dir("/proc") {
            Ok(listing) => listing,
            Err(error) => {
                tracing::warn!(%error, "cannot list /proc; no processes this cycle");
                return samples;
            }
        };
        for dir_entry in listing.flatten() {
            let Some(pid) = parse_pid(dir_entry.file_name().as_bytes()) else {
                continue;
            };
            if let Some(sample) = self.read_process(pid, now, span) {
                samples.push(sample);
            }
        }
        // Exited processes go, and their descriptors are closed with them.
        let cycle = self.cycle;
        self.entries.retain(|_, entry| entry.seen_in == cycle);
        self.fds_kept = self
            .entries
            .values()
            .filter(|e| e.stat_file.is_some())
            .count();
        self.counts.processes = samples.len();
        tracing::trace!(counts = ?self.counts, fds_kept = self.fds_kept, "process table read");
        samples
    }

    /// One process; `None` when it exited before its `stat` could be read.
    fn read_process(
        &mut self,
        pid: u32,
        now: Instant,
        span: Option<Span>,
    ) -> Option<ProcessSample> {
        let kept = self.entries.get_mut(&pid).and_then(|e| e.stat_file.take());
        let stat_file = match kept {
            Some(file) if read_stat(&file, &mut self.stat_buf).is_ok() => Some(file),
            kept => {
                // Never kept, or its process has exited (and the pid may
                // now be a new process's): open the pid afresh.
                if kept.is_some() {
                    self.fds_kept -= 1;
                }
                self.counts.stat_opened += 1;
                let file = File::open(format!("/proc/{pid}/stat")).ok()?;
                read_stat(&file, &mut self.stat_buf).ok()?;
                let keep = self.fds_kept < self.fd_budget;
                if keep {
                    self.fds_kept += 1;
                }
                keep.then_some(file)
            }
        };
        let stat = stat::parse(&self.stat_buf)?;
        let reading = Reading {
            start_ticks: stat.start_ticks,
            cpu_ticks: stat.cpu_ticks,
        };

        let (entry, before) = match self.entries.get_mut(&pid) {
            Some(entry) if entry.start_ticks == stat.start_ticks => {
                let before = Reading {
                    start_ticks: entry.start_ticks,
                    cpu_ticks: entry.cpu_ticks,
                };
                entry.stat_file = stat_file;
                let recheck = now >= entry.next_recheck;
                if recheck {
                    entry.next_recheck = now + self.recheck;
                    entry.io_denied = false;
                }
                if recheck || (entry.comm != stat.comm && !stat.kernel_thread) {
                    self.counts.facts_read += 1;
                    read_facts(pid, &stat, entry, &mut self.buf, &mut self.users);
                } else if entry.comm != stat.comm {
                    // A kernel worker names the work it does (kworker/0:1-events)
                    // and renames itself often; it has no facts to read again.
                    entry.comm.clear();
                    entry.comm.extend_from_slice(stat.comm);
                    entry.name = String::from_utf8_lossy(stat.comm).into_owned();
                }
                if recheck || stat.cpu_ticks != entry.cpu_ticks {
                    self.counts.counters_read += 1;
                    read_counters(pid, entry, &mut self.buf);
                }
                entry.cpu_ticks = stat.cpu_ticks;
                (entry, Some(before))
            }
            _ => {
                // First sight, or a new process under a reused pid (whose
                // old entry, and descriptor, this replaces).
                let mut entry = Entry {
                    stat_file,
                    start_ticks: stat.start_ticks,
                    cpu_ticks: stat.cpu_ticks,
                    comm: Vec::new(),
                    name: String::new(),
                    exe: None,
                    cmd: Vec::new(),
                    user: None,
                    disk_read_bytes: 0,
                    disk_written_bytes: 0,
                    handles: None,
                    io_denied: false,
                    next_recheck: now + spread(pid, self.recheck),
                    seen_in: 0,
                };
                read_facts(pid, &stat, &mut entry, &mut self.buf, &mut self.users);
                read_counters(pid, &mut entry, &mut self.buf);
                self.counts.facts_read += 1;
                self.counts.counters_read += 1;
                // The old entry's descriptor was taken above (closed and
                // counted off, or moved into this entry).
                self.entries.insert(pid, entry);
                (self.entries.get_mut(&pid)?, None)
            }
        };
        entry.seen_in = self.cycle;
        let cpu =
            cpu_percent(before, reading, span, self.clock_ticks_per_sec).min(self.max_cpu_percent);
        Some(ProcessSample {
            pid,
            parent_pid: (stat.parent_pid != 0).then_some(stat.parent_pid),
            name: entry.name.clone(),
            exe: entry.exe.clone(),
            cmd: entry.cmd.clone(),
            user: entry.user.clone(),
            start_time: self.start_clock.start_time(stat.start_ticks),
            status: status_of(sysinfo::ProcessStatus::from(stat.state)),
            cpu_percent: cpu,
            memory_rss_bytes: stat.rss_pages.saturating_mul(self.page_size),
            memory_virtual_bytes: stat.virtual_bytes,
            memory_private_bytes: None,
            threads: Some(stat.threads),
            handles: entry.handles,
            disk_read_bytes: entry.disk_read_bytes,
            disk_written_bytes: entry.disk_written_bytes,
        })
    }
}

/// The time since the previous cycle.
#[derive(Debug, Clone, Copy)]
struct Span {
    seconds: f64,
    /// When the previous cycle began, in clock ticks since boot.
    began_at_ticks: u64,
}

/// One process's CPU figures at one reading.
#[derive(Debug, Clone, Copy)]
struct Reading {
    start_ticks: u64,
    cpu_ticks: u64,
}

/// CPU % over `span` (100 = one core): the ticks used since `before`, the
/// same process's previous reading. A process with another start is
/// another process and is never compared with it. A process that started
/// during the span had used nothing at its beginning, so all its ticks
/// count over the whole span; this is what top does for a process new
/// since its last frame. A process older than the span but without a
/// reading (the first cycle of all) has no baseline: 0.
fn cpu_percent(
    before: Option<Reading>,
    now: Reading,
    span: Option<Span>,
    ticks_per_sec: u64,
) -> f32 {
    let Some(span) = span.filter(|s| s.seconds > 0.0) else {
        return 0.0;
    };
    let used = match before {
        Some(before) if before.start_ticks == now.start_ticks => {
            now.cpu_ticks.saturating_sub(before.cpu_ticks)
        }
        _ if now.start_ticks >= span.began_at_ticks => now.cpu_ticks,
        _ => return 0.0,
    };
    (used as f64 / (ticks_per_sec as f64 * span.seconds) * 100.0) as f32
}

/// Reads command line, executable and owner. What cannot be read (a
/// zombie has neither command line nor executable) keeps its last value,
/// as sysinfo did.
fn read_facts(
    pid: u32,
    stat: &Stat<'_>,
    entry: &mut Entry,
    buf: &mut Vec<u8>,
    users: &mut UserNames,
) {
    if read_path(&format!("/proc/{pid}/cmdline"), buf).is_ok() {
        // Empty arguments are skipped, as sysinfo did.
        let cmd: Vec<String> = buf
            .split(|&b| b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        if !cmd.is_empty() || entry.cmd.is_empty() {
            entry.cmd = cmd;
        }
    }
    if let Ok(exe) = fs::read_link(format!("/proc/{pid}/exe")) {
        // A replaced or removed executable reads "<path> (deleted)".
        let exe = exe.as_os_str().as_bytes();
        let exe = exe.strip_suffix(b" (deleted)").unwrap_or(exe);
        entry.exe = Some(String::from_utf8_lossy(exe).into_owned());
    }
    if read_path(&format!("/proc/{pid}/status"), buf).is_ok() {
        if let Some(uid) = real_uid(buf) {
            entry.user = Some(users.name_of(&uid));
        }
    }
    entry.comm.clear();
    entry.comm.extend_from_slice(stat.comm);
    entry.name = full_name(
        &String::from_utf8_lossy(stat.comm),
        entry.exe.as_deref(),
        &entry.cmd,
    );
}

/// The real uid: the first figure of the `Uid:` line of `status`.
fn real_uid(status: &[u8]) -> Option<Uid> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_ascii_whitespace().next()?.parse().ok()
}

/// Reads disk I/O and counts open descriptors.
fn read_counters(pid: u32, entry: &mut Entry, buf: &mut Vec<u8>) {
    entry.handles = super::open_fds(pid);
    if entry.io_denied {
        return;
    }
    match read_path(&format!("/proc/{pid}/io"), buf) {
        Ok(()) => {
            let (read, written) = parse_io(buf);
            entry.disk_read_bytes = read.unwrap_or(entry.disk_read_bytes);
            entry.disk_written_bytes = written.unwrap_or(entry.disk_written_bytes);
        }
        Err(_) => entry.io_denied = true,
    }
}

/// `read_bytes` and `write_bytes` of `/proc/<pid>/io`: what reached
/// storage, not what went through `read` and `write`.
fn parse_io(io: &[u8]) -> (Option<u64>, Option<u64>) {
    let text = std::str::from_utf8(io).unwrap_or_default();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
            .and_then(|v| v.trim().parse().ok())
    };
    (value("read_bytes"), value("write_bytes"))
}

/// The first recheck of a process first seen now: somewhere within one
/// period, picked by pid, so that the processes seen at start are not all
/// rechecked in the same cycle.
fn spread(pid: u32, period: Duration) -> Duration {
    let slot = (u64::from(pid).wrapping_mul(2_654_435_761) % 1024) + 1;
    period.mul_f64(slot as f64 / 1024.0)
}

fn parse_pid(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// Reads a `stat` file from its start, in one `pread` when it fits: the
/// kernel formats the whole line at once, so a read that ends the line
/// with room to spare has it all, and asking again only to be told "end of
/// file" would double the system calls.
fn read_stat(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    const ROOM: usize = 4096;
    buf.clear();
    buf.resize(ROOM, 0);
    match file.read_at(buf, 0) {
        Ok(n) if n < ROOM && n > 0 && buf[n - 1] == b'\n' => {
            buf.truncate(n);
            Ok(())
        }
        Ok(_) => read_into(file, buf),
        Err(e) => Err(e),
    }
}

/// Reads the whole file from its start with `pread`, into `buf`. The
/// buffer grows by doubling and is zeroed only as it grows: a command line
/// can be 2 MiB, and the kernel hands it out a page per call.
fn read_into(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut filled = 0;
    loop {
        if buf.len() - filled < 512 {
            buf.resize((buf.len() * 2).max(4096), 0);
        }
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok(());
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
}

/// Opens, reads and closes: for files read only now and then.
fn read_path(path: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    read_into(&File::open(path)?, buf)
}

/// Now, in clock ticks since boot (`CLOCK_BOOTTIME`, the clock of `stat`'s
/// start field).
fn boot_ticks(ticks_per_sec: u64) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return 0;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs * ticks_per_sec + nanos * ticks_per_sec / 1_000_000_000
}

/// How many `stat` files may be kept open: the soft limit on descriptors,
/// first raised to the hard limit, less [`FD_RESERVE`]. The agent polls
/// with epoll, never `select`, so descriptors above 1024 are safe.
fn descriptor_budget() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to write to.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above; a refusal leaves the limit as it was.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    usize::try_from(limit.rlim_cur.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command, Stdio};

    use super::*;

    const TICKS: u64 = 100;

    fn reading(start_ticks: u64, cpu_ticks: u64) -> Reading {
        Reading {
            start_ticks,
            cpu_ticks,
        }
    }

    fn span(seconds: f64, began_at_ticks: u64) -> Option<Span> {
        Some(Span {
            seconds,
            began_at_ticks,
        })
    }

    #[test]
    fn cpu_is_the_tick_delta_of_the_same_process_over_the_span() {
        let busy = cpu_percent(
            Some(reading(1000, 500)),
            reading(1000, 600),
            span(1.0, 5000),
            TICKS,
        );
        assert!((busy - 100.0).abs() < 0.01, "{busy}");
        let half = cpu_percent(
            Some(reading(1000, 500)),
            reading(1000, 525),
            span(0.5, 5000),
            TICKS,
        );
        assert!((half - 50.0).abs() < 0.01, "{half}");
        let idle = cpu_percent(
            Some(reading(1000, 500)),
            reading(1000, 500),
            span(1.0, 5000),
            TICKS,
        );
        assert_eq!(idle, 0.0);
    }

    #[test]
    fn a_reused_pid_is_a_new_process_never_a_delta_against_the_old_one() {
        // The old process had used 5000 ticks; the new one, started during
        // the span, 30: all of them count, over the whole span.
        let new = cpu_percent(
            Some(reading(1000, 5000)),
            reading(5050, 30),
            span(1.0, 5000),
            TICKS,
        );
        assert!((new - 30.0).abs() < 0.01, "{new}");
        // Had it been compared with the old one: 90 - 10 = 80, not 90.
        let new = cpu_percent(
            Some(reading(1000, 10)),
            reading(5050, 90),
            span(1.0, 5000),
            TICKS,
        );
        assert!((new - 90.0).abs() < 0.01, "{new}");
        // A process first seen now though older than the span (no
        // baseline), or the first cycle of all: 0.
        assert_eq!(
            cpu_percent(None, reading(4000, 90), span(1.0, 5000), TICKS),
            0.0
        );
        assert_eq!(cpu_percent(None, reading(4000, 90), None, TICKS), 0.0);
        // New since the span began: counted from its start.
        let fresh = cpu_percent(None, reading(5020, 40), span(2.0, 5000), TICKS);
        assert!((fresh - 20.0).abs() < 0.01, "{fresh}");
    }

    #[test]
    fn first_rechecks_are_spread_over_the_period() {
        let period = Duration::from_secs(60);
        let mut buckets = [0usize; 10];
        for pid in 1..=1000 {
            let first = spread(pid, period);
            assert!(first > Duration::ZERO && first <= period);
            buckets[(first.as_secs_f64() / 6.0).min(9.0) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (50..=150).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn io_and_status_are_parsed() {
        let io = b"rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\n\
                   write_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io(io), (Some(4096), Some(8192)));
        assert_eq!(parse_io(b""), (None, None));
        let status = b"Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\n\
                       Uid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(real_uid(status), "1000".parse().ok());
        assert_eq!(parse_pid(b"123"), Some(123));
        assert_eq!(parse_pid(b"self"), None);
        assert_eq!(parse_pid(b""), None);
    }

    /// Kills the child even when an assertion fails first.
    struct Reaped(Child);

    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn sleeper() -> Reaped {
        let child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep starts");
        std::thread::sleep(Duration::from_millis(50));
        Reaped(child)
    }

    #[test]
    fn a_kept_stat_reads_afresh_and_fails_once_its_process_exits() {
        let mut child = sleeper();
        let file = File::open(format!("/proc/{}/stat", child.0.id())).unwrap();
        let mut buf = Vec::new();
        read_stat(&file, &mut buf).unwrap();
        let first = stat::parse(&buf).unwrap().start_ticks;
        read_stat(&file, &mut buf).unwrap();
        assert_eq!(stat::parse(&buf).unwrap().start_ticks, first);
        let mut whole = Vec::new();
        read_into(&file, &mut whole).unwrap();
        assert_eq!(whole, buf, "one pread has the whole line");
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let error = read_stat(&file, &mut buf).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ESRCH), "{error}");
    }

    fn on_proc() -> usize {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| parse_pid(e.file_name().as_bytes()).is_some())
            .count()
    }

    #[test]
    fn in_steady_state_only_stat_is_read() {
        let mut table = ProcessTable::with_fd_budget(Duration::from_secs(3600), 100_000);
        let first = table.read(&mut System::new().unwrap());
        assert_eq!(table.counts.facts_read, first.len());
        std::thread::sleep(Duration::from_millis(100));
        let second = table.read(&mut System::new().unwrap());
        let counts = table.counts;
        // Other tests of this binary start processes meanwhile; a handful
        // of new ones and those that used CPU are read beyond stat.
        assert!(
            counts.facts_read < 10 && counts.stat_opened < 10,
            "{counts:?} for {} processes",
            second.len()
        );
        assert!(counts.counters_read < second.len() / 2 + 10, "{counts:?}");
        assert_eq!(table.fds_kept, table.entries.len());
    }

    #[test]
    fn past_the_descriptor_budget_the_rest_are_opened_each_cycle() {
        let child = sleeper();
        let pid = child.0.id();
        let mut table = ProcessTable::with_fd_budget(Duration::from_secs(3600), 5);
        let mut system = System::new().unwrap();
        table.read(&mut system);
        let listed = table.read(&mut system);
        assert!(table.fds_kept <= 5, "{} kept", table.fds_kept);
        assert!(table.counts.stat_opened + 5 >= listed.len());
        assert!(listed.len().abs_diff(on_proc()) < 20);
        let sample = listed
            .iter()
            .find(|p| p.pid == pid)
            .expect("the child is listed");
        assert_eq!(sample.cmd, ["sleep", "30"]);

        // Exited processes are forgotten, and their descriptors closed.
        let mut full = ProcessTable::with_fd_budget(Duration::from_secs(3600), 100_000);
        full.read(&mut system);
        assert!(full
            .entries
            .get(&pid)
            .is_some_and(|e| e.stat_file.is_some()));
        let kept = full.fds_kept;
        drop(child);
        full.read(&mut system);
        assert!(!full.entries.contains_key(&pid));
        assert!(full.fds_kept < kept + 10);
        assert_eq!(full.fds_kept, full.entries.len());
    }
}
