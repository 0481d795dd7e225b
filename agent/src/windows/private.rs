//! The Windows side of `crate::private`: access lists that let only this
//! user open the spool and the key file.
//!
//! A file's access list is usually inherited from its folder, and the
//! folder beside the .exe (or Program Files) lets every user read. So the
//! agent gives its own files a protected list (`D:P`: nothing inherited)
//! granting full control to this user, SYSTEM and BUILTIN\Administrators
//! alone: SYSTEM and the administrators can take any file anyway, and
//! keeping them spares a person who looks after the machine a permission
//! error. The list is given to CreateDirectoryW / CreateFileW, not set
//! afterwards: a handle opened in between would keep its access.
//!
//! A folder's list alone is not enough: Windows lets everyone "bypass
//! traverse checking", so a file that grants reading is readable by its
//! path inside a private folder. Every file gets the list too.

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, RawHandle};
use std::path::Path;

use windows_sys::Win32::Foundation::{LocalFree, GENERIC_WRITE, INVALID_HANDLE_VALUE, WIN32_ERROR};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
    SetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    AclSizeInformation, GetAce, GetAclInformation, GetSecurityDescriptorControl,
    GetSecurityDescriptorDacl, ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, ACL_SIZE_INFORMATION,
    DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SECURITY_ATTRIBUTES, SE_DACL_PROTECTED,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateDirectoryW, CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_DELETE,
    FILE_SHARE_READ, FILE_SHARE_WRITE,
};
use windows_sys::Win32::System::SystemServices::ACCESS_ALLOWED_ACE_TYPE;
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use super::text::from_wide;
use crate::private::{Narrowed, Object};

/// LocalSystem and BUILTIN\Administrators, as SID strings.
const SYSTEM: &str = "S-1-5-18";
const ADMINISTRATORS: &str = "S-1-5-32-544";

pub fn create_dir(dir: &Path) -> io::Result<()> {
    let descriptor = Descriptor::private(Object::Dir)?;
    let attributes = descriptor.attributes();
    // SAFETY: a NUL-terminated path and attributes whose descriptor lives
    // until the call returns.
    if unsafe { CreateDirectoryW(wide(dir).as_ptr(), &attributes) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn create_new_file(path: &Path) -> io::Result<File> {
    let descriptor = Descriptor::private(Object::File)?;
    let attributes = descriptor.attributes();
    // SAFETY: as above. Write access and sharing as std's
    // `OpenOptions::new().write(true)` asks (the spool reads, renames and
    // deletes its files while a writer is open).
    let handle = unsafe {
        CreateFileW(
            wide(path).as_ptr(),
            GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            &attributes,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just opened, owned by the File from now on.
    Ok(unsafe { File::from_raw_handle(handle as RawHandle) })
}

/// Gives `path` the private list unless its list is private already:
/// protected, and allowing only this user, SYSTEM and the administrators.
pub fn narrow(path: &Path, object: Object) -> io::Result<Option<Narrowed>> {
    let user = user_sid()?;
    let current = Descriptor::of(path)?;
    if current.is_private(&user)? {
        return Ok(None);
    }
    let was = current
        .sddl()
        .unwrap_or_else(|e| format!("its access list cannot be read as text: {e}"));
    let wanted = Descriptor::from_sddl(&sddl(object, &user))?;
    // SAFETY: a NUL-terminated path and a list from a live descriptor.
    let status = unsafe {
        SetNamedSecurityInfoW(
            wide(path).as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            wanted.dacl()?,
            std::ptr::null(),
        )
    };
    win32(status)?;
    Ok(Some(Narrowed {
        was: format!("access list {was}"),
        now: "full control for this user, SYSTEM and Administrators only".to_owned(),
    }))
}

/// The private list in SDDL: a folder's entries are inherited by what is
/// created in it (OICI), a file's have nothing to pass on. An agent running
/// as LocalSystem (the service) names SYSTEM once.
fn sddl(object: Object, user: &str) -> String {
    let inherit = match object {
        Object::Dir => "OICI",
        Object::File => "",
    };
    let mut text = String::from("D:P");
    if user != SYSTEM {
        text += &format!("(A;{inherit};FA;;;{user})");
    }
    text + &format!("(A;{inherit};FA;;;SY)(A;{inherit};FA;;;BA)")
}

/// This process's user, as a SID string ("S-1-5-21-...").
fn user_sid() -> io::Result<String> {
    // SAFETY: the pseudo handle of this process needs no closing, and the
    // SID is valid while the closure reads it.
    super::owner::token_user(unsafe { GetCurrentProcess() }, |sid| unsafe {
        sid_string(sid)
    })?
}

/// A SID as text.
///
/// # Safety
/// `sid` must point to a valid SID.
unsafe fn sid_string(sid: PSID) -> io::Result<String> {
    let mut text = std::ptr::null_mut();
    // SAFETY: the caller's SID; the text is freed by `Local`.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let text = Local(text.cast());
    // SAFETY: the OS wrote a NUL-terminated string there.
    Ok(unsafe { wide_text(text.0.cast()) })
}

/// A security descriptor the OS allocated, freed with LocalFree.
struct Descriptor(Local);

impl Descriptor {
    fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
        let text: Vec<u16> = sddl.encode_utf16().chain(std::iter::once(0)).collect();
        let mut descriptor = std::ptr::null_mut();
        // SAFETY: a NUL-terminated string and an out pointer to a local.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("the access list {sddl}: {e}"),
            ));
        }
        Ok(Descriptor(Local(descriptor)))
    }

    fn private(object: Object) -> io::Result<Descriptor> {
        Descriptor::from_sddl(&sddl(object, &user_sid()?))
    }

    /// `path`'s access list (the rest of its descriptor is not read).
    fn of(path: &Path) -> io::Result<Descriptor> {
        let mut descriptor = std::ptr::null_mut();
        let mut dacl = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path and out pointers to locals.
        let status = unsafe {
            GetNamedSecurityInfoW(
                wide(path).as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut dacl,
                std::ptr::null_mut(),
                &mut descriptor,
            )
        };
        win32(status)?;
        Ok(Descriptor(Local(descriptor)))
    }

    fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0 .0,
            bInheritHandle: 0,
        }
    }

    /// The access list; null stands for none, which lets everyone in.
    fn dacl(&self) -> io::Result<*const ACL> {
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl = std::ptr::null_mut();
        // SAFETY: a live descriptor and out pointers to locals.
        let ok = unsafe {
            GetSecurityDescriptorDacl(self.0 .0, &mut present, &mut dacl, &mut defaulted)
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(if present == 0 { std::ptr::null() } else { dacl })
    }

    /// Protected, and every entry allows, and only `user`, SYSTEM or the
    /// administrators.
    fn is_private(&self, user: &str) -> io::Result<bool> {
        let (mut control, mut revision) = (0u16, 0u32);
        // SAFETY: a live descriptor and out pointers to locals.
        if unsafe { GetSecurityDescriptorControl(self.0 .0, &mut control, &mut revision) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let dacl = self.dacl()?;
        if control & SE_DACL_PROTECTED == 0 || dacl.is_null() {
            return Ok(false);
        }
        // SAFETY: zeroes are a valid ACL_SIZE_INFORMATION.
        let mut size: ACL_SIZE_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: the size passed is the struct's.
        let ok = unsafe {
            GetAclInformation(
                dacl,
                (&raw mut size).cast(),
                size_of::<ACL_SIZE_INFORMATION>() as u32,
                AclSizeInformation,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        for index in 0..size.AceCount {
            let mut ace: *mut c_void = std::ptr::null_mut();
            // SAFETY: an index below the list's count.
            if unsafe { GetAce(dacl, index, &mut ace) } == 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: every entry starts with its header; an allowing
            // entry is an ACCESS_ALLOWED_ACE, its SID starting at SidStart.
            let sid = unsafe {
                if u32::from((*ace.cast::<ACE_HEADER>()).AceType) != ACCESS_ALLOWED_ACE_TYPE {
                    return Ok(false);
                }
                sid_string((&raw mut (*ace.cast::<ACCESS_ALLOWED_ACE>()).SidStart).cast())?
            };
            if sid != user && sid != SYSTEM && sid != ADMINISTRATORS {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The access list as SDDL, for the log.
    fn sddl(&self) -> io::Result<String> {
        let mut text = std::ptr::null_mut();
        // SAFETY: a live descriptor; the text is freed by `Local`.
        let ok = unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                self.0 .0,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        let text = Local(text.cast());
        // SAFETY: the OS wrote a NUL-terminated string there.
        Ok(unsafe { wide_text(text.0.cast()) })
    }
}

/// Memory the OS allocated for us, freed with LocalFree.
struct Local(PSECURITY_DESCRIPTOR);

impl Drop for Local {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by the OS for this process, freed only here.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// A NUL-terminated copy of `path` for the `W` functions.
fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str()
        .encode_wide()
        .chain(std::iter::once(0))
        .collect()
}

/// The text of a NUL-terminated UTF-16 string.
///
/// # Safety
/// `text` must point to a NUL-terminated UTF-16 string.
unsafe fn wide_text(text: *const u16) -> String {
    let mut len = 0;
    // SAFETY: the caller's string ends at its NUL.
    unsafe {
        while *text.add(len) != 0 {
            len += 1;
        }
        from_wide(std::slice::from_raw_parts(text, len))
    }
}

/// A status the security functions return as `ERROR_*`.
fn win32(status: WIN32_ERROR) -> io::Result<()> {
    match status {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code as i32)),
    }
}
