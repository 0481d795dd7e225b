//! Linux: the host's id and OS from `/etc`, and every process read from
//! `/proc` by our own reader ([`ProcessTable`]). See the contract in the
//! parent module.

mod stat;
mod table;

use std::fs;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

pub(super) use table::ProcessTable;

/// Turns `stat`'s start field (clock ticks after boot) into the start time
/// a snapshot gives, for the process table and for actions alike, so that
/// an action's start time is compared with the very value the snapshot
/// sent.
pub(crate) struct StartClock {
    /// Read once for the life of the agent: the kernel recomputes `btime`
    /// from the wall clock, so reading it again could move every start
    /// time, and with it every process's identity, by a second.
    boot_time_secs: u64,
    ticks_per_sec: u64,
}

impl StartClock {
    /// The one clock of this process.
    pub(crate) fn get() -> &'static StartClock {
        static CLOCK: OnceLock<StartClock> = OnceLock::new();
        CLOCK.get_or_init(|| StartClock {
            boot_time_secs: sysinfo::System::boot_time().unwrap_or(0),
            ticks_per_sec: clock_ticks_per_sec(),
        })
    }

    /// Whole seconds, as sysinfo gave them before: the start names the
    /// process on the server, so it must not move.
    pub(crate) fn start_time(&self, start_ticks: u64) -> DateTime<Utc> {
        super::from_unix_secs(self.boot_time_secs + start_ticks / self.ticks_per_sec)
    }
}

/// Clock ticks per second of `stat`'s times. Linux has used 100 everywhere
/// for decades; only a failed call would give something else.
pub(crate) fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// What names a process, and what says whether it is the kernel's, from
/// one read of its `stat`, as the process table reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// As [`procmon_model::ProcessSample::start_time`] gives it.
    pub(crate) start_time: DateTime<Utc>,
    /// 0 for the processes the kernel starts itself.
    pub(crate) parent_pid: u32,
    /// A kernel thread (`PF_KTHREAD`).
    pub(crate) kernel_thread: bool,
    /// `stat`'s state letter: `R`, `S`, `T`, `Z`...
    pub(crate) state: u8,
    /// The kernel's name for it (`comm`).
    pub(crate) name: String,
}

/// Reads `/proc/<pid>/stat` once. `NotFound` when no process has the pid.
pub(crate) fn identify(pid: u32) -> io::Result<Identity> {
    let data = fs::read(format!("/proc/{pid}/stat")).map_err(|e| match e.raw_os_error() {
        // A process that exits between open and read.
        Some(libc::ESRCH) => io::Error::from(io::ErrorKind::NotFound),
        _ => e,
    })?;
    let stat = stat::parse(&data).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat is not a stat line"),
        )
    })?;
    Ok(Identity {
        start_time: StartClock::get().start_time(stat.start_ticks),
        parent_pid: stat.parent_pid,
        kernel_thread: stat.kernel_thread,
        state: stat.state,
        name: String::from_utf8_lossy(stat.comm).into_owned(),
    })
}

/// The machine id that systemd (or dbus, on older systems) creates at
/// install time.
pub(super) fn host_id() -> String {
    for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        if let Some(id) = read_id(Path::new(path)) {
            return id;
        }
    }
    // Minimal containers and some embedded systems have no machine id.
    super::saved_id::load_or_create()
}

fn read_id(path: &Path) -> Option<String> {
    let id = fs::read_to_string(path).ok()?.trim().to_owned();
    (!id.is_empty()).then_some(id)
}

/// Name and version from os-release, e.g. ("Debian GNU/Linux", "12").
pub(super) fn os_name_and_version() -> (String, String) {
    let text = fs::read_to_string("/etc/os-release")
        .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    parse_os_release(&text)
}

fn parse_os_release(text: &str) -> (String, String) {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix('=')?;
            let unquoted = rest.trim().trim_matches(|c| c == '"' || c == '\'');
            (!unquoted.is_empty()).then(|| unquoted.to_owned())
        })
    };
    let name = value("NAME").unwrap_or_else(|| "Linux".to_owned());
    // Rolling distributions (Arch) have no VERSION_ID, only a BUILD_ID.
    let version = value("VERSION_ID")
        .or_else(|| value("BUILD_ID"))
        .unwrap_or_default();
    (name, version)
}

/// Open file descriptors. Since Linux 6.2 the size of `/proc/<pid>/fd` is
/// that count, one `stat` however many files are open (a database can hold
/// tens of thousands); older kernels say 0 there, and then the directory is
/// counted (denied for another user's process: `None`).
fn open_fds(pid: u32) -> Option<u32> {
    let dir = format!("/proc/{pid}/fd");
    let size = fs::metadata(&dir).ok()?.len();
    if size > 0 {
        return u32::try_from(size).ok();
    }
    let entries = fs::read_dir(&dir).ok()?;
    u32::try_from(entries.count()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted_and_fall_back() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\
                      NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n";
        assert_eq!(
            parse_os_release(debian),
            ("Debian GNU/Linux".to_owned(), "12".to_owned())
        );
        let arch = "NAME=\"Arch Linux\"\nBUILD_ID=rolling\n";
        assert_eq!(
            parse_os_release(arch),
            ("Arch Linux".to_owned(), "rolling".to_owned())
        );
        assert_eq!(parse_os_release(""), ("Linux".to_owned(), String::new()));
    }

    #[test]
    fn this_machine_has_a_host_id_that_is_not_the_hostname() {
        let id = host_id();
        assert!(!id.is_empty());
        assert_eq!(id, host_id(), "the host id must be stable");
        let hostname = sysinfo::System::host_name().unwrap_or_default();
        assert_ne!(id, hostname);
    }

    #[test]
    fn the_open_file_count_matches_the_fd_directory() {
        let me = std::process::id();
        let files: Vec<_> = (0..5)
            .map(|_| fs::File::open("/proc/self/stat").unwrap())
            .collect();
        let counted = fs::read_dir("/proc/self/fd").unwrap().count() as u32;
        let reported = open_fds(me).unwrap();
        // Other tests of this binary open and close files meanwhile.
        assert!(
            reported.abs_diff(counted) <= 3,
            "{reported} reported, {counted} counted"
        );
        assert!(
            reported >= 5,
            "five files are open, yet {reported} reported"
        );
        drop(files);
        assert_eq!(open_fds(u32::MAX), None, "no such process");
    }
}
