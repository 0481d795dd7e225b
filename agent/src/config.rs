//! The agent's settings, layered: built-in defaults, then a TOML file, then
//! environment variables (`PROCMON_AGENT_*`), then command-line flags. Each
//! layer overrides only what it sets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::tls::{CaFile, ServerTrust};

/// Where the agent sends when nothing says otherwise: a server on this
/// machine, as `cargo run --release` starts it.
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:8000";

/// How often a snapshot is taken and sent when nothing says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Shorter intervals measure CPU % over too little time to mean anything.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Longer intervals are refused by the server.
pub use procmon_model::limits::MAX_INTERVAL;

/// The name of the config file the agent looks for beside its executable,
/// then in the working directory.
pub const FILE_NAME: &str = "procmon-agent.toml";

/// A commented config file with every key, for people to start from.
pub const DEFAULT_FILE_TEXT: &str = r#"# procmon agent settings. Environment variables PROCMON_AGENT_SERVER_URL,
# PROCMON_AGENT_API_KEY, PROCMON_AGENT_INTERVAL and PROCMON_AGENT_CA_FILE
# override these, and the flags --server-url, --api-key, --interval and
# --ca-file override both.

# The procmon server to send snapshots to.
server_url = "http://127.0.0.1:8000"

# The agent key: copy it from the agent.key file in the server's data
# directory (the server prints where when it starts).
api_key = ""

# How often to take and send a snapshot, e.g. "2s", "500ms", "1m".
interval = "2s"

# For an https:// server whose certificate is self-signed or from your own
# CA: that CA's certificate (the server's certificate itself, if
# self-signed), as a PEM file. A relative path is relative to this file's
# folder. Certificates from public CAs need nothing here.
# ca_file = "procmon-ca.pem"
"#;

/// What the running agent needs: where to send, with which key, how often.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URL of the procmon server, e.g. `http://127.0.0.1:8000`.
    pub server_url: String,
    /// The server's agent key, sent as `Authorization: Bearer`. Never printed.
    pub api_key: SecretString,
    /// Time between two snapshots.
    pub interval: Duration,
    /// Which certificates an https server may present.
    pub trust: ServerTrust,
}

impl AgentConfig {
    /// A config with the default interval (2 s), trusting the public CAs.
    pub fn new(server_url: impl Into<String>, api_key: impl Into<SecretString>) -> AgentConfig {
        AgentConfig {
            server_url: server_url.into(),
            api_key: api_key.into(),
            interval: DEFAULT_INTERVAL,
            trust: ServerTrust::default(),
        }
    }
}

/// A setting that is wrong, said so that a person can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    FileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {} is not valid: {message}", path.display())]
    FileInvalid { path: PathBuf, message: String },
    #[error("{origin}: {value:?} is not a valid {key}: {reason}")]
    BadValue {
        /// Where the value came from, e.g. "the flag --interval".
        origin: String,
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "no API key is set: put api_key in the config file ({file}), or set \
         PROCMON_AGENT_API_KEY, or pass --api-key; the key is in the server's agent.key file"
    )]
    MissingApiKey { file: String },
    #[error(
        "the CA file {} (ca_file) cannot be used: {reason}; give the PEM file of the CA \
         that issued the server's certificate",
        path.display()
    )]
    CaFile { path: PathBuf, reason: String },
}

/// The keys of the config file; unknown keys are an error, so a typo is
/// not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    /// See [`AgentConfig::server_url`].
    server_url: Option<String>,
    /// See [`AgentConfig::api_key`].
    api_key: Option<SecretString>,
    /// A duration such as "2s"; see [`AgentConfig::interval`].
    interval: Option<String>,
    /// See [`Settings::ca_file`]; relative to the file's folder.
    ca_file: Option<PathBuf>,
}

/// What the command line sets (highest priority); `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`: this file must exist; without it the default places are
    /// searched and a missing file is fine.
    pub config_file: Option<PathBuf>,
    /// `--server-url`.
    pub server_url: Option<String>,
    /// `--api-key`.
    pub api_key: Option<SecretString>,
    /// `--interval`, unparsed so its error can name the flag.
    pub interval: Option<String>,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
}

/// The settings after every layer, before a key is required (printing a
/// snapshot needs none).
#[derive(Debug, Clone)]
pub struct Settings {
    /// See [`AgentConfig::server_url`].
    pub server_url: String,
    /// See [`AgentConfig::api_key`]; `None` when no layer set one.
    pub api_key: Option<SecretString>,
    /// See [`AgentConfig::interval`].
    pub interval: Duration,
    /// A PEM file of CA certificates to trust besides the public CAs, for a
    /// server whose certificate is self-signed or from a private CA.
    pub ca_file: Option<PathBuf>,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
}

impl Settings {
    /// Reads every layer: the file, the process environment, then `flags`.
    pub fn load(flags: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_with_env(flags, |name| std::env::var(name).ok())
    }

    /// As [`load`](Self::load), with the environment given by `env`.
    pub fn load_with_env(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file = match &flags.config_file {
            Some(path) => Some(path.clone()),
            None => default_file(),
        };
        let layer = match &file {
            Some(path) => read_file(path)?,
            None => FileLayer::default(),
        };
        let mut settings = Settings {
            server_url: DEFAULT_SERVER_URL.to_owned(),
            api_key: None,
            interval: DEFAULT_INTERVAL,
            ca_file: None,
            file: file.clone(),
        };
        if let Some(path) = &file {
            // The file's folder, not the working directory, which for a
            // Windows service is System32.
            let folder = path.parent().unwrap_or(Path::new(""));
            settings.apply(
                |key| format!("the config file {}, key {key}", path.display()),
                layer.server_url,
                layer.api_key,
                layer.interval,
                layer.ca_file.map(|ca| folder.join(ca)),
            )?;
        }
        settings.apply(
            |key| {
                format!(
                    "the environment variable PROCMON_AGENT_{}",
                    key.to_uppercase()
                )
            },
            env("PROCMON_AGENT_SERVER_URL"),
            env("PROCMON_AGENT_API_KEY").map(SecretString::from),
            env("PROCMON_AGENT_INTERVAL"),
            env("PROCMON_AGENT_CA_FILE").map(PathBuf::from),
        )?;
        settings.apply(
            |key| format!("the flag --{}", key.replace('_', "-")),
            flags.server_url.clone(),
            flags.api_key.clone(),
            flags.interval.clone(),
            flags.ca_file.clone(),
        )?;
        Ok(settings)
    }

    fn apply(
        &mut self,
        origin: impl Fn(&str) -> String,
        server_url: Option<String>,
        api_key: Option<SecretString>,
        interval: Option<String>,
        ca_file: Option<PathBuf>,
    ) -> Result<(), ConfigError> {
        if let Some(url) = server_url {
            self.server_url = parse_server_url(&origin("server_url"), &url)?;
        }
        if let Some(key) = api_key {
            use secrecy::ExposeSecret;
            // An empty key (as in the default file) means "not set yet".
            if !key.expose_secret().trim().is_empty() {
                self.api_key = Some(key);
            }
        }
        if let Some(text) = interval {
            self.interval = parse_interval(&origin("interval"), &text)?;
        }
        // Empty, as a variable set to nothing, means "not set".
        if let Some(path) = ca_file.filter(|p| !p.as_os_str().is_empty()) {
            self.ca_file = Some(path);
        }
        Ok(())
    }

    /// The config for sending, which needs a key, and the CA file's
    /// certificates when one is set (read now, so that a bad file stops the
    /// agent at start, named).
    pub fn into_agent_config(self) -> Result<AgentConfig, ConfigError> {
        let Some(api_key) = self.api_key else {
            let file = self.file.as_deref().map_or_else(
                || format!("{FILE_NAME} beside the agent"),
                |path| path.display().to_string(),
            );
            return Err(ConfigError::MissingApiKey { file });
        };
        let trust = match self.ca_file {
            Some(path) => ServerTrust::CaFile(
                CaFile::read(&path).map_err(|reason| ConfigError::CaFile { path, reason })?,
            ),
            None => ServerTrust::PublicCas,
        };
        Ok(AgentConfig {
            server_url: self.server_url,
            api_key,
            interval: self.interval,
            trust,
        })
    }
}

/// `procmon-agent.toml` beside the executable, else in the working
/// directory; `None` if neither exists.
pub fn default_file() -> Option<PathBuf> {
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(FILE_NAME)));
    beside_exe
        .into_iter()
        .chain(std::iter::once(PathBuf::from(FILE_NAME)))
        .find(|path| path.is_file())
}

fn read_file(path: &Path) -> Result<FileLayer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::FileUnreadable {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|error| ConfigError::FileInvalid {
        path: path.to_owned(),
        // toml's message names the key and shows the line.
        message: error.to_string().trim_end().to_owned(),
    })
}

fn parse_server_url(origin: &str, text: &str) -> Result<String, ConfigError> {
    let bad = |reason: String| ConfigError::BadValue {
        origin: origin.to_owned(),
        key: "server_url",
        value: text.to_owned(),
        reason,
    };
    crate::send::parse_server_url(text).map_err(bad)?;
    Ok(text.trim().trim_end_matches('/').to_owned())
}

fn parse_interval(origin: &str, text: &str) -> Result<Duration, ConfigError> {
    let bad = |reason: String| ConfigError::BadValue {
        origin: origin.to_owned(),
        key: "interval",
        value: text.to_owned(),
        reason,
    };
    let interval = humantime::parse_duration(text.trim())
        .map_err(|e| bad(format!("{e}; write a duration such as \"2s\" or \"500ms\"")))?;
    if interval < MIN_INTERVAL {
        return Err(bad(format!(
            "it must be at least {}",
            humantime::format_duration(MIN_INTERVAL)
        )));
    }
    if interval > MAX_INTERVAL {
        return Err(bad(format!(
            "it must be at most {}, the longest the server accepts",
            humantime::format_duration(MAX_INTERVAL)
        )));
    }
    Ok(interval)
}
