//! A host id made up once and kept on disk, for machines whose OS offers no
//! machine id. It is stable across agent restarts, unlike anything derived
//! from the hostname (hostnames are not unique) or from the boot.

use std::fs;
use std::path::PathBuf;

/// Reads the saved id, or makes one up and saves it.
pub(super) fn load_or_create() -> String {
    let dir = state_dir();
    let file = dir.join("host-id");
    if let Some(id) = fs::read_to_string(&file)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|id| !id.is_empty())
    {
        return id;
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    match fs::create_dir_all(&dir).and_then(|()| fs::write(&file, &id)) {
        Ok(()) => tracing::warn!(
            file = %file.display(),
            "the OS gives no machine id; made up a host id and saved it"
        ),
        Err(error) => tracing::warn!(
            file = %file.display(), %error,
            "the OS gives no machine id and the made-up host id could not be saved: \
             this host will show up as a new one when the agent restarts"
        ),
    }
    id
}

/// The per-user state directory (`$XDG_STATE_HOME`, `~/.local/state`,
/// `%LOCALAPPDATA%`), else a system-wide one.
fn state_dir() -> PathBuf {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = from_env("XDG_STATE_HOME").or_else(|| from_env("LOCALAPPDATA")) {
        return dir.join("procmon-agent");
    }
    match from_env("HOME") {
        Some(home) => home.join(".local/state/procmon-agent"),
        None if cfg!(windows) => PathBuf::from(r"C:\ProgramData\procmon-agent"),
        None => PathBuf::from("/var/lib/procmon-agent"),
    }
}
