//! Acting on a process on Windows (the platform half of `crate::actions`):
//! end, suspend, resume or lower the priority of the process a signed
//! action names, and tell which processes are the OS's own.
//!
//! Every action opens the process once, with limited query rights plus the
//! one right the action needs, checks its creation time on that handle,
//! then acts on the same handle. Windows does not give a pid to a new
//! process while any handle to the old one is open, so the process checked
//! is the process acted on: there is no window for the pid to be reused in
//! between.

use chrono::{DateTime, Utc};
use procmon_model::actions::ActionKind;
use windows_sys::Wdk::System::Threading::{NtQueryInformationProcess, ProcessBreakOnTermination};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER, FILETIME, HANDLE, NTSTATUS, STATUS_ACCESS_DENIED,
    STILL_ACTIVE,
};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, GetPriorityClass, GetProcessTimes, OpenProcess, SetPriorityClass,
    TerminateProcess, BELOW_NORMAL_PRIORITY_CLASS, IDLE_PRIORITY_CLASS, PROCESS_ACCESS_RIGHTS,
    PROCESS_QUERY_INFORMATION, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SET_INFORMATION,
    PROCESS_SUSPEND_RESUME, PROCESS_TERMINATE,
};

use super::handle::Handle;
use super::process_table::{filetime_to_utc, KernelProcessTable};
use crate::actions::ActError;

// Documented (as ZwSuspendProcess/ZwResumeProcess in the driver kit) and
// exported by ntdll since Windows XP, but not declared by windows-sys;
// linked as windows-sys links ntdll's other functions.
#[link(name = "ntdll.dll", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    fn NtSuspendProcess(process: HANDLE) -> NTSTATUS;
    fn NtResumeProcess(process: HANDLE) -> NTSTATUS;
}

/// The exit code a process ended by an action gets, as `taskkill /f` gives.
const EXIT_CODE: u32 = 1;

/// Does `kind` to process `pid` if it is still the process that started at
/// `started_at` (to the 100 ns, as the collector reported it); the message
/// says what was done.
pub fn act(kind: ActionKind, pid: u32, started_at: DateTime<Utc>) -> Result<String, ActError> {
    let right = match kind {
        ActionKind::Terminate | ActionKind::Kill => PROCESS_TERMINATE,
        ActionKind::Suspend | ActionKind::Resume => PROCESS_SUSPEND_RESUME,
        ActionKind::LowerPriority => PROCESS_SET_INFORMATION,
    };
    let process = open(pid, PROCESS_QUERY_LIMITED_INFORMATION | right, kind)?;
    check_identity(&process, pid, started_at)?;
    match kind {
        // Windows has no request to end that every process hears (a
        // console program gets Ctrl+C, a window WM_CLOSE, a service its
        // stop control); so both end it at once.
        ActionKind::Terminate | ActionKind::Kill => {
            // SAFETY: a process handle with PROCESS_TERMINATE.
            if unsafe { TerminateProcess(process.0, EXIT_CODE) } == 0 {
                return Err(win32_error(
                    std::io::Error::last_os_error(),
                    &format!("TerminateProcess on pid {pid}"),
                ));
            }
            let said = format!("ended with TerminateProcess (exit code {EXIT_CODE})");
            Ok(if kind == ActionKind::Terminate {
                format!("{said}: Windows cannot ask a process to end")
            } else {
                said
            })
        }
        // Both act on every thread's suspend count: a process suspended
        // twice needs two resumes, as with Process Explorer.
        ActionKind::Suspend => {
            // SAFETY: a process handle with PROCESS_SUSPEND_RESUME.
            nt_call(
                unsafe { NtSuspendProcess(process.0) },
                "NtSuspendProcess",
                pid,
            )?;
            Ok("suspended every thread (NtSuspendProcess)".to_owned())
        }
        ActionKind::Resume => {
            // SAFETY: a process handle with PROCESS_SUSPEND_RESUME.
            nt_call(
                unsafe { NtResumeProcess(process.0) },
                "NtResumeProcess",
                pid,
            )?;
            Ok("resumed every thread (NtResumeProcess)".to_owned())
        }
        ActionKind::LowerPriority => lower_priority(&process, pid),
    }
}

/// Why process `pid` is the OS's own and must not be acted on, if it is:
/// Idle and System, the processes Windows cannot run without, and any
/// process marked critical (Windows stops with a blue screen when one
/// ends).
pub fn critical(pid: u32) -> Option<String> {
    match pid {
        0 => return Some("pid 0 is the System Idle Process".to_owned()),
        4 => return Some("pid 4 is the System process (the kernel)".to_owned()),
        _ => {}
    }
    if let Some(name) = image_name(pid) {
        if let Some(own) = OS_PROCESSES
            .iter()
            .find(|own| own.eq_ignore_ascii_case(&name))
        {
            return Some(format!("{own} is part of Windows itself"));
        }
    }
    is_marked_critical(pid).then(|| {
        format!("pid {pid} is marked critical: Windows stops with a blue screen if it ends")
    })
}

/// Windows' own processes, by image name. A program of another folder
/// that takes one of these names is refused too: refusing a lookalike is
/// the safe mistake, and the name is what the operator sees.
const OS_PROCESSES: [&str; 7] = [
    "smss.exe",
    "csrss.exe",
    "wininit.exe",
    "winlogon.exe",
    "services.exe",
    "lsass.exe",
    "lsaiso.exe",
];

/// The image name of process `pid` from the kernel's process table, which
/// names every process, protected ones too, without opening it.
fn image_name(pid: u32) -> Option<String> {
    let table = KernelProcessTable::new().read().ok()?;
    table
        .into_iter()
        .find(|entry| entry.pid == pid)
        .map(|entry| entry.name)
}

/// Whether the process is marked critical (`ProcessBreakOnTermination`).
/// A process that cannot be asked counts as not marked: one the agent may
/// not even query, it may not end or suspend either, and the action then
/// fails as denied.
fn is_marked_critical(pid: u32) -> bool {
    // Windows asks full query rights for this class; limited ones are
    // tried too in case a later version asks less.
    let Some(process) = [PROCESS_QUERY_INFORMATION, PROCESS_QUERY_LIMITED_INFORMATION]
        .into_iter()
        .find_map(|access| Handle::open_process(pid, access))
    else {
        return false;
    };
    let mut marked = 0u32;
    let mut written = 0u32;
    // SAFETY: the buffer is a u32, as this class writes, and its size is
    // passed.
    let status = unsafe {
        NtQueryInformationProcess(
            process.0,
            ProcessBreakOnTermination,
            (&raw mut marked).cast(),
            size_of::<u32>() as u32,
            &mut written,
        )
    };
    status >= 0 && marked != 0
}

/// Opens process `pid` with `access`, saying why not as the action's
/// error.
fn open(pid: u32, access: PROCESS_ACCESS_RIGHTS, kind: ActionKind) -> Result<Handle, ActError> {
    // SAFETY: plain call; a null result means failure, said by the last
    // error, read before any other call.
    let raw = unsafe { OpenProcess(access, 0, pid) };
    if raw.is_null() {
        let error = std::io::Error::last_os_error();
        return Err(match error.raw_os_error().map(|code| code as u32) {
            // What OpenProcess says for a pid no process has.
            Some(ERROR_INVALID_PARAMETER) => ActError::Gone,
            _ => win32_error(error, &format!("opening pid {pid} to {kind}")),
        });
    }
    Ok(Handle(raw))
}

/// `Gone` if the process has exited (its pid stays taken while anyone
/// holds a handle to it), `Reused` if it is not the process that started
/// at `started_at`.
fn check_identity(process: &Handle, pid: u32, started_at: DateTime<Utc>) -> Result<(), ActError> {
    let mut exit_code = 0u32;
    // SAFETY: a process handle with limited query rights; out pointer to a
    // local.
    if unsafe { GetExitCodeProcess(process.0, &mut exit_code) } == 0 {
        return Err(win32_error(
            std::io::Error::last_os_error(),
            &format!("GetExitCodeProcess on pid {pid}"),
        ));
    }
    // A process that exits with 259 itself reads as running; it is then
    // acted on and the OS answers for it.
    if exit_code != STILL_ACTIVE as u32 {
        return Err(ActError::Gone);
    }
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: as above, four out pointers to locals.
    if unsafe { GetProcessTimes(process.0, &mut created, &mut exited, &mut kernel, &mut user) } == 0
    {
        return Err(win32_error(
            std::io::Error::last_os_error(),
            &format!("GetProcessTimes on pid {pid}"),
        ));
    }
    let filetime = (i64::from(created.dwHighDateTime) << 32) | i64::from(created.dwLowDateTime);
    // Only System and Idle have no creation time; the collector reports
    // the boot time for them, which sysinfo reads again to the second
    // each time, so it cannot name them exactly. They are critical anyway.
    let Some(actual) = filetime_to_utc(filetime) else {
        return Err(ActError::Failed(format!(
            "pid {pid} has no creation time, so it cannot be told from a later process"
        )));
    };
    if actual != started_at {
        return Err(ActError::Reused { started_at: actual });
    }
    Ok(())
}

/// Below normal, unless it already runs lower (idle): lowering never
/// raises.
fn lower_priority(process: &Handle, pid: u32) -> Result<String, ActError> {
    // SAFETY: a process handle with limited query rights; 0 means failure.
    let now = unsafe { GetPriorityClass(process.0) };
    if now == IDLE_PRIORITY_CLASS {
        return Ok("already at idle priority, below \"below normal\": left as it was".to_owned());
    }
    if now == BELOW_NORMAL_PRIORITY_CLASS {
        return Ok("already at below normal priority".to_owned());
    }
    // SAFETY: a process handle with PROCESS_SET_INFORMATION.
    if unsafe { SetPriorityClass(process.0, BELOW_NORMAL_PRIORITY_CLASS) } == 0 {
        return Err(win32_error(
            std::io::Error::last_os_error(),
            &format!("SetPriorityClass on pid {pid}"),
        ));
    }
    Ok("priority class set to below normal".to_owned())
}

/// A failed Win32 call as the action's error: access denied is the OS
/// refusing (another user's process, or a protected one).
fn win32_error(error: std::io::Error, what: &str) -> ActError {
    let said = format!("{what}: {error}");
    if error.raw_os_error().map(|code| code as u32) == Some(ERROR_ACCESS_DENIED) {
        ActError::AccessDenied(said)
    } else {
        ActError::Failed(said)
    }
}

/// An NTSTATUS as the action's result.
fn nt_call(status: NTSTATUS, function: &str, pid: u32) -> Result<(), ActError> {
    if status >= 0 {
        return Ok(());
    }
    let said = format!("{function} on pid {pid} failed with NTSTATUS {status:#010x}");
    Err(if status == STATUS_ACCESS_DENIED {
        ActError::AccessDenied(said)
    } else {
        ActError::Failed(said)
    })
}
