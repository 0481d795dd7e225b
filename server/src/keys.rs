//! The agent key: given in the configuration, or generated on first start
//! and kept in a file readable only by the server's user. (People sign in
//! instead: see `accounts`.)

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

/// The keys the server checks.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Agents send this with every snapshot.
    pub agent: SecretString,
    /// Files the keys were read from or generated into (none for a key given
    /// in the configuration), to tell the user where to find them.
    pub files: Vec<PathBuf>,
}

impl Keys {
    /// Each key from the configuration, else from its file in `data_dir`,
    /// else newly generated into that file.
    pub fn resolve(data_dir: &Path, agent: Option<SecretString>) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        let mut pick = |given: Option<SecretString>, file: &str| -> anyhow::Result<SecretString> {
            match given {
                Some(key) if key.expose_secret().trim().is_empty() => {
                    anyhow::bail!("the configured {file} is empty")
                }
                Some(key) => Ok(key),
                None => {
                    let path = data_dir.join(file);
                    let key = load_or_create(&path)?;
                    files.push(path);
                    Ok(key)
                }
            }
        };
        let agent = pick(agent, "agent.key")?;
        Ok(Self { agent, files })
    }
}

/// Reads the key in `path`, or writes a new random one there (mode 0600 on
/// Unix) if the file does not exist yet.
pub fn load_or_create(path: &Path) -> anyhow::Result<SecretString> {
    match read_key(path) {
        Ok(key) => return Ok(key),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        crate::private::create_dir(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let key = generate_key()?;
    // create_new: if another server process made the file a moment ago, we
    // read its key instead of overwriting it.
    match crate::private::create_new_file(path) {
        Ok(mut file) => {
            file.write_all(format!("{key}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write key file {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new key");
            Ok(SecretString::from(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(e).with_context(|| format!("cannot create key file {}", path.display())),
    }
}

fn read_key(path: &Path) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    let key = text.trim();
    anyhow::ensure!(
        !key.is_empty(),
        "key file {} is empty; delete it to have a new key generated",
        path.display()
    );
    warn_if_readable_by_others(path);
    Ok(SecretString::from(key.to_owned()))
}

fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "key file is readable by other users; `chmod 600` it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// 32 random bytes from the OS, as 64 hex digits.
fn generate_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("agent.key");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.expose_secret().len(), 64);
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn configured_key_wins_and_writes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::resolve(dir.path(), Some(SecretString::from("given"))).unwrap();
        assert_eq!(keys.agent.expose_secret(), "given");
        assert!(!dir.path().join("agent.key").exists());
        assert!(keys.files.is_empty());
        assert!(!format!("{keys:?}").contains("given"));
    }

    #[test]
    fn empty_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        std::fs::write(&path, "\n").unwrap();
        let error = load_or_create(&path).unwrap_err().to_string();
        assert!(error.contains("is empty"), "{error}");
    }
}
