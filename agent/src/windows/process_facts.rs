//! What a process's row in the table lacks and what never changes while it
//! lives: its executable's full path, its command line and its owner. The
//! collector opens a process once, when it first sees it, for these.

use std::sync::atomic::{AtomicBool, Ordering};

use windows_sys::Wdk::System::Threading::{
    NtQueryInformationProcess, ProcessBasicInformation, ProcessCommandLineInformation,
};
use windows_sys::Win32::Foundation::{
    STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INVALID_INFO_CLASS, UNICODE_STRING,
};
use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
use windows_sys::Win32::System::Threading::{
    QueryFullProcessImageNameW, PEB, PROCESS_BASIC_INFORMATION, PROCESS_NAME_WIN32,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_VM_READ, RTL_USER_PROCESS_PARAMETERS,
};

use super::handle::Handle;
use super::owner::AccountNames;

/// A process's lifelong facts; each is `None` (or empty) when denied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessFacts {
    /// Full path of the executable, e.g. `C:\windows\system32\services.exe`.
    pub exe: Option<String>,
    /// The command line split into arguments as the program itself splits
    /// it.
    pub cmd: Vec<String>,
    /// The owner as `DOMAIN\name`.
    pub user: Option<String>,
}

/// Opens process `pid` once and reads its facts. Limited query rights are
/// all Windows 8.1 and later need; the right to read its memory is asked
/// for too, for the command line where the OS cannot tell it (Wine).
/// Protected processes and, without administrator rights, other users'
/// ones deny even those, and are reported without.
pub fn read(pid: u32, accounts: &mut AccountNames) -> ProcessFacts {
    let Some(process) =
        Handle::open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ)
            .or_else(|| Handle::open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION))
    else {
        return ProcessFacts::default();
    };
    ProcessFacts {
        exe: exe_path(&process),
        cmd: command_line(&process)
            .map(|line| split_command_line(&line))
            .unwrap_or_default(),
        user: accounts.owner_of(&process),
    }
}

/// `QueryFullProcessImageNameW` in its Win32 form (`C:\...`).
fn exe_path(process: &Handle) -> Option<String> {
    // Long paths (\\?\...) can exceed MAX_PATH.
    let mut buffer = vec![0u16; 1024];
    loop {
        let mut len = buffer.len() as u32;
        // SAFETY: `len` is the buffer's length in characters.
        let ok = unsafe {
            QueryFullProcessImageNameW(process.0, PROCESS_NAME_WIN32, buffer.as_mut_ptr(), &mut len)
        };
        if ok != 0 {
            return Some(String::from_utf16_lossy(&buffer[..len as usize]));
        }
        // Too small is the only failure worth a retry; the limit is
        // UNICODE_STRING's.
        if buffer.len() >= 32 * 1024 {
            return None;
        }
        let error = std::io::Error::last_os_error();
        const ERROR_INSUFFICIENT_BUFFER: i32 = 122;
        if error.raw_os_error() != Some(ERROR_INSUFFICIENT_BUFFER) {
            return None;
        }
        buffer.resize(buffer.len() * 4, 0);
    }
}

/// Whether `ProcessCommandLineInformation` is known to be missing (Wine 8
/// has no such class), so it is not asked again for every new process.
static NO_COMMAND_LINE_CLASS: AtomicBool = AtomicBool::new(false);

/// The whole command line, as the process was started with it.
fn command_line(process: &Handle) -> Option<String> {
    if !NO_COMMAND_LINE_CLASS.load(Ordering::Relaxed) {
        match command_line_from_os(process) {
            Ok(line) => return line,
            Err(()) => NO_COMMAND_LINE_CLASS.store(true, Ordering::Relaxed),
        }
    }
    command_line_from_peb(process)
}

/// The command line from the process's own memory, where it was started
/// with it: its PEB points to its parameters, which hold it. The layouts
/// read are the documented 64-bit ones (this agent is 64-bit; a 32-bit
/// process on 64-bit Windows has a 64-bit PEB too, with the same line).
fn command_line_from_peb(process: &Handle) -> Option<String> {
    // SAFETY: an all-zero PROCESS_BASIC_INFORMATION is valid (numbers and
    // a null pointer).
    let mut basic: PROCESS_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let mut written = 0u32;
    // SAFETY: the size passed is the struct's.
    let status = unsafe {
        NtQueryInformationProcess(
            process.0,
            ProcessBasicInformation,
            (&raw mut basic).cast(),
            size_of::<PROCESS_BASIC_INFORMATION>() as u32,
            &mut written,
        )
    };
    if status < 0 || basic.PebBaseAddress.is_null() {
        return None;
    }
    let peb = basic.PebBaseAddress as usize;
    let parameters: usize =
        read_remote(process, peb + std::mem::offset_of!(PEB, ProcessParameters))?;
    let line: UNICODE_STRING = read_remote(
        process,
        parameters + std::mem::offset_of!(RTL_USER_PROCESS_PARAMETERS, CommandLine),
    )?;
    let mut text = vec![0u16; usize::from(line.Length / 2)];
    let mut read = 0usize;
    // SAFETY: the buffer is writable for the bytes asked for.
    let ok = unsafe {
        ReadProcessMemory(
            process.0,
            line.Buffer.cast(),
            text.as_mut_ptr().cast(),
            text.len() * 2,
            &mut read,
        )
    };
    (ok != 0 && read == text.len() * 2).then(|| String::from_utf16_lossy(&text))
}

/// A plain value (numbers, pointers) read from another process's memory.
fn read_remote<T: Copy>(process: &Handle, address: usize) -> Option<T> {
    let mut value = std::mem::MaybeUninit::<T>::uninit();
    let mut read = 0usize;
    // SAFETY: `value` is writable for size_of::<T>() bytes; it is used
    // only when all of them were written, and T is plain data.
    unsafe {
        let ok = ReadProcessMemory(
            process.0,
            address as *const _,
            value.as_mut_ptr().cast(),
            size_of::<T>(),
            &mut read,
        );
        (ok != 0 && read == size_of::<T>()).then(|| value.assume_init())
    }
}

/// The command line as the OS keeps it (Windows 8.1 and later); `Err` when
/// the OS has no such query at all.
fn command_line_from_os(process: &Handle) -> Result<Option<String>, ()> {
    // 8-byte aligned for the UNICODE_STRING at its start; most command
    // lines fit in 2 KiB.
    let mut buffer = vec![0u64; 256];
    loop {
        let bytes = u32::try_from(buffer.len() * 8).map_err(|_| ())?;
        let mut needed = 0u32;
        // SAFETY: the buffer is writable for `bytes` bytes.
        let status = unsafe {
            NtQueryInformationProcess(
                process.0,
                ProcessCommandLineInformation,
                buffer.as_mut_ptr().cast(),
                bytes,
                &mut needed,
            )
        };
        if [
            STATUS_INFO_LENGTH_MISMATCH,
            STATUS_BUFFER_TOO_SMALL,
            STATUS_BUFFER_OVERFLOW,
        ]
        .contains(&status)
            && needed > bytes
        {
            buffer = vec![0; (needed as usize).div_ceil(8)];
            continue;
        }
        if status == STATUS_INVALID_INFO_CLASS {
            return Err(());
        }
        if status < 0 {
            return Ok(None);
        }
        // SAFETY: on success the buffer starts with a UNICODE_STRING whose
        // text follows it in the same buffer.
        let text = unsafe {
            let header = &*buffer.as_ptr().cast::<UNICODE_STRING>();
            if header.Buffer.is_null() {
                return Ok(Some(String::new()));
            }
            std::slice::from_raw_parts(header.Buffer, usize::from(header.Length / 2))
        };
        return Ok(Some(String::from_utf16_lossy(text)));
    }
}

/// Splits a command line into arguments by the rules of the Microsoft C
/// runtime (what `CommandLineToArgvW` and Rust's `std::env::args` follow),
/// without loading shell32 for it:
///
/// - the program name ends at the first space or tab outside quotes, and
///   backslashes in it are plain characters;
/// - after it, spaces and tabs outside quotes separate arguments;
/// - 2n backslashes before a quote become n and the quote opens or closes
///   a quoted part; 2n+1 become n and a literal quote;
/// - inside quotes, `""` is a literal quote;
/// - other backslashes are plain characters.
pub fn split_command_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();

    // The program name.
    let mut program = String::new();
    let mut quoted = false;
    for c in chars.by_ref() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => break,
            c => program.push(c),
        }
    }
    if line.is_empty() {
        return args;
    }
    args.push(program);

    let mut current: Option<String> = None;
    let mut quoted = false;
    let mut backslashes = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                let arg = current.get_or_insert_with(String::new);
                arg.extend(std::iter::repeat_n('\\', backslashes / 2));
                if backslashes % 2 == 1 {
                    arg.push('"');
                } else if quoted && chars.peek() == Some(&'"') {
                    chars.next();
                    arg.push('"');
                } else {
                    quoted = !quoted;
                }
                backslashes = 0;
            }
            ' ' | '\t' if !quoted => {
                if let Some(mut arg) = current.take() {
                    arg.extend(std::iter::repeat_n('\\', backslashes));
                    args.push(arg);
                } else if backslashes > 0 {
                    args.push("\\".repeat(backslashes));
                }
                backslashes = 0;
            }
            c => {
                let arg = current.get_or_insert_with(String::new);
                arg.extend(std::iter::repeat_n('\\', backslashes));
                backslashes = 0;
                arg.push(c);
            }
        }
    }
    if current.is_some() || backslashes > 0 {
        let mut arg = current.unwrap_or_default();
        arg.extend(std::iter::repeat_n('\\', backslashes));
        args.push(arg);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        split_command_line(line)
    }

    #[test]
    fn arguments_split_as_the_c_runtime_splits_them() {
        assert_eq!(
            split(r"C:\windows\system32\svchost.exe -k LocalService"),
            [r"C:\windows\system32\svchost.exe", "-k", "LocalService"]
        );
        assert_eq!(
            split(r#""C:\Program Files\a b\x.exe"  "one two"	three"#),
            [r"C:\Program Files\a b\x.exe", "one two", "three"]
        );
        // Backslashes count only before a quote.
        assert_eq!(
            split(r#"x a\\b "c\\" d\"e f\\\"g"#),
            ["x", r"a\\b", r"c\", r#"d"e"#, r#"f\"g"#]
        );
        // An empty quoted argument is an argument; "" inside quotes is a quote.
        assert_eq!(split(r#"x "" "say ""hi""""#), ["x", "", r#"say "hi""#]);
        // The program name keeps its backslashes, even before a quote.
        assert_eq!(split(r#""C:\dir\"x.exe y"#), [r"C:\dir\x.exe", "y"]);
        assert_eq!(split(r"x a\"), ["x", r"a\"]);
        assert_eq!(split("x.exe"), ["x.exe"]);
        assert_eq!(split("x.exe   "), ["x.exe"]);
        assert!(split("").is_empty());
    }

    #[test]
    fn this_process_reads_its_own_exe_command_line_and_owner() {
        let pid = std::process::id();
        let facts = read(pid, &mut AccountNames::default());
        let exe = std::env::current_exe().unwrap();
        assert!(
            facts
                .exe
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&exe.to_string_lossy())),
            "{facts:?} vs {exe:?}"
        );
        let args: Vec<String> = std::env::args().collect();
        assert_eq!(facts.cmd, args);
        assert!(facts.user.is_some_and(|u| u.contains('\\')));
    }
}
