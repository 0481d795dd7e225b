//! The agent's settings, layered: built-in defaults, then a TOML file, then
//! environment variables (`PROCMON_AGENT_*`), then command-line flags. Each
//! layer overrides only what it sets.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use procmon_model::actions::ActionKind;
use procmon_model::limits::{check_label, MAX_LABELS};

use crate::actions::{saved_key_file, ActionOptions, ActionSettings, PinnedKey, ServerKey};
use crate::tls::{CaFile, ServerTrust};

/// Where the agent sends when nothing says otherwise: a server on this
/// machine, as `cargo run --release` starts it.
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:8000";

pub use crate::failover::DEFAULT_RETURN_AFTER;
pub use crate::run::DEFAULT_FULL_EVERY;

/// How often a snapshot is taken and sent when nothing says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Shorter intervals measure CPU % over too little time to mean anything.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Longer intervals are refused by the server.
pub use procmon_model::limits::MAX_INTERVAL;

/// The name of the config file the agent looks for beside its executable,
/// then in the working directory.
pub const FILE_NAME: &str = "procmon-agent.toml";

/// The file an enrolled agent keeps its host key in, beside its config
/// file (or in the working directory when it has none).
pub const KEY_FILE_NAME: &str = "procmon-agent.key";

/// The folder the agent keeps unsent snapshots in, beside its key file.
pub const SPOOL_DIR_NAME: &str = "procmon-agent-spool";

/// How many MiB of unsent snapshots are kept when nothing says otherwise.
pub const DEFAULT_SPOOL_MAX_MB: u64 = 64;

/// The most `spool_max_mb` may be (1 TiB), far past any use, so that the
/// size in bytes cannot overflow.
pub const MAX_SPOOL_MAX_MB: u64 = 1024 * 1024;

const MIB: u64 = 1024 * 1024;

/// A commented config file with every key, for people to start from.
pub const DEFAULT_FILE_TEXT: &str = r#"# procmon agent settings. Environment variables PROCMON_AGENT_SERVER_URL,
# PROCMON_AGENT_ENROLL_SECRET, PROCMON_AGENT_API_KEY, PROCMON_AGENT_KEY_FILE,
# PROCMON_AGENT_INTERVAL, PROCMON_AGENT_FULL_EVERY, PROCMON_AGENT_CA_FILE,
# PROCMON_AGENT_SPOOL_DIR, PROCMON_AGENT_SPOOL_MAX_MB, PROCMON_AGENT_LABELS,
# PROCMON_AGENT_ACTIONS_ENABLED, PROCMON_AGENT_ACTIONS_ALLOW and
# PROCMON_AGENT_ACTIONS_SERVER_KEY override these, and the flags
# --server-url, --enroll-secret, --api-key, --key-file, --interval,
# --full-every, --ca-file, --spool-dir, --spool-max-mb, --labels,
# --actions-enabled, --actions-allow and --actions-server-key override both.

# The procmon server to send snapshots to. Or several that share one
# database, as a list: ["https://a:8000", "https://b:8000"] (in the
# environment and flags: separated by commas); the agent sends
# to the first, goes on with the next while one is down, and comes back to
# the first once it answers again.
server_url = "http://127.0.0.1:8000"

# The server's enrollment secret (pme_...): the server prints it at its
# first start (`procmon-server enroll-secret rotate` makes a new one). The
# agent exchanges it once for this machine's own key, which it keeps in
# procmon-agent.key beside this file.
enroll_secret = ""

# Or this machine's key itself (pmk_...), made with
# `procmon-server keys create --host <host id>`; then no enrollment.
api_key = ""

# How often to take and send a snapshot, e.g. "2s", "500ms", "1m".
interval = "2s"

# Between these, only what changed goes to the server; this often the
# whole snapshot goes again, e.g. "10m".
full_every = "10m"

# For an https:// server whose certificate is self-signed or from your own
# CA: that CA's certificate (the server's certificate itself, if
# self-signed), as a PEM file. A relative path is relative to this file's
# folder. Certificates from public CAs need nothing here.
# ca_file = "procmon-ca.pem"

# Where snapshots wait while the server cannot be reached. A relative path
# is relative to this file's folder.
# spool_dir = "procmon-agent-spool"

# The most the waiting snapshots may take on disk, in MiB; past it the
# oldest are dropped.
# spool_max_mb = 64

# Labels for this host, such as "prod" or "role=db": alert rules can apply
# to the hosts carrying them. At most 32, each 1 to 64 letters, digits and
# _ . : = / - (in the environment and flags: separated by commas).
# labels = ["prod", "role=db"]

# Acting on this machine's processes when an operator asks on the page.
# Off unless enabled. Each action is signed by the server and checked
# against its key, which enrollment saves beside the key file.
# [actions]
# enabled = true
# What may be done: terminate, kill, suspend, resume (these four unless
# set) and lower_priority (only when listed).
# allow = ["terminate", "kill", "suspend", "resume"]
# The server's key, as `procmon-server action-key` prints it: for an agent
# given api_key rather than enrolled (set here, it wins over the saved one).
# server_key = "ed25519:..."
"#;

/// What the running agent needs: where to send, with which key, how often.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URLs of the procmon servers, e.g. `http://127.0.0.1:8000`, the
    /// preferred first; never empty (see [`crate::failover`]).
    pub server_urls: Vec<String>,
    /// How long the agent stays away from the first server before trying
    /// it again ([`DEFAULT_RETURN_AFTER`]).
    pub return_after: Duration,
    /// How the agent gets the key it sends as `Authorization: Bearer`.
    pub key: AgentKey,
    /// Time between two snapshots.
    pub interval: Duration,
    /// Time between two snapshots sent in full; those between go as
    /// change batches.
    pub full_every: Duration,
    /// Which certificates an https server may present.
    pub trust: ServerTrust,
    /// Where unsent snapshots wait (see [`crate::spool::Spool`]).
    pub spool_dir: PathBuf,
    /// The most the spool may hold on disk.
    pub spool_max_bytes: NonZeroU64,
    /// Whether and how the agent acts on processes ([`crate::actions`]).
    pub actions: ActionOptions,
    /// The host's labels, sent with its facts (`HostInfo::labels`).
    pub labels: Vec<String>,
}

/// Where the agent's key comes from. Never printed.
#[derive(Debug, Clone)]
pub enum AgentKey {
    /// This machine's key, given in the settings (or kept from an earlier
    /// enrollment).
    Given(SecretString),
    /// Enroll with the server's enrollment secret and keep the host key it
    /// gives in `key_file`; once that file exists, its key is used.
    Enroll {
        secret: SecretString,
        key_file: PathBuf,
    },
}

impl AgentConfig {
    /// A config with a given key and the default interval (2 s), trusting
    /// the public CAs, spooling to [`SPOOL_DIR_NAME`] in the working
    /// directory (an embedding program should point `spool_dir` at its own
    /// data folder).
    pub fn new(server_url: impl Into<String>, api_key: impl Into<SecretString>) -> AgentConfig {
        AgentConfig {
            server_urls: vec![server_url.into()],
            return_after: DEFAULT_RETURN_AFTER,
            key: AgentKey::Given(api_key.into()),
            interval: DEFAULT_INTERVAL,
            full_every: DEFAULT_FULL_EVERY,
            trust: ServerTrust::default(),
            spool_dir: PathBuf::from(SPOOL_DIR_NAME),
            spool_max_bytes: default_spool_max_bytes(),
            actions: ActionOptions::default(),
            labels: Vec::new(),
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
        "no key is set: put the server's enrollment secret in enroll_secret in the config \
         file ({file}) (or PROCMON_AGENT_ENROLL_SECRET, or --enroll-secret): the server prints \
         it at its first start, and the agent exchanges it for this machine's own key; or put \
         this machine's key, made with `procmon-server keys create`, in api_key"
    )]
    MissingApiKey { file: String },
    #[error("cannot read the key file {}: {source}", path.display())]
    KeyFileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the CA file {} (ca_file) cannot be used: {reason}; give the PEM file of the CA \
         that issued the server's certificate",
        path.display()
    )]
    CaFile { path: PathBuf, reason: String },
}

/// What one layer (the file, the environment, the flags) sets. As the
/// file's keys, unknown ones are an error, so a typo is not silently
/// ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    /// See [`AgentConfig::server_urls`]: one URL, or a list of them; text
    /// may hold several, separated by commas (as the environment and flags
    /// give them).
    server_url: Option<UrlList>,
    /// See [`AgentKey::Given`].
    api_key: Option<SecretString>,
    /// See [`AgentKey::Enroll`].
    enroll_secret: Option<SecretString>,
    /// Where an enrolled agent keeps its key.
    key_file: Option<PathBuf>,
    /// A duration such as "2s"; see [`AgentConfig::interval`].
    interval: Option<String>,
    /// A duration such as "10m"; see [`AgentConfig::full_every`].
    full_every: Option<String>,
    /// See [`Settings::ca_file`]; in the file, relative to its folder.
    ca_file: Option<PathBuf>,
    /// See [`Settings::spool_dir`]; in the file, relative to its folder.
    spool_dir: Option<PathBuf>,
    /// Whole MiB; see [`Settings::spool_max_bytes`]. A number in the
    /// file, text from the environment and flags, so that its error can
    /// name where it came from.
    #[serde(default, deserialize_with = "as_text")]
    spool_max_mb: Option<String>,
    /// See [`Settings::labels`].
    labels: Option<LabelList>,
    /// The `[actions]` table.
    actions: Option<ActionsLayer>,
}

/// `[actions]` as a layer sets it (the environment and flags as text).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionsLayer {
    /// See [`ActionSettings::enabled`]: true or false.
    #[serde(default, deserialize_with = "as_text")]
    enabled: Option<String>,
    /// See [`ActionSettings::allow`].
    allow: Option<NameList>,
    /// See [`Settings::server_key`].
    server_key: Option<String>,
}

/// A list of names as a layer gives it: a TOML array, or text separated
/// by commas.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of action kinds, such as [\"terminate\", \"kill\"]"
)]
enum NameList {
    Text(String),
    List(Vec<String>),
}

/// `labels` as a layer gives it: a TOML array, or text separated by
/// commas.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of labels, such as [\"prod\", \"role=db\"]"
)]
enum LabelList {
    Text(String),
    List(Vec<String>),
}

/// What the command line sets (highest priority); `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`: this file must exist; without it the default places are
    /// searched and a missing file is fine.
    pub config_file: Option<PathBuf>,
    /// `--server-url`: one URL, or several separated by commas.
    pub server_url: Option<String>,
    /// `--api-key`.
    pub api_key: Option<SecretString>,
    /// `--enroll-secret`.
    pub enroll_secret: Option<SecretString>,
    /// `--key-file`.
    pub key_file: Option<PathBuf>,
    /// `--interval`, unparsed so its error can name the flag.
    pub interval: Option<String>,
    /// `--full-every`, unparsed so its error can name the flag.
    pub full_every: Option<String>,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--spool-dir`.
    pub spool_dir: Option<PathBuf>,
    /// `--spool-max-mb`, unparsed so its error can name the flag.
    pub spool_max_mb: Option<String>,
    /// `--labels`: labels separated by commas.
    pub labels: Option<String>,
    /// `--actions-enabled` (true or false), unparsed so its error can
    /// name the flag.
    pub actions_enabled: Option<String>,
    /// `--actions-allow`: kinds separated by commas.
    pub actions_allow: Option<String>,
    /// `--actions-server-key`.
    pub actions_server_key: Option<String>,
}

/// The settings after every layer, before a key is required (printing a
/// snapshot needs none).
#[derive(Debug, Clone)]
pub struct Settings {
    /// See [`AgentConfig::server_urls`].
    pub server_urls: Vec<String>,
    /// See [`AgentKey::Given`]; `None` when no layer set one.
    pub api_key: Option<SecretString>,
    /// See [`AgentKey::Enroll`]; `None` when no layer set one.
    pub enroll_secret: Option<SecretString>,
    /// Where an enrolled agent keeps its key: beside the config file, or
    /// in the working directory.
    pub key_file: PathBuf,
    /// See [`AgentConfig::interval`].
    pub interval: Duration,
    /// See [`AgentConfig::full_every`].
    pub full_every: Duration,
    /// A PEM file of CA certificates to trust besides the public CAs, for a
    /// server whose certificate is self-signed or from a private CA.
    pub ca_file: Option<PathBuf>,
    /// Where unsent snapshots wait: [`SPOOL_DIR_NAME`] beside the key file
    /// unless set.
    pub spool_dir: PathBuf,
    /// The most the spool may hold on disk (`spool_max_mb`, 64 MiB unless
    /// set); past it the oldest snapshots are dropped.
    pub spool_max_bytes: NonZeroU64,
    /// The host's labels (none unless set), each once, in the order given;
    /// the layer that sets them replaces the list, not adds to it.
    pub labels: Vec<String>,
    /// `[actions]`: off unless enabled, and what is allowed.
    pub actions: ActionSettings,
    /// `server_key` of `[actions]`: the server key to trust actions from,
    /// pinned; when unset, the one enrollment saved beside the key file.
    pub server_key: Option<ServerKey>,
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
            None => Layer::default(),
        };
        let key_dir = file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_default();
        let mut settings = Settings {
            server_urls: vec![DEFAULT_SERVER_URL.to_owned()],
            api_key: None,
            enroll_secret: None,
            key_file: key_dir.join(KEY_FILE_NAME),
            interval: DEFAULT_INTERVAL,
            full_every: DEFAULT_FULL_EVERY,
            ca_file: None,
            // Empty until a layer sets it; if none does, beside the key
            // file (below), wherever that ends up.
            spool_dir: PathBuf::new(),
            spool_max_bytes: default_spool_max_bytes(),
            labels: Vec::new(),
            actions: ActionSettings::default(),
            server_key: None,
            file: file.clone(),
        };
        if let Some(path) = &file {
            // The file's folder, not the working directory, which for a
            // Windows service is System32.
            let folder = path.parent().unwrap_or(Path::new(""));
            let layer = Layer {
                // Empty is "not set", not this folder.
                ca_file: layer
                    .ca_file
                    .filter(|ca| !ca.as_os_str().is_empty())
                    .map(|ca| folder.join(ca)),
                spool_dir: layer
                    .spool_dir
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .map(|dir| folder.join(dir)),
                ..layer
            };
            settings.apply(
                |key| match key.strip_prefix("actions_") {
                    Some(key) => {
                        format!("the config file {}, key {key} of [actions]", path.display())
                    }
                    None => format!("the config file {}, key {key}", path.display()),
                },
                layer,
            )?;
        }
        settings.apply(
            |key| {
                format!(
                    "the environment variable PROCMON_AGENT_{}",
                    key.to_uppercase()
                )
            },
            Layer {
                server_url: env("PROCMON_AGENT_SERVER_URL").map(UrlList::Text),
                api_key: env("PROCMON_AGENT_API_KEY").map(SecretString::from),
                enroll_secret: env("PROCMON_AGENT_ENROLL_SECRET").map(SecretString::from),
                key_file: env("PROCMON_AGENT_KEY_FILE").map(PathBuf::from),
                interval: env("PROCMON_AGENT_INTERVAL"),
                full_every: env("PROCMON_AGENT_FULL_EVERY"),
                ca_file: env("PROCMON_AGENT_CA_FILE").map(PathBuf::from),
                spool_dir: env("PROCMON_AGENT_SPOOL_DIR").map(PathBuf::from),
                spool_max_mb: env("PROCMON_AGENT_SPOOL_MAX_MB"),
                labels: env("PROCMON_AGENT_LABELS").map(LabelList::Text),
                actions: Some(ActionsLayer {
                    enabled: env("PROCMON_AGENT_ACTIONS_ENABLED"),
                    allow: env("PROCMON_AGENT_ACTIONS_ALLOW").map(NameList::Text),
                    server_key: env("PROCMON_AGENT_ACTIONS_SERVER_KEY"),
                }),
            },
        )?;
        settings.apply(
            |key| format!("the flag --{}", key.replace('_', "-")),
            Layer {
                server_url: flags.server_url.clone().map(UrlList::Text),
                api_key: flags.api_key.clone(),
                enroll_secret: flags.enroll_secret.clone(),
                key_file: flags.key_file.clone(),
                interval: flags.interval.clone(),
                full_every: flags.full_every.clone(),
                ca_file: flags.ca_file.clone(),
                spool_dir: flags.spool_dir.clone(),
                spool_max_mb: flags.spool_max_mb.clone(),
                labels: flags.labels.clone().map(LabelList::Text),
                actions: Some(ActionsLayer {
                    enabled: flags.actions_enabled.clone(),
                    allow: flags.actions_allow.clone().map(NameList::Text),
                    server_key: flags.actions_server_key.clone(),
                }),
            },
        )?;
        if settings.spool_dir.as_os_str().is_empty() {
            // Beside the key file: the agent's own folder, where it may
            // write (for a Windows service, not System32).
            let folder = settings.key_file.parent().unwrap_or(Path::new(""));
            settings.spool_dir = folder.join(SPOOL_DIR_NAME);
        }
        Ok(settings)
    }

    fn apply(&mut self, origin: impl Fn(&str) -> String, layer: Layer) -> Result<(), ConfigError> {
        if let Some(urls) = layer.server_url {
            self.server_urls = parse_server_urls(&origin("server_url"), urls)?;
        }
        // An empty key or secret (as in the default file) means "not set".
        if let Some(key) = layer.api_key.filter(is_set) {
            self.api_key = Some(key);
        }
        if let Some(secret) = layer.enroll_secret.filter(is_set) {
            self.enroll_secret = Some(secret);
        }
        if let Some(path) = layer.key_file {
            self.key_file = path;
        }
        if let Some(text) = layer.interval {
            self.interval = parse_interval(&origin("interval"), &text)?;
        }
        if let Some(text) = layer.full_every {
            self.full_every = parse_full_every(&origin("full_every"), &text)?;
        }
        if let Some(path) = layer.ca_file.filter(|p| !p.as_os_str().is_empty()) {
            self.ca_file = Some(path);
        }
        if let Some(path) = layer.spool_dir.filter(|p| !p.as_os_str().is_empty()) {
            self.spool_dir = path;
        }
        if let Some(text) = layer.spool_max_mb {
            self.spool_max_bytes = parse_spool_max_mb(&origin("spool_max_mb"), &text)?;
        }
        if let Some(labels) = layer.labels {
            if let Some(labels) = parse_labels(&origin("labels"), labels)? {
                self.labels = labels;
            }
        }
        let actions = layer.actions.unwrap_or_default();
        if let Some(text) = actions.enabled {
            self.actions.enabled = parse_switch(&origin("actions_enabled"), &text)?;
        }
        if let Some(names) = actions.allow {
            if let Some(allow) = parse_allow(&origin("actions_allow"), names)? {
                self.actions.allow = allow;
            }
        }
        // Empty, as in the default file, is "not set".
        if let Some(text) = actions.server_key.filter(|t| !t.trim().is_empty()) {
            self.server_key =
                Some(
                    ServerKey::parse(&text).map_err(|reason| ConfigError::BadValue {
                        origin: origin("actions_server_key"),
                        key: "server key",
                        value: text.clone(),
                        reason,
                    })?,
                );
        }
        Ok(())
    }

    /// The config for sending, which needs a key, an enrollment secret, or
    /// a key file kept from an earlier enrollment; and the CA file's
    /// certificates when one is set (read now, so that a bad file stops the
    /// agent at start, named).
    pub fn into_agent_config(self) -> Result<AgentConfig, ConfigError> {
        let saved_action_key = saved_key_file(&self.key_file);
        let key = match (self.api_key, self.enroll_secret) {
            (Some(key), _) => AgentKey::Given(key),
            (None, Some(secret)) => AgentKey::Enroll {
                secret,
                key_file: self.key_file,
            },
            (None, None) if self.key_file.is_file() => AgentKey::Given(
                crate::enroll::read_key_file(&self.key_file).map_err(|source| {
                    ConfigError::KeyFileUnreadable {
                        path: self.key_file.clone(),
                        source,
                    }
                })?,
            ),
            (None, None) => {
                let file = self.file.as_deref().map_or_else(
                    || format!("{FILE_NAME} beside the agent"),
                    |path| path.display().to_string(),
                );
                return Err(ConfigError::MissingApiKey { file });
            }
        };
        let trust = match self.ca_file {
            Some(path) => ServerTrust::CaFile(
                CaFile::read(&path).map_err(|reason| ConfigError::CaFile { path, reason })?,
            ),
            None => ServerTrust::PublicCas,
        };
        let actions = ActionOptions {
            settings: self.actions,
            pinned: PinnedKey::new(self.server_key, Some(saved_action_key)),
        };
        Ok(AgentConfig {
            server_urls: self.server_urls,
            return_after: DEFAULT_RETURN_AFTER,
            actions,
            key,
            interval: self.interval,
            full_every: self.full_every,
            trust,
            spool_dir: self.spool_dir,
            spool_max_bytes: self.spool_max_bytes,
            labels: self.labels,
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

fn is_set(secret: &SecretString) -> bool {
    use secrecy::ExposeSecret;
    !secret.expose_secret().trim().is_empty()
}

fn read_file(path: &Path) -> Result<Layer, ConfigError> {
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

/// `server_url` as a layer gives it.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a server URL such as \"http://127.0.0.1:8000\", or a list of them"
)]
enum UrlList {
    /// One URL, or several separated by commas.
    Text(String),
    /// A TOML array of URLs.
    List(Vec<String>),
}

/// Every URL of `urls`, each checked (the error names the one that is
/// wrong); at least one, and none twice.
fn parse_server_urls(origin: &str, urls: UrlList) -> Result<Vec<String>, ConfigError> {
    let (given, pieces): (String, Vec<String>) = match urls {
        UrlList::Text(text) => {
            let pieces = text
                .split(',')
                .map(str::trim)
                .filter(|piece| !piece.is_empty())
                .map(str::to_owned)
                .collect();
            (text, pieces)
        }
        UrlList::List(list) => (format!("{list:?}"), list),
    };
    if pieces.is_empty() {
        return Err(ConfigError::BadValue {
            origin: origin.to_owned(),
            key: "server_url",
            value: given,
            reason: format!(
                "it names no server; write one, e.g. {DEFAULT_SERVER_URL}, or a list of them"
            ),
        });
    }
    let mut parsed: Vec<String> = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        let url = parse_server_url(origin, piece)?;
        if parsed.contains(&url) {
            return Err(ConfigError::BadValue {
                origin: origin.to_owned(),
                key: "server_url",
                value: piece.clone(),
                reason: "it is listed twice".to_owned(),
            });
        }
        parsed.push(url);
    }
    Ok(parsed)
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

fn parse_full_every(origin: &str, text: &str) -> Result<Duration, ConfigError> {
    let full_every = humantime::parse_duration(text.trim()).map_err(|e| ConfigError::BadValue {
        origin: origin.to_owned(),
        key: "full_every",
        value: text.to_owned(),
        reason: format!("{e}; write a duration such as \"10m\" or \"1h\""),
    })?;
    // Zero is allowed: every snapshot then goes in full.
    Ok(full_every)
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

fn default_spool_max_bytes() -> NonZeroU64 {
    NonZeroU64::new(DEFAULT_SPOOL_MAX_MB * MIB).expect("not zero")
}

/// A value in the file (a number, a boolean) as the text the other layers
/// give, so that what is wrong with it is said as for them.
fn as_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(
        Option::<toml::Value>::deserialize(deserializer)?.map(|value| match value {
            toml::Value::String(text) => text,
            other => other.to_string(),
        }),
    )
}

fn parse_spool_max_mb(origin: &str, text: &str) -> Result<NonZeroU64, ConfigError> {
    let bad = |reason: String| ConfigError::BadValue {
        origin: origin.to_owned(),
        key: "spool_max_mb",
        value: text.to_owned(),
        reason,
    };
    let mb: u64 = text
        .trim()
        .parse()
        .map_err(|_| bad("write a whole number of MiB, such as 64".to_owned()))?;
    if !(1..=MAX_SPOOL_MAX_MB).contains(&mb) {
        return Err(bad(format!(
            "it must be between 1 and {MAX_SPOOL_MAX_MB} (MiB)"
        )));
    }
    Ok(NonZeroU64::new(mb * MIB).expect("at least 1 MiB"))
}

fn parse_switch(origin: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::BadValue {
            origin: origin.to_owned(),
            key: "switch",
            value: text.to_owned(),
            reason: "write true or false".to_owned(),
        }),
    }
}

/// The kinds `names` lists, each once; `None` for empty text (not set). A
/// name that is no kind is refused, naming it and the kinds there are.
fn parse_allow(origin: &str, names: NameList) -> Result<Option<Vec<ActionKind>>, ConfigError> {
    let names: Vec<String> = match names {
        NameList::Text(text) if text.trim().is_empty() => return Ok(None),
        NameList::Text(text) => text.split(',').map(|n| n.trim().to_owned()).collect(),
        NameList::List(list) => list,
    };
    let mut allow = Vec::new();
    for name in names {
        let Some(kind) = ActionKind::parse(name.trim()) else {
            let kinds: Vec<&str> = ActionKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(ConfigError::BadValue {
                origin: origin.to_owned(),
                key: "action kind",
                value: name,
                reason: format!("the kinds are {}", kinds.join(", ")),
            });
        };
        if !allow.contains(&kind) {
            allow.push(kind);
        }
    }
    Ok(Some(allow))
}

/// The labels `labels` lists, each once; `None` for empty text (not set).
/// Empty pieces of text ("prod,,db", a trailing comma) are skipped; a
/// label the server would refuse is refused here, named, so the agent
/// does not start only to have every snapshot refused.
fn parse_labels(origin: &str, labels: LabelList) -> Result<Option<Vec<String>>, ConfigError> {
    let given: Vec<String> = match labels {
        LabelList::Text(text) if text.trim().is_empty() => return Ok(None),
        LabelList::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .map(str::to_owned)
            .collect(),
        LabelList::List(list) => list,
    };
    let mut labels: Vec<String> = Vec::new();
    for label in given {
        check_label(&label).map_err(|reason| ConfigError::BadValue {
            origin: origin.to_owned(),
            key: "label",
            value: label.clone(),
            reason,
        })?;
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    if labels.len() > MAX_LABELS {
        return Err(ConfigError::BadValue {
            origin: origin.to_owned(),
            key: "labels",
            value: labels.join(","),
            reason: format!(
                "there are {} labels; a host may carry at most {MAX_LABELS}",
                labels.len()
            ),
        });
    }
    Ok(Some(labels))
}
