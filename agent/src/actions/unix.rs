//! Linux: acting on a process named by its pid and start time, with
//! signals (terminate SIGTERM, kill SIGKILL, suspend SIGSTOP, resume
//! SIGCONT) and `setpriority` (lower priority: nice 10, never higher).
//!
//! The start time is read from `/proc/<pid>/stat` by the collector's own
//! code ([`crate::collect::identify`]), so it is the very value the
//! snapshot sent, compared for equality.
//!
//! # The pid that changes hands
//!
//! Between reading the start time and signalling, the process could exit
//! and the kernel give its pid to a new one, which the signal would then
//! hit. Where the kernel has pidfds (Linux 5.3 and later) that window is
//! closed: the process is opened first (`pidfd_open`), its start time read
//! next, and the signal sent through the pidfd (`pidfd_send_signal`). A
//! pidfd names the process it was opened on, never a later holder of the
//! pid; if that process had exited before the start time was read (so the
//! reading may be another process's) the signal fails with ESRCH and
//! nothing is hit. Where there are no pidfds (older kernels, a seccomp
//! filter that refuses the call), the agent falls back to kill(2), and the
//! window that remains is the microseconds between the read and the
//! signal, for a pid that the kernel would have to hand out again in
//! that time (it hands pids out in order, so only after every other pid
//! has been used).
//!
//! `setpriority` takes a pid, not a pidfd; there the process is checked
//! again afterwards (still alive through its pidfd, and the same start),
//! and a priority lowered on another process is said so. Lowering is
//! harmless enough for that: it never raises a priority.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use chrono::{DateTime, Utc};
use procmon_model::actions::ActionKind;

use super::ActError;
use crate::collect::{identify, Identity};

/// The nice value that "lower priority" sets: half way to the lowest, so
/// the process still runs on a busy machine.
const LOWER_NICE: i32 = 10;

pub(super) fn act(
    kind: ActionKind,
    pid: u32,
    started_at: DateTime<Utc>,
) -> Result<String, ActError> {
    // Never a pid the kernel reads as a group (0) or as "all" (-1).
    let Ok(raw_pid) = libc::pid_t::try_from(pid) else {
        return Err(ActError::Gone);
    };
    if raw_pid <= 0 {
        return Err(ActError::Failed(format!(
            "pid {pid} names no single process"
        )));
    }
    let target = Target::open(raw_pid)?;
    let identity = same_process(pid, started_at)?;
    let name = &identity.name;
    let (signal, what) = match kind {
        ActionKind::Terminate => (libc::SIGTERM, "asked it to end (SIGTERM)"),
        ActionKind::Kill => (libc::SIGKILL, "killed it (SIGKILL)"),
        ActionKind::Suspend => (libc::SIGSTOP, "suspended it (SIGSTOP)"),
        ActionKind::Resume => (libc::SIGCONT, "resumed it (SIGCONT)"),
        ActionKind::LowerPriority => return lower_priority(&target, pid, started_at, name),
    };
    target.signal(signal, pid)?;
    Ok(format!("pid {pid} ({name}): {what}"))
}

/// Why `pid` must never be acted on on Linux, if it must not.
pub(super) fn critical(pid: u32) -> Option<String> {
    match pid {
        1 => return Some(
            "pid 1 is init, the service manager: ending or stopping it takes the machine with it"
                .to_owned(),
        ),
        2 => {
            return Some(
                "pid 2 is kthreadd, the kernel's own, the parent of every kernel thread".to_owned(),
            )
        }
        _ => {}
    }
    // A thread id of the agent's own opens as a process too, and a signal
    // to it reaches the whole agent.
    if std::path::Path::new(&format!("/proc/self/task/{pid}")).exists() {
        return Some(format!(
            "pid {pid} is a thread of this agent: it does not act on itself"
        ));
    }
    let identity = identify(pid).ok()?;
    if identity.kernel_thread || identity.parent_pid == 2 {
        return Some(format!(
            "pid {pid} ({}) is a kernel thread: the kernel's own",
            identity.name
        ));
    }
    // Under a user's service manager (systemd --user) the agent's parent
    // is that manager, which holds the user's whole session.
    if pid == std::os::unix::process::parent_id() && identity.name == "systemd" {
        return Some(format!(
            "pid {pid} is the service manager that runs this agent"
        ));
    }
    None
}

/// Whether `pid` is still the process that started at `started_at`.
fn same_process(pid: u32, started_at: DateTime<Utc>) -> Result<Identity, ActError> {
    let identity = identify(pid).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ActError::Gone,
        _ => ActError::Failed(format!("cannot read /proc/{pid}/stat: {e}")),
    })?;
    // A zombie has exited; only its parent's wait is missing.
    if matches!(identity.state, b'Z' | b'X') {
        return Err(ActError::Gone);
    }
    if identity.start_time != started_at {
        return Err(ActError::Reused {
            started_at: identity.start_time,
        });
    }
    Ok(identity)
}

/// The process acted on: its pidfd where the kernel has them, else its
/// pid.
enum Target {
    PidFd(OwnedFd),
    Pid(libc::pid_t),
}

impl Target {
    fn open(pid: libc::pid_t) -> Result<Target, ActError> {
        // SAFETY: pidfd_open takes a pid and flags (none), and returns a
        // new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            let fd = i32::try_from(fd).expect("a descriptor fits an int");
            // SAFETY: the descriptor was just opened, and nothing else owns it.
            return Ok(Target::PidFd(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::ESRCH) => Err(ActError::Gone),
            // No pidfds here (before Linux 5.3), or a seccomp filter that
            // refuses the call: kill(2), which checks permission itself.
            Some(libc::ENOSYS | libc::EPERM) => Ok(Target::Pid(pid)),
            // pidfd_open refuses a thread that is not its process's first.
            Some(libc::EINVAL) => Err(ActError::Failed(format!(
                "pid {pid} is a thread of another process, not a process"
            ))),
            _ => Err(ActError::Failed(format!("cannot open pid {pid}: {error}"))),
        }
    }

    fn signal(&self, signal: libc::c_int, pid: u32) -> Result<(), ActError> {
        let done = match self {
            // SAFETY: a pidfd of ours, a signal number, no siginfo, no flags.
            Target::PidFd(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ) == 0
            },
            // SAFETY: kill takes a pid (positive: one process) and a signal.
            Target::Pid(raw) => unsafe { libc::kill(*raw, signal) == 0 },
        };
        if done {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        Err(match error.raw_os_error() {
            Some(libc::ESRCH) => ActError::Gone,
            Some(libc::EPERM) => denied(pid, "signal"),
            _ => ActError::Failed(format!("cannot signal pid {pid}: {error}")),
        })
    }

    /// Whether the process opened is still running (or a zombie): always
    /// true for a plain pid, which cannot tell.
    fn alive(&self) -> bool {
        match self {
            // SAFETY: as in `signal`; signal 0 checks without sending.
            Target::PidFd(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    0,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ) == 0
                    || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
            },
            Target::Pid(_) => true,
        }
    }
}

fn denied(pid: u32, what: &str) -> ActError {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    ActError::AccessDenied(format!(
        "the OS does not let this agent (uid {uid}) {what} pid {pid}: it is another user's \
         process; run the agent as root to act on every process"
    ))
}

/// Lowers every thread of `pid` to nice [`LOWER_NICE`]; a thread already
/// at or below it is left. On Linux a nice value is a thread's, and a new
/// thread takes its creator's, so the threads are gone over until a pass
/// finds none to lower (a few passes at most).
fn lower_priority(
    target: &Target,
    pid: u32,
    started_at: DateTime<Utc>,
    name: &str,
) -> Result<String, ActError> {
    let main_before = nice_of(pid).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => ActError::Gone,
        _ => ActError::Failed(format!("cannot read the priority of pid {pid}: {e}")),
    })?;
    let mut lowered = 0usize;
    for _ in 0..3 {
        let mut this_pass = 0;
        for tid in threads(pid)? {
            match nice_of(tid) {
                Ok(nice) if nice >= LOWER_NICE => continue,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
                Err(e) => {
                    return Err(ActError::Failed(format!(
                        "cannot read the priority of thread {tid} of pid {pid}: {e}"
                    )))
                }
            }
            // SAFETY: setpriority takes a which, an id and a value.
            let set = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, LOWER_NICE) };
            if set != 0 {
                let error = io::Error::last_os_error();
                match error.raw_os_error() {
                    // The thread ended meanwhile.
                    Some(libc::ESRCH) => continue,
                    Some(libc::EPERM | libc::EACCES) => {
                        return Err(denied(pid, "change the priority of"))
                    }
                    _ => {
                        return Err(ActError::Failed(format!(
                            "cannot change the priority of pid {pid}: {error}"
                        )))
                    }
                }
            }
            this_pass += 1;
        }
        lowered += this_pass;
        if this_pass == 0 {
            break;
        }
    }
    if !target.alive() {
        return Err(ActError::Failed(format!(
            "pid {pid} exited while its priority was being lowered; if the pid was given to a \
             new process meanwhile, that one may run at nice {LOWER_NICE} now"
        )));
    }
    same_process(pid, started_at)?;
    Ok(if lowered == 0 {
        format!(
            "pid {pid} ({name}) already runs at nice {main_before}, no higher than {LOWER_NICE}: left as it is"
        )
    } else {
        format!(
            "pid {pid} ({name}): lowered to nice {LOWER_NICE} (was {main_before}; {lowered} thread{} changed)",
            if lowered == 1 { "" } else { "s" }
        )
    })
}

/// The thread ids of `pid`.
fn threads(pid: u32) -> Result<Vec<libc::id_t>, ActError> {
    let listing = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ActError::Gone,
        _ => ActError::Failed(format!("cannot list the threads of pid {pid}: {e}")),
    })?;
    Ok(listing
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// A thread's nice value (-20 to 19).
fn nice_of(tid: libc::id_t) -> io::Result<i32> {
    // getpriority may return -1 as a value: only errno tells a failure.
    // SAFETY: errno is this thread's; getpriority takes a which and an id.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
        let error = io::Error::last_os_error();
        if nice == -1 && error.raw_os_error().is_some_and(|e| e != 0) {
            return Err(error);
        }
        Ok(nice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_pidfds_kill_2_signals_and_says_gone_after() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        let target = Target::Pid(pid as libc::pid_t);
        target.signal(libc::SIGKILL, pid).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert_eq!(target.signal(libc::SIGKILL, pid), Err(ActError::Gone));
    }

    #[test]
    fn a_pidfd_outlives_its_process_and_signals_nothing_after() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        let target = Target::open(pid as libc::pid_t).unwrap();
        assert!(matches!(target, Target::PidFd(_)), "this kernel has pidfds");
        assert!(target.alive());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!target.alive());
        assert_eq!(target.signal(libc::SIGTERM, pid), Err(ActError::Gone));
    }
}
