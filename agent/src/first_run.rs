//! Starting without a usable config, as a double-clicked agent does: write
//! a commented config file for the person to fill in, then wait until the
//! settings are complete instead of exiting (a console window that closes
//! at once tells nobody anything).
//!
//! Any OS can use this; the Windows .exe does it by itself when started
//! without arguments.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Overrides, Settings};
use crate::AgentConfig;

/// How often the settings are read again while they are incomplete, so a
/// saved edit takes effect without a restart.
const RECHECK: Duration = Duration::from_secs(2);

/// Writes the commented default config file (every key, with its default
/// and what it means) into `dir`, unless a file of that name is there.
/// Returns its path, and whether it was written now.
pub fn write_default_config(dir: &Path) -> std::io::Result<(PathBuf, bool)> {
    let path = dir.join(config::FILE_NAME);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut file) => {
            file.write_all(config::DEFAULT_FILE_TEXT.as_bytes())?;
            Ok((path, true))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok((path, false)),
        Err(error) => Err(error),
    }
}

/// What to tell the person after [`write_default_config`] wrote `path`.
pub fn instructions(path: &Path) -> String {
    format!(
        "No settings were found, so a commented config file was written: {}\n\
         Edit it and set:\n\
         \x20 server_url = the procmon server, e.g. \"http://my-server:8000\" (now {})\n\
         \x20 enroll_secret = the enrollment secret the server printed at its first start\n\
         Save the file: the agent picks it up by itself. Until then it keeps running here.",
        path.display(),
        config::DEFAULT_SERVER_URL,
    )
}

/// Loads the settings until they are complete (a key is set and every value
/// is valid), logging each new problem once with what to fix. Never fails:
/// it waits for the fix, re-reading the file every few seconds.
pub async fn wait_for_config(overrides: &Overrides) -> AgentConfig {
    let mut last_problem: Option<String> = None;
    loop {
        match Settings::load(overrides).and_then(Settings::into_agent_config) {
            Ok(config) => {
                if last_problem.is_some() {
                    tracing::info!("the settings are complete now; starting");
                }
                return config;
            }
            Err(error) => {
                let problem = error.to_string();
                if last_problem.as_deref() != Some(problem.as_str()) {
                    tracing::error!("{problem}");
                    tracing::info!("waiting for the config file to be fixed; it is read again every few seconds");
                    last_problem = Some(problem);
                }
            }
        }
        tokio::time::sleep(RECHECK).await;
    }
}

/// Waits for complete settings ([`wait_for_config`]), then runs the agent
/// with them; either step ends when the future `stop()` makes completes.
pub async fn run_when_configured<F>(
    overrides: &Overrides,
    stop: impl Fn() -> F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()>,
{
    let config = tokio::select! {
        config = wait_for_config(overrides) => config,
        () = stop() => return Ok(()),
    };
    crate::run(config, stop()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_default_file_once_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let (path, written) = write_default_config(dir.path()).unwrap();
        assert!(written);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            config::DEFAULT_FILE_TEXT
        );

        std::fs::write(&path, "api_key = \"mine\"\n").unwrap();
        let (again, written) = write_default_config(dir.path()).unwrap();
        assert_eq!(again, path);
        assert!(!written);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "api_key = \"mine\"\n"
        );
    }

    #[tokio::test]
    async fn waits_until_the_file_has_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_default_config(dir.path()).unwrap();
        let overrides = Overrides {
            config_file: Some(path.clone()),
            ..Overrides::default()
        };
        let waiting = tokio::spawn(async move { wait_for_config(&overrides).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "must wait while api_key is empty");

        let text = config::DEFAULT_FILE_TEXT.replace("api_key = \"\"", "api_key = \"k-123\"");
        std::fs::write(&path, text).unwrap();
        let config = tokio::time::timeout(RECHECK * 3, waiting)
            .await
            .expect("picks up the key")
            .unwrap();
        use secrecy::ExposeSecret;
        let crate::AgentKey::Given(key) = &config.key else {
            panic!("a given key: {:?}", config.key);
        };
        assert_eq!(key.expose_secret(), "k-123");
        assert_eq!(config.server_urls, [config::DEFAULT_SERVER_URL]);
    }

    #[tokio::test]
    async fn a_stop_while_waiting_for_the_key_ends_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_default_config(dir.path()).unwrap();
        let overrides = Overrides {
            config_file: Some(path),
            ..Overrides::default()
        };
        let stop = || tokio::time::sleep(Duration::from_millis(300));
        tokio::time::timeout(RECHECK * 3, run_when_configured(&overrides, stop))
            .await
            .expect("the stop ends the wait")
            .expect("stopping is not an error");
    }
}
