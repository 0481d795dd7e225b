//! Files and directories only the agent's user may open: the spool (its
//! snapshots hold command lines, which can hold secrets) and the key file.
//!
//! - Unix: mode 0700 for a directory, 0600 for a file. The mode is set
//!   after creating too, not only asked for when creating: the umask
//!   narrows a mode given to open/mkdir, and a narrowed one (a directory
//!   without the owner's write bit) breaks the next start.
//! - Windows: a protected access list (nothing inherited from the folder
//!   above) granting full control to this user, SYSTEM and the
//!   Administrators group alone, given when creating, so that the file is
//!   never open to others, not even for a moment (see
//!   `crate::windows::private`).
//!
//! What an older agent left wider is narrowed when the agent starts, with a
//! warning ([`dir`], [`narrow_file`]). Errors say what failed; the caller
//! names the path.

use std::fs::File;
use std::io;
use std::path::Path;

#[cfg(windows)]
use crate::windows::private as os;
#[cfg(unix)]
use unix as os;

/// What is made private: a directory's access list also reaches what is
/// created in it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Object {
    Dir,
    File,
}

/// How an object was, and is now, after narrowing.
pub(crate) struct Narrowed {
    pub was: String,
    pub now: String,
}

/// Makes `dir` a directory only this user may open: created if missing
/// (its missing parents with the usual permissions: they may be shared,
/// like /var/lib), else narrowed if it is open to others.
pub fn dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return narrow(dir, Object::Dir);
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failed(&format!(
            "cannot create the folder above it, {}",
            parent.display()
        )))?;
    }
    match os::create_dir(dir) {
        // Made by someone else meanwhile: as if it had been there.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
            narrow(dir, Object::Dir)
        }
        created => created.map_err(failed("cannot create it private to this user")),
    }
}

/// Creates `path`, which must not exist yet, only this user may open, and
/// opens it for writing (not appending: on Windows an append-only handle
/// can neither be fsynced nor cut back after a failed write).
pub fn create_new_file(path: &Path) -> io::Result<File> {
    os::create_new_file(path).map_err(failed("cannot create it private to this user"))
}

/// Narrows an existing file to this user, if it is open to others (left so
/// by an older agent, or by a person), with a warning.
pub fn narrow_file(path: &Path) -> io::Result<()> {
    narrow(path, Object::File)
}

fn narrow(path: &Path, object: Object) -> io::Result<()> {
    let narrowed = os::narrow(path, object).map_err(failed("cannot narrow it to this user"))?;
    if let Some(Narrowed { was, now }) = narrowed {
        let what = match object {
            Object::Dir => "folder",
            Object::File => "file",
        };
        tracing::warn!(
            file = %path.display(),
            "the {what} was open to other users ({was}); narrowed to this user only ({now})"
        );
    }
    Ok(())
}

/// Keeps the error's kind, saying what failed in front of the OS's words.
fn failed(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Modes; the rest of the Unix side is the kernel's.
#[cfg(unix)]
mod unix {
    use std::fs::{DirBuilder, File, OpenOptions};
    use std::io;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    use super::{Narrowed, Object};

    const DIR_MODE: u32 = 0o700;
    const FILE_MODE: u32 = 0o600;

    pub fn create_dir(dir: &Path) -> io::Result<()> {
        DirBuilder::new().mode(DIR_MODE).create(dir)?;
        set_mode(dir, DIR_MODE)
    }

    pub fn create_new_file(path: &Path) -> io::Result<File> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(path)?;
        set_mode(path, FILE_MODE)?;
        Ok(file)
    }

    /// Takes away every group and other bit, keeping the rest.
    pub fn narrow(path: &Path, _object: Object) -> io::Result<Option<Narrowed>> {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(None);
        }
        let narrowed = mode & !0o077;
        set_mode(path, narrowed)?;
        Ok(Some(Narrowed {
            was: format!("mode {mode:04o}"),
            now: format!("mode {narrowed:04o}"),
        }))
    }

    fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
}
