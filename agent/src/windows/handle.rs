//! Owned Windows handles.

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::System::Threading::OpenProcess;

/// A handle closed when dropped.
pub struct Handle(pub HANDLE);

impl Handle {
    /// Opens process `pid` with `access`; `None` when denied or gone.
    pub fn open_process(pid: u32, access: u32) -> Option<Handle> {
        // SAFETY: plain call; a null result means failure.
        let raw = unsafe { OpenProcess(access, 0, pid) };
        (!raw.is_null()).then_some(Handle(raw))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and is closed only here.
        unsafe { CloseHandle(self.0) };
    }
}
