//! A process's owner as "DOMAIN\name", from its access token, as Task
//! Manager and Process Explorer show it.

use std::collections::HashMap;
use std::io;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Security::{
    GetLengthSid, GetTokenInformation, LookupAccountSidW, TokenUser, PSID, SID_NAME_USE,
    TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Threading::OpenProcessToken;

use super::handle::Handle;

/// Account names by SID: few accounts own all processes, and a lookup can
/// ask a domain controller over the network.
#[derive(Default)]
pub struct AccountNames {
    by_sid: HashMap<Vec<u8>, Option<String>>,
}

impl AccountNames {
    /// The owner of `process` (opened with at least
    /// `PROCESS_QUERY_LIMITED_INFORMATION`); `None` when its token may not
    /// be opened (protected processes, other users' without administrator
    /// rights).
    pub fn owner_of(&mut self, process: &Handle) -> Option<String> {
        let sid = owner_sid(process)?;
        self.by_sid
            .entry(sid)
            .or_insert_with_key(|sid| account_name(sid))
            .clone()
    }
}

/// The owner's SID, as bytes.
fn owner_sid(process: &Handle) -> Option<Vec<u8>> {
    // SAFETY: the SID lives while the closure runs, and is copied out.
    token_user(process.0, |sid| unsafe {
        let len = GetLengthSid(sid) as usize;
        std::slice::from_raw_parts(sid.cast::<u8>(), len).to_vec()
    })
    .ok()
}

/// Calls `with` on the user SID of `process`'s access token (a process
/// handle with query rights, or the current process's pseudo handle). The
/// SID is valid only during the call.
pub(super) fn token_user<T>(process: HANDLE, with: impl FnOnce(PSID) -> T) -> io::Result<T> {
    let mut token = std::ptr::null_mut();
    // SAFETY: plain call with an out pointer to a local.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = Handle(token);
    // 8-byte aligned, and larger than any TOKEN_USER (a SID is at most 68
    // bytes).
    let mut buffer = [0u64; 32];
    let mut needed = 0u32;
    // SAFETY: the size passed is the buffer's size in bytes.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            size_of_val(&buffer) as u32,
            &mut needed,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER whose SID
    // points into the same buffer, which outlives the call.
    Ok(with(unsafe {
        (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid
    }))
}

/// "DOMAIN\name" for a SID ("name" alone for accounts without a domain).
fn account_name(sid: &[u8]) -> Option<String> {
    let mut name = [0u16; 256];
    let mut domain = [0u16; 256];
    let (mut name_len, mut domain_len) = (name.len() as u32, domain.len() as u32);
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: the lengths are the buffers' lengths in characters; the bytes
    // are a SID copied whole from a token.
    let ok = unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            sid.as_ptr().cast_mut().cast(),
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return None;
    }
    let name = String::from_utf16_lossy(&name[..name_len as usize]);
    let domain = String::from_utf16_lossy(&domain[..domain_len as usize]);
    Some(if domain.is_empty() {
        name
    } else {
        format!("{domain}\\{name}")
    })
}
