//! Files and directories only the server's user may read: the data
//! directory (the database holds command lines, which can hold secrets)
//! and the key files.
//!
//! The mode is set after creating, not only asked for when creating: the
//! umask narrows a mode given to open/mkdir, and a narrowed one (a
//! directory without the owner's write bit, a key without read) breaks the
//! next start.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `dir` (and its missing parents) with mode 0700. An existing
/// directory is left as it is.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    set_mode(dir, 0o700)
}

/// Creates `path`, which must not exist yet, for writing, with mode 0600.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    set_mode(path, 0o600)?;
    Ok(file)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
