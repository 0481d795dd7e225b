//! The server's settings, layered: the defaults below, then a TOML file,
//! then `PROCMON_*` environment variables, then command-line flags, each
//! layer overriding the one before it.
//!
//! Each setting is named once, as a field of [`Settings`]: that name is its
//! key in the file, its environment variable (`PROCMON_` and the name in
//! capitals) and, with dashes, its flag in [`Cli`]. The layering itself
//! (figment) is in `layers.rs`.

use procmon_model::actions::ActionKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use procmon_model::limits::{INTERVAL_MS, MAX_INTERVAL};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::store::accounts::SessionLifetime;
use crate::store::{DatabaseUrl, Retention};

mod layers;
#[cfg(test)]
mod tests;
mod values;

/// The config file read when `--config` is not given, if it exists in the
/// working directory.
pub const DEFAULT_CONFIG_FILE: &str = "procmon-server.toml";

/// Everything the server needs to start, after all layers are merged. A
/// field is a setting; fields that no layer reads are `serde(skip)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on; port 0 picks a free one.
    #[serde(deserialize_with = "values::listen")]
    pub listen: SocketAddr,
    /// Where the database and the generated key files live.
    pub data_dir: PathBuf,
    /// The database: an SQLite file (created if missing), or a PostgreSQL
    /// server shared by several procmon servers. Unless a layer sets it,
    /// `procmon.db` in `data_dir`, wherever `data_dir` came from.
    #[serde(deserialize_with = "values::database")]
    pub database: DatabaseUrl,
    /// Reading without signing in, allowed only when listening on
    /// loopback (then anyone who can connect to this machine reads).
    pub no_login: bool,
    /// Host names (besides the listen address, localhost, IP addresses and
    /// this machine's name) that requests may name in their `Host` header,
    /// e.g. the name of a reverse proxy in front.
    #[serde(deserialize_with = "values::comma_list")]
    pub allowed_hosts: Vec<String>,
    /// A session unused this long ends.
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// How long raw snapshots are kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How long one-minute roll-ups are kept.
    #[serde(with = "humantime_serde")]
    pub minute_retention: Duration,
    /// How long one-hour roll-ups are kept.
    #[serde(with = "humantime_serde")]
    pub hour_retention: Duration,
    /// How often history is rolled up and expired data dropped (tests
    /// shorten it; no layer sets it).
    #[serde(skip)]
    pub maintenance_every: Duration,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Whether the server runs an agent for its own machine that sends to
    /// itself.
    pub embedded_agent: bool,
    /// How often the embedded agent takes a snapshot.
    #[serde(with = "humantime_serde")]
    pub embedded_agent_interval: Duration,
    /// What the embedded agent may do to this machine's processes when an
    /// operator asks (`terminate`, `kill`, `suspend`, `resume`,
    /// `lower_priority`); none, so it does nothing, unless listed: the
    /// owner of this machine turns actions on, as an agent's `[actions]`
    /// does for its own.
    #[serde(deserialize_with = "values::comma_list")]
    pub embedded_agent_actions: Vec<String>,
    /// Longest time a client may take to send a request head; also how long
    /// an idle keep-alive connection stays open.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Longest gap while a request body arrives.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Longest time to read and answer one request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most connections served at once; more get a 503.
    pub max_connections: usize,
    /// How long stopping waits for requests in flight.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Snapshots one host may send per second, after a burst.
    pub ingest_per_second: u32,
    /// Snapshots one host may send at once.
    pub ingest_burst: u32,
    /// The certificate chain (PEM, the server's certificate first) for
    /// HTTPS; with `tls_key`, or neither for plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of the certificate in `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The bearer token that reads `GET /metrics` (a Prometheus server's);
    /// without it, only admins' sessions read them. Never printed: its
    /// `Debug` is redacted, and errors about it do not repeat it.
    #[serde(deserialize_with = "values::secret")]
    pub metrics_token: Option<SecretString>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::with_data_dir("procmon-data")
    }
}

impl Settings {
    /// The defaults, with the data under `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let retention = Retention::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database: DatabaseUrl::Sqlite(data_dir.join("procmon.db")),
            data_dir,
            no_login: false,
            allowed_hosts: Vec::new(),
            session_idle: Duration::from_secs(12 * 60 * 60),
            session_lifetime: Duration::from_secs(7 * 24 * 60 * 60),
            retention: retention.raw,
            minute_retention: retention.minute,
            hour_retention: retention.hour,
            maintenance_every: Duration::from_secs(60),
            body_limit: 32 * 1024 * 1024,
            embedded_agent: true,
            embedded_agent_interval: Duration::from_secs(2),
            embedded_agent_actions: Vec::new(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            // Well below the usual limit of 1,024 descriptors, which the
            // database and the full-house slots share.
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
            // An agent sends at most 10 a second (its shortest interval is
            // 100 ms); the burst lets it catch up after a restart.
            ingest_per_second: 10,
            ingest_burst: 20,
            tls_cert: None,
            tls_key: None,
            metrics_token: None,
        }
    }

    /// How long sessions last, idle and at most.
    pub fn session(&self) -> SessionLifetime {
        SessionLifetime {
            idle: self.session_idle,
            absolute: self.session_lifetime,
        }
    }

    /// How long snapshots, minute and hour roll-ups are kept.
    pub fn history_retention(&self) -> Retention {
        Retention {
            raw: self.retention,
            minute: self.minute_retention,
            hour: self.hour_retention,
        }
    }

    /// Settings from the command line, the environment and the config file.
    pub fn load() -> anyhow::Result<Self> {
        Self::from_cli(Cli::parse_args())
    }

    /// The defaults, then the config file (`cli.config`, else
    /// `procmon-server.toml` if it exists), then the process's environment,
    /// then the flags in `cli`.
    pub fn from_cli(cli: Cli) -> anyhow::Result<Self> {
        Self::from_cli_and_env(&cli, |name| std::env::var_os(name))
    }

    /// [`Settings::from_cli`] with the environment variables that `env`
    /// looks up (tests give their own instead of changing the process's).
    pub fn from_cli_and_env(
        cli: &Cli,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> anyhow::Result<Self> {
        layers::merge(cli, &env)?.checked()
    }

    /// The kinds of action `embedded_agent_actions` allows (none: actions
    /// are off), or which entry is not one.
    pub fn embedded_agent_kinds(&self) -> anyhow::Result<Vec<ActionKind>> {
        self.embedded_agent_actions
            .iter()
            .map(|name| {
                ActionKind::parse(name).ok_or_else(|| {
                    let kinds: Vec<&str> = ActionKind::ALL.iter().map(|k| k.as_str()).collect();
                    anyhow::anyhow!(
                        "embedded_agent_actions entry {name:?} is not an action: the actions are {}",
                        kinds.join(", ")
                    )
                })
            })
            .collect()
    }

    /// The settings, or what is out of range in them.
    pub fn checked(self) -> anyhow::Result<Self> {
        crate::tls::files(self.tls_cert.as_deref(), self.tls_key.as_deref())?;
        let r = self.history_retention();
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
        anyhow::ensure!(
            !self.no_login || self.listen.ip().is_loopback(),
            "no_login is refused when listening on {}: without sign-in, only this machine may \
             connect; listen on 127.0.0.1 (or [::1]), or sign in",
            self.listen
        );
        self.embedded_agent_kinds()?;
        for name in &self.allowed_hosts {
            anyhow::ensure!(
                !name.is_empty() && !name.contains([':', '/', ' ']),
                "allowed_hosts entry {name:?} is not a host name: give names without port or scheme"
            );
        }
        anyhow::ensure!(
            self.session_idle <= self.session_lifetime,
            "session_idle {} is longer than session_lifetime {}",
            humantime::format_duration(self.session_idle),
            humantime::format_duration(self.session_lifetime)
        );
        let (shortest, longest) = (Duration::from_millis(*INTERVAL_MS.start()), MAX_INTERVAL);
        anyhow::ensure!(
            (shortest..=longest).contains(&self.embedded_agent_interval),
            "embedded_agent_interval {} is out of range: it must be between {} and {}",
            humantime::format_duration(self.embedded_agent_interval),
            humantime::format_duration(shortest),
            humantime::format_duration(longest)
        );
        for (key, value, shortest, longest) in [
            ("header_timeout", self.header_timeout, 1, 300),
            ("body_timeout", self.body_timeout, 1, 600),
            ("request_timeout", self.request_timeout, 1, 3600),
            ("shutdown_grace", self.shutdown_grace, 0, 300),
            ("session_idle", self.session_idle, 60, 366 * 24 * 3600),
            (
                "session_lifetime",
                self.session_lifetime,
                60,
                366 * 24 * 3600,
            ),
        ] {
            let (shortest, longest) = (Duration::from_secs(shortest), Duration::from_secs(longest));
            anyhow::ensure!(
                (shortest..=longest).contains(&value),
                "{key} {} is out of range: it must be between {} and {}",
                humantime::format_duration(value),
                humantime::format_duration(shortest),
                humantime::format_duration(longest)
            );
        }
        if let Some(token) = &self.metrics_token {
            check_metrics_token(token.expose_secret())?;
        }
        for (key, value, range) in [
            ("max_connections", self.max_connections, 1..=100_000),
            (
                "ingest_per_second",
                self.ingest_per_second as usize,
                1..=100_000,
            ),
            ("ingest_burst", self.ingest_burst as usize, 1..=100_000),
        ] {
            anyhow::ensure!(
                range.contains(&value),
                "{key} {value} is out of range: it must be between {} and {}",
                range.start(),
                range.end()
            );
        }
        Ok(self)
    }
}

/// Shortest `metrics_token` accepted: a scraper's only credential should
/// not be guessable.
pub const METRICS_TOKEN_MIN: usize = 16;

/// Whether `token` can be a `metrics_token`: long enough, and sendable as
/// it is in an `Authorization: Bearer` header. Says what is wrong without
/// repeating the token.
fn check_metrics_token(token: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        token.chars().all(|c| c.is_ascii_graphic()),
        "metrics_token has a space or a character other than printable ASCII: a bearer token \
         must be sent as it is in an HTTP header (e.g. make one with `openssl rand -hex 32`)"
    );
    anyhow::ensure!(
        token.len() >= METRICS_TOKEN_MIN,
        "metrics_token is {} characters long: give at least {METRICS_TOKEN_MIN} (e.g. make one \
         with `openssl rand -hex 32`)",
        token.len()
    );
    Ok(())
}

/// A listen address: `IP:PORT`, or `localhost:PORT` for 127.0.0.1.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
    text.parse().map_err(|_| {
        format!(
            "{text:?} is not an address to listen on: give IP:PORT, e.g. 127.0.0.1:8000 \
             (this machine only) or 0.0.0.0:8000 (every network)"
        )
    })
}

/// How the help text explains the layers.
const LAYERS_HELP: &str = "Every setting is a flag, an environment variable (named beside \
it) and a key of the TOML config file (the flag's name with `_` for `-`, e.g. data_dir; \
--no-agent is `embedded_agent = false`, PROCMON_EMBEDDED_AGENT=false in the environment). \
Flags override the environment, which overrides the file, which overrides the defaults.";

/// Command-line flags: the top layer of [`Settings`], each field one of
/// its settings under the same name. A flag not given is not serialized,
/// so it leaves the layers below alone.
#[derive(Debug, Default, Parser, Serialize)]
#[command(
    name = "procmon-server",
    version,
    about = "The procmon server: stores agents' snapshots and serves the process tree page",
    after_help = LAYERS_HELP
)]
pub struct Cli {
    /// What to do instead of serving: manage users and agent keys, make sign-in links.
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,
    /// TOML config file [default: ./procmon-server.toml if it exists].
    #[arg(long, env = "PROCMON_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on, IP:PORT (0.0.0.0:8000: every network)
    /// [default: 127.0.0.1:8000].
    #[arg(long, value_parser = parse_listen, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database and key files [default: ./procmon-data].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// The database: an SQLite file (a path or sqlite://path), or
    /// postgres://user:password@host/name for several servers on one
    /// database [default: <data dir>/procmon.db]; prefer the environment
    /// variable or the file for a URL with a password.
    #[arg(long, global = true, value_parser = values::parse_secret)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::expose"
    )]
    pub database: Option<SecretString>,
    /// Let anyone who can connect read without signing in; refused unless
    /// listening on loopback only.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_login: bool,
    /// Extra host names requests may be addressed to (a reverse proxy's),
    /// comma-separated [default: none].
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// A session unused this long ends, e.g. "12h" [default: 12h].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub session_idle: Option<humantime::Duration>,
    /// A session ends this long after sign-in, e.g. "7days" [default: 7days].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub session_lifetime: Option<humantime::Duration>,
    /// How long every snapshot is kept as sent (exact trees, time
    /// travel), e.g. "24h", "7days" [default: 7days].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub retention: Option<humantime::Duration>,
    /// How long one-minute roll-ups (average, minimum, maximum) are kept
    /// [default: 90days].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub minute_retention: Option<humantime::Duration>,
    /// How long one-hour roll-ups are kept [default: 730days].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub hour_retention: Option<humantime::Duration>,
    /// Largest request body in bytes [default: 33554432, 32 MiB].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_limit: Option<usize>,
    /// Do not run the agent for this machine inside the server (the
    /// file's `embedded_agent = false`). PROCMON_NO_AGENT, its old name in
    /// the environment, still works.
    #[arg(long, env = "PROCMON_NO_AGENT")]
    #[serde(
        rename = "embedded_agent",
        skip_serializing_if = "std::ops::Not::not",
        serialize_with = "values::negated"
    )]
    pub no_agent: bool,
    /// Snapshot interval of the embedded agent, e.g. "2s" [default: 2s].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub embedded_agent_interval: Option<humantime::Duration>,
    /// What the embedded agent may do to this machine's processes when an
    /// operator asks, comma-separated: terminate, kill, suspend, resume,
    /// lower_priority [default: none, so actions are off].
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub embedded_agent_actions: Vec<String>,
    /// Longest time to send a request head, and to keep an idle connection
    /// open [default: 10s].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub header_timeout: Option<humantime::Duration>,
    /// Longest gap while a request body arrives [default: 10s].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub body_timeout: Option<humantime::Duration>,
    /// Longest time to read and answer a request [default: 60s].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub request_timeout: Option<humantime::Duration>,
    /// Most connections served at once [default: 512].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// How long stopping waits for requests in flight [default: 10s].
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::as_text"
    )]
    pub shutdown_grace: Option<humantime::Duration>,
    /// Snapshots one host may send per second after a burst [default: 10].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_per_second: Option<u32>,
    /// Snapshots one host may send at once [default: 20].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_burst: Option<u32>,
    /// Serve HTTPS with this certificate chain (PEM, the server's
    /// certificate first); needs --tls-key.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Bearer token that reads GET /metrics (at least 16 characters);
    /// prefer the environment variable or the config file, which other
    /// users of this machine cannot see in its process list.
    #[arg(long, value_parser = values::parse_secret)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "values::expose"
    )]
    pub metrics_token: Option<SecretString>,
}

impl Cli {
    /// The flags from the process's arguments, where `--help` gives each
    /// setting's environment variable, made from its name as the
    /// environment layer makes it.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let keys = layers::setting_keys();
        let command = Self::command().mut_args(|arg| {
            let id = arg.get_id().as_str().to_owned();
            if !keys.contains(&id.as_str()) {
                return arg;
            }
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            arg.help(format!("{help} [env: {}]", layers::env_name(&id)))
        });
        Self::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
    }
}

/// What the binary does instead of serving. Each opens the server's
/// database (the same settings find it), acts, and closes it; a running
/// server sees the change at once.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Manage the people who may sign in.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Print a one-time link that signs a user in (valid 24 h), for a
    /// user who lost their password or the first link.
    SigninLink {
        /// The user [default: admin].
        name: Option<String>,
    },
    /// Agent keys and the enrollment secret.
    #[command(flatten)]
    Keys(crate::commands::Command),
    /// Print the public key this server's database signs actions on
    /// processes with (`ed25519:<base64>`): what an agent that is not
    /// enrolled pins as its `server_key`.
    ActionKey,
}

/// `procmon-server users ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum UsersCommand {
    /// Add a user; asks for the password.
    Add {
        name: String,
        /// What the user may do.
        #[arg(long, default_value = "viewer", value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (ends their sessions); asks for it.
    Passwd {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user and end their sessions.
    Remove { name: String },
    /// List the users and their roles.
    List,
}
