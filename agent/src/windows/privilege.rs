//! SeDebugPrivilege: lets an administrator's agent (or the service, which
//! runs as LocalSystem) open other users' and services' processes, as
//! Process Explorer does. Without administrator rights it changes nothing,
//! and those processes are reported with what the table alone tells.

use windows_sys::Win32::Security::{
    AdjustTokenPrivileges, LookupPrivilegeValueW, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED,
    TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::handle::Handle;
use super::text::to_wide;

/// Enables SeDebugPrivilege for this process if its token holds it.
pub fn enable_debug_privilege() {
    let name = to_wide("SeDebugPrivilege");
    let mut token = std::ptr::null_mut();
    // SAFETY: plain calls with out pointers to locals; the token is closed
    // when `token` drops.
    unsafe {
        if OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY,
            &mut token,
        ) == 0
        {
            return;
        }
        let token = Handle(token);
        let mut privileges = TOKEN_PRIVILEGES {
            PrivilegeCount: 1,
            Privileges: [LUID_AND_ATTRIBUTES {
                Luid: std::mem::zeroed(),
                Attributes: SE_PRIVILEGE_ENABLED,
            }],
        };
        if LookupPrivilegeValueW(
            std::ptr::null(),
            name.as_ptr(),
            &mut privileges.Privileges[0].Luid,
        ) == 0
        {
            return;
        }
        AdjustTokenPrivileges(
            token.0,
            0,
            &privileges,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
    }
}
