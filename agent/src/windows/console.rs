//! The console window of a double-clicked .exe.

use windows_sys::Win32::System::Console::GetConsoleProcessList;

/// True when the console is ours alone: Explorer opened it for us (a
/// double-click), so it closes the moment we exit. From `cmd` or
/// PowerShell the shell shares it.
pub fn is_own_console() -> bool {
    let mut pids = [0u32; 4];
    // SAFETY: the count passed is the buffer's length.
    let count = unsafe { GetConsoleProcessList(pids.as_mut_ptr(), pids.len() as u32) };
    count == 1
}

/// Before exiting with an error from a double-click, keeps the window open
/// until the person has read it.
pub fn pause_if_own_console() {
    if is_own_console() {
        eprintln!("Press Enter to close this window.");
        let _ = std::io::stdin().read_line(&mut String::new());
    }
}
