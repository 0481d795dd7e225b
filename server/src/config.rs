//! The server's settings, layered: an optional TOML file, then `PROCMON_*`
//! environment variables, then command-line flags (each layer overrides the
//! one before it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use procmon_model::limits::{INTERVAL_MS, MAX_INTERVAL};
use secrecy::SecretString;
use serde::Deserialize;

use crate::store::Retention;

/// The config file read when `--config` is not given, if it exists in the
/// working directory.
pub const DEFAULT_CONFIG_FILE: &str = "procmon-server.toml";

/// Everything the server needs to start, after all layers are merged.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address and port to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Where the database and the generated key files live.
    pub data_dir: PathBuf,
    /// The SQLite database file, created if missing.
    pub database_path: PathBuf,
    /// The key agents must send; `None` means the one kept in
    /// `<data_dir>/agent.key`, generated on first start.
    pub agent_key: Option<SecretString>,
    /// The key readers must send when the server listens beyond loopback;
    /// `None` means the one kept in `<data_dir>/viewer.key`.
    pub viewer_key: Option<SecretString>,
    /// How long raw snapshots, minute and hour roll-ups are kept.
    pub retention: Retention,
    /// How often history is rolled up and expired data dropped.
    pub maintenance_every: Duration,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Whether the server runs an agent for its own machine that sends to
    /// itself.
    pub embedded_agent: bool,
    /// How often the embedded agent takes a snapshot.
    pub embedded_agent_interval: Duration,
}

impl Settings {
    /// The defaults, with the data under `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_path: data_dir.join("procmon.db"),
            data_dir,
            agent_key: None,
            viewer_key: None,
            retention: Retention::default(),
            maintenance_every: Duration::from_secs(60),
            body_limit: 32 * 1024 * 1024,
            embedded_agent: true,
            embedded_agent_interval: Duration::from_secs(2),
        }
    }

    /// Settings from the command line, the environment and the config file.
    pub fn load() -> anyhow::Result<Self> {
        Self::from_cli(Cli::parse())
    }

    /// Merges the layers: `cli` already holds flags over environment
    /// variables (clap reads both); the file fills what neither set.
    pub fn from_cli(cli: Cli) -> anyhow::Result<Self> {
        let file = match &cli.config {
            Some(path) => FileConfig::read(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                FileConfig::read(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        let data_dir = cli
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("procmon-data"));
        let defaults = Self::with_data_dir(&data_dir);
        Self {
            listen: cli.listen.or(file.listen).unwrap_or(defaults.listen),
            database_path: cli
                .database
                .or(file.database)
                .unwrap_or(defaults.database_path),
            agent_key: cli.agent_key.or(file.agent_key),
            viewer_key: cli.viewer_key.or(file.viewer_key),
            retention: Retention {
                raw: cli
                    .retention
                    .map(Duration::from)
                    .or(file.retention)
                    .unwrap_or(defaults.retention.raw),
                minute: cli
                    .minute_retention
                    .map(Duration::from)
                    .or(file.minute_retention)
                    .unwrap_or(defaults.retention.minute),
                hour: cli
                    .hour_retention
                    .map(Duration::from)
                    .or(file.hour_retention)
                    .unwrap_or(defaults.retention.hour),
            },
            body_limit: cli
                .body_limit
                .or(file.body_limit)
                .unwrap_or(defaults.body_limit),
            embedded_agent: if cli.no_agent {
                false
            } else {
                file.embedded_agent.unwrap_or(defaults.embedded_agent)
            },
            embedded_agent_interval: cli
                .embedded_agent_interval
                .map(Duration::from)
                .or(file.embedded_agent_interval)
                .unwrap_or(defaults.embedded_agent_interval),
            data_dir,
            ..defaults
        }
        .checked()
    }

    /// The settings, or what is out of range in them.
    pub fn checked(self) -> anyhow::Result<Self> {
        let r = self.retention;
        anyhow::ensure!(
            r.raw >= Duration::from_secs(60),
            "retention {} is too short: keep snapshots at least 1m",
            humantime::format_duration(r.raw)
        );
        anyhow::ensure!(
            r.minute >= r.raw,
            "minute_retention {} is shorter than retention {}: roll-ups must outlive the snapshots they summarise",
            humantime::format_duration(r.minute),
            humantime::format_duration(r.raw)
        );
        anyhow::ensure!(
            r.hour >= r.minute,
            "hour_retention {} is shorter than minute_retention {}",
            humantime::format_duration(r.hour),
            humantime::format_duration(r.minute)
        );
        anyhow::ensure!(
            self.body_limit >= 64 * 1024,
            "body_limit {} is too small: one snapshot needs at least 65536 bytes",
            self.body_limit
        );
        let (shortest, longest) = (Duration::from_millis(*INTERVAL_MS.start()), MAX_INTERVAL);
        anyhow::ensure!(
            (shortest..=longest).contains(&self.embedded_agent_interval),
            "embedded_agent_interval {} is out of range: it must be between {} and {}",
            humantime::format_duration(self.embedded_agent_interval),
            humantime::format_duration(shortest),
            humantime::format_duration(longest)
        );
        Ok(self)
    }
}

/// Command-line flags; each can also be set by the environment variable
/// named beside it.
#[derive(Debug, Default, Parser)]
#[command(
    name = "procmon-server",
    version,
    about = "The procmon server: stores agents' snapshots and serves the process tree page"
)]
pub struct Cli {
    /// TOML config file [default: ./procmon-server.toml if it exists].
    #[arg(long, env = "PROCMON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8000].
    #[arg(long, env = "PROCMON_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database and key files [default: ./procmon-data].
    #[arg(long, env = "PROCMON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// SQLite database file [default: <data dir>/procmon.db].
    #[arg(long, env = "PROCMON_DATABASE")]
    pub database: Option<PathBuf>,
    /// Key agents must send [default: generated into <data dir>/agent.key].
    #[arg(long, env = "PROCMON_AGENT_KEY", hide_env_values = true)]
    pub agent_key: Option<SecretString>,
    /// Key readers must send when listening beyond loopback [default:
    /// generated into <data dir>/viewer.key].
    #[arg(long, env = "PROCMON_VIEWER_KEY", hide_env_values = true)]
    pub viewer_key: Option<SecretString>,
    /// How long every snapshot is kept as sent (exact trees, time
    /// travel), e.g. "24h", "7days" [default: 7days].
    #[arg(long, env = "PROCMON_RETENTION")]
    pub retention: Option<humantime::Duration>,
    /// How long one-minute roll-ups (average, minimum, maximum) are kept
    /// [default: 90days].
    #[arg(long, env = "PROCMON_MINUTE_RETENTION")]
    pub minute_retention: Option<humantime::Duration>,
    /// How long one-hour roll-ups are kept [default: 730days].
    #[arg(long, env = "PROCMON_HOUR_RETENTION")]
    pub hour_retention: Option<humantime::Duration>,
    /// Largest request body in bytes [default: 33554432, 32 MiB].
    #[arg(long, env = "PROCMON_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Do not run the agent for this machine inside the server.
    #[arg(long, env = "PROCMON_NO_AGENT")]
    pub no_agent: bool,
    /// Snapshot interval of the embedded agent, e.g. "2s" [default: 2s].
    #[arg(long, env = "PROCMON_EMBEDDED_AGENT_INTERVAL")]
    pub embedded_agent_interval: Option<humantime::Duration>,
}

/// The config file's keys; all optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Address to listen on, e.g. "127.0.0.1:8000".
    listen: Option<SocketAddr>,
    /// Directory for the database and key files.
    data_dir: Option<PathBuf>,
    /// SQLite database file.
    database: Option<PathBuf>,
    /// Key agents must send.
    agent_key: Option<SecretString>,
    /// Key readers must send when listening beyond loopback.
    viewer_key: Option<SecretString>,
    /// How long snapshots are kept as sent, e.g. "7days".
    #[serde(default, with = "humantime_serde")]
    retention: Option<Duration>,
    /// How long one-minute roll-ups are kept, e.g. "90days".
    #[serde(default, with = "humantime_serde")]
    minute_retention: Option<Duration>,
    /// How long one-hour roll-ups are kept, e.g. "730days".
    #[serde(default, with = "humantime_serde")]
    hour_retention: Option<Duration>,
    /// Largest request body in bytes.
    body_limit: Option<usize>,
    /// Whether to run the agent for this machine inside the server.
    embedded_agent: Option<bool>,
    /// Snapshot interval of the embedded agent, e.g. "2s".
    #[serde(default, with = "humantime_serde")]
    embedded_agent_interval: Option<Duration>,
}

impl FileConfig {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        // toml's message names the unknown key and lists the known ones.
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cli_with_file(text: &str) -> (tempfile::NamedTempFile, Cli) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let cli = Cli {
            config: Some(file.path().to_owned()),
            ..Cli::default()
        };
        (file, cli)
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let (_file, cli) = cli_with_file("listen = \"127.0.0.1:9000\"\nretension = \"1h\"\n");
        let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
        assert!(error.contains("retension"), "{error}");
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let (_file, mut cli) = cli_with_file(
            "listen = \"127.0.0.1:9000\"\nretention = \"2h\"\ndata_dir = \"d\"\nembedded_agent = false\n",
        );
        cli.retention = Some("30m".parse().unwrap());
        let settings = Settings::from_cli(cli).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(settings.retention.raw, Duration::from_secs(30 * 60));
        assert_eq!(settings.retention.minute, Retention::default().minute);
        assert_eq!(
            settings.database_path,
            PathBuf::from("d").join("procmon.db")
        );
        assert!(!settings.embedded_agent);
        assert_eq!(settings.body_limit, 32 * 1024 * 1024);
    }

    #[test]
    fn out_of_range_values_are_refused_naming_them() {
        for (text, expected) in [
            ("retention = \"10s\"\n", "retention 10s is too short"),
            ("body_limit = 100\n", "body_limit 100 is too small"),
            (
                "embedded_agent_interval = \"1ms\"\n",
                "embedded_agent_interval 1ms",
            ),
            (
                "embedded_agent_interval = \"2days\"\n",
                "embedded_agent_interval 2days is out of range: it must be between 100ms and 1day",
            ),
        ] {
            let (_file, cli) = cli_with_file(text);
            let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn debug_never_prints_keys() {
        let mut settings = Settings::with_data_dir("d");
        settings.agent_key = Some(SecretString::from("agent-secret-1234"));
        settings.viewer_key = Some(SecretString::from("viewer-secret-5678"));
        let printed = format!("{settings:?}");
        assert!(!printed.contains("agent-secret-1234"), "{printed}");
        assert!(!printed.contains("viewer-secret-5678"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }
}
