//! The server's settings, layered: an optional TOML file, then `PROCMON_*`
//! environment variables, then command-line flags (each layer overrides the
//! one before it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use procmon_model::limits::{INTERVAL_MS, MAX_INTERVAL};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::store::accounts::SessionLifetime;
use crate::store::{DatabaseUrl, Retention};

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
    /// The database: an SQLite file (created if missing), or a PostgreSQL
    /// server shared by several procmon servers.
    pub database: DatabaseUrl,
    /// Reading without signing in, allowed only when listening on
    /// loopback (then anyone who can connect to this machine reads).
    pub no_login: bool,
    /// Host names (besides the listen address, localhost, IP addresses and
    /// this machine's name) that requests may name in their `Host` header,
    /// e.g. the name of a reverse proxy in front.
    pub allowed_hosts: Vec<String>,
    /// How long sessions last, idle and at most.
    pub session: SessionLifetime,
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
    /// Longest time a client may take to send a request head; also how long
    /// an idle keep-alive connection stays open.
    pub header_timeout: Duration,
    /// Longest gap while a request body arrives.
    pub body_timeout: Duration,
    /// Longest time to read and answer one request.
    pub request_timeout: Duration,
    /// Most connections served at once; more get a 503.
    pub max_connections: usize,
    /// How long stopping waits for requests in flight.
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
    /// `Debug` is redacted.
    pub metrics_token: Option<SecretString>,
}

impl Settings {
    /// The defaults, with the data under `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database: DatabaseUrl::Sqlite(data_dir.join("procmon.db")),
            data_dir,
            no_login: false,
            allowed_hosts: Vec::new(),
            session: SessionLifetime {
                idle: Duration::from_secs(12 * 60 * 60),
                absolute: Duration::from_secs(7 * 24 * 60 * 60),
            },
            retention: Retention::default(),
            maintenance_every: Duration::from_secs(60),
            body_limit: 32 * 1024 * 1024,
            embedded_agent: true,
            embedded_agent_interval: Duration::from_secs(2),
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
        let file_listen = file
            .listen
            .as_deref()
            .map(parse_listen)
            .transpose()
            .map_err(|e| anyhow::anyhow!("listen in the config file: {e}"))?;
        Self {
            listen: cli.listen.or(file_listen).unwrap_or(defaults.listen),
            database: match cli.database.or(file.database) {
                Some(text) => text.parse().map_err(|e| {
                    anyhow::anyhow!("database {:?}: {e}", crate::store::redact_url(&text))
                })?,
                None => defaults.database,
            },
            no_login: cli.no_login || file.no_login.unwrap_or(defaults.no_login),
            allowed_hosts: if cli.allowed_hosts.is_empty() {
                file.allowed_hosts.unwrap_or_default()
            } else {
                cli.allowed_hosts
            },
            session: SessionLifetime {
                idle: pick(cli.session_idle, file.session_idle, defaults.session.idle),
                absolute: pick(
                    cli.session_lifetime,
                    file.session_lifetime,
                    defaults.session.absolute,
                ),
            },
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
            header_timeout: pick(
                cli.header_timeout,
                file.header_timeout,
                defaults.header_timeout,
            ),
            body_timeout: pick(cli.body_timeout, file.body_timeout, defaults.body_timeout),
            request_timeout: pick(
                cli.request_timeout,
                file.request_timeout,
                defaults.request_timeout,
            ),
            max_connections: cli
                .max_connections
                .or(file.max_connections)
                .unwrap_or(defaults.max_connections),
            shutdown_grace: pick(
                cli.shutdown_grace,
                file.shutdown_grace,
                defaults.shutdown_grace,
            ),
            ingest_per_second: cli
                .ingest_per_second
                .or(file.ingest_per_second)
                .unwrap_or(defaults.ingest_per_second),
            ingest_burst: cli
                .ingest_burst
                .or(file.ingest_burst)
                .unwrap_or(defaults.ingest_burst),
            tls_cert: cli.tls_cert.or(file.tls_cert),
            tls_key: cli.tls_key.or(file.tls_key),
            metrics_token: cli.metrics_token.or(file.metrics_token),
            data_dir,
            ..defaults
        }
        .checked()
    }

    /// The settings, or what is out of range in them.
    pub fn checked(self) -> anyhow::Result<Self> {
        crate::tls::files(self.tls_cert.as_deref(), self.tls_key.as_deref())?;
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
        anyhow::ensure!(
            !self.no_login || self.listen.ip().is_loopback(),
            "no_login is refused when listening on {}: without sign-in, only this machine may \
             connect; listen on 127.0.0.1 (or [::1]), or sign in",
            self.listen
        );
        for name in &self.allowed_hosts {
            anyhow::ensure!(
                !name.is_empty() && !name.contains([':', '/', ' ']),
                "allowed_hosts entry {name:?} is not a host name: give names without port or scheme"
            );
        }
        anyhow::ensure!(
            self.session.idle <= self.session.absolute,
            "session_idle {} is longer than session_lifetime {}",
            humantime::format_duration(self.session.idle),
            humantime::format_duration(self.session.absolute)
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
            ("session_idle", self.session.idle, 60, 366 * 24 * 3600),
            (
                "session_lifetime",
                self.session.absolute,
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

/// A secret given as a flag or an environment variable.
fn parse_secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text))
}

/// The flag's value, else the file's, else the default.
fn pick(flag: Option<humantime::Duration>, file: Option<Duration>, default: Duration) -> Duration {
    flag.map(Duration::from).or(file).unwrap_or(default)
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

/// Command-line flags; each can also be set by the environment variable
/// named beside it.
#[derive(Debug, Default, Parser)]
#[command(
    name = "procmon-server",
    version,
    about = "The procmon server: stores agents' snapshots and serves the process tree page"
)]
pub struct Cli {
    /// What to do instead of serving: manage users and agent keys, make sign-in links.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML config file [default: ./procmon-server.toml if it exists].
    #[arg(long, env = "PROCMON_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on, IP:PORT (0.0.0.0:8000: every network)
    /// [default: 127.0.0.1:8000].
    #[arg(long, env = "PROCMON_LISTEN", value_parser = parse_listen, global = true)]
    pub listen: Option<SocketAddr>,
    /// Directory for the database and key files [default: ./procmon-data].
    #[arg(long, env = "PROCMON_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The database: an SQLite file (a path or sqlite://path), or
    /// postgres://user:password@host/name for several servers on one
    /// database [default: <data dir>/procmon.db].
    #[arg(long, env = "PROCMON_DATABASE", global = true, hide_env_values = true)]
    pub database: Option<String>,
    /// Let anyone who can connect read without signing in; refused unless
    /// listening on loopback only.
    #[arg(long, env = "PROCMON_NO_LOGIN")]
    pub no_login: bool,
    /// Extra host names requests may be addressed to (a reverse proxy's),
    /// comma-separated [default: none].
    #[arg(long, env = "PROCMON_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// A session unused this long ends, e.g. "12h" [default: 12h].
    #[arg(long, env = "PROCMON_SESSION_IDLE")]
    pub session_idle: Option<humantime::Duration>,
    /// A session ends this long after sign-in, e.g. "7days" [default: 7days].
    #[arg(long, env = "PROCMON_SESSION_LIFETIME")]
    pub session_lifetime: Option<humantime::Duration>,
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
    /// Longest time to send a request head, and to keep an idle connection
    /// open [default: 10s].
    #[arg(long, env = "PROCMON_HEADER_TIMEOUT")]
    pub header_timeout: Option<humantime::Duration>,
    /// Longest gap while a request body arrives [default: 10s].
    #[arg(long, env = "PROCMON_BODY_TIMEOUT")]
    pub body_timeout: Option<humantime::Duration>,
    /// Longest time to read and answer a request [default: 60s].
    #[arg(long, env = "PROCMON_REQUEST_TIMEOUT")]
    pub request_timeout: Option<humantime::Duration>,
    /// Most connections served at once [default: 512].
    #[arg(long, env = "PROCMON_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// How long stopping waits for requests in flight [default: 10s].
    #[arg(long, env = "PROCMON_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<humantime::Duration>,
    /// Snapshots one host may send per second after a burst [default: 10].
    #[arg(long, env = "PROCMON_INGEST_PER_SECOND")]
    pub ingest_per_second: Option<u32>,
    /// Snapshots one host may send at once [default: 20].
    #[arg(long, env = "PROCMON_INGEST_BURST")]
    pub ingest_burst: Option<u32>,
    /// Serve HTTPS with this certificate chain (PEM, the server's
    /// certificate first); needs --tls-key.
    #[arg(long, env = "PROCMON_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "PROCMON_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Bearer token that reads GET /metrics (at least 16 characters);
    /// prefer the environment variable or the config file, which other
    /// users of this machine cannot see in its process list.
    #[arg(long, env = "PROCMON_METRICS_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub metrics_token: Option<SecretString>,
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
}

/// `procmon-server users ...`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum UsersCommand {
    /// Add a user; asks for the password.
    Add {
        name: String,
        /// What the user may do.
        #[arg(long, default_value = "viewer", value_parser = ["viewer", "admin"])]
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

/// The config file's keys; all optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Address to listen on, e.g. "127.0.0.1:8000".
    listen: Option<String>,
    /// Directory for the database and key files.
    data_dir: Option<PathBuf>,
    /// The database: an SQLite file path, sqlite://path or postgres://….
    database: Option<String>,
    /// Read without signing in (loopback only).
    no_login: Option<bool>,
    /// Extra host names requests may be addressed to.
    allowed_hosts: Option<Vec<String>>,
    #[serde(default, with = "humantime_serde")]
    session_idle: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    session_lifetime: Option<Duration>,
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
    #[serde(default, with = "humantime_serde")]
    header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    body_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    request_timeout: Option<Duration>,
    max_connections: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    shutdown_grace: Option<Duration>,
    ingest_per_second: Option<u32>,
    ingest_burst: Option<u32>,
    /// Certificate chain for HTTPS (PEM).
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    tls_key: Option<PathBuf>,
    /// Bearer token for GET /metrics.
    metrics_token: Option<SecretString>,
}

/// Every key the file may hold, to name all unknown ones at once.
const FILE_KEYS: [&str; 23] = [
    "listen",
    "data_dir",
    "database",
    "no_login",
    "allowed_hosts",
    "session_idle",
    "session_lifetime",
    "retention",
    "minute_retention",
    "hour_retention",
    "body_limit",
    "embedded_agent",
    "embedded_agent_interval",
    "header_timeout",
    "body_timeout",
    "request_timeout",
    "max_connections",
    "shutdown_grace",
    "ingest_per_second",
    "ingest_burst",
    "tls_cert",
    "tls_key",
    "metrics_token",
];

impl FileConfig {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let invalid = || format!("invalid config file {}", path.display());
        let table: toml::Table = toml::from_str(&text).with_context(invalid)?;
        // toml would name only the first unknown key; a file with several
        // typos gets them all named at once.
        let unknown: Vec<&str> = table
            .keys()
            .map(String::as_str)
            .filter(|key| !FILE_KEYS.contains(key))
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!(
                "{}: unknown key{} {}; the known keys are {}",
                invalid(),
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                FILE_KEYS.join(", ")
            );
        }
        table.try_into().with_context(invalid)
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
    fn every_unknown_key_in_file_is_named() {
        let (_file, cli) =
            cli_with_file("retension = \"1h\"\nlisten = \"127.0.0.1:1\"\nport = 1\n");
        let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
        assert!(error.contains("unknown keys port, retension"), "{error}");
        assert!(
            error.contains("the known keys are listen, data_dir"),
            "{error}"
        );
    }

    #[test]
    fn the_known_keys_are_exactly_the_file_fields() {
        // serde lists every field it expects when one is unknown.
        let error = toml::from_str::<FileConfig>("zzz = 1")
            .unwrap_err()
            .to_string();
        for key in FILE_KEYS {
            assert!(
                error.contains(&format!("`{key}`")),
                "{key} missing from {error}"
            );
        }
        assert_eq!(
            error.matches('`').count() / 2,
            FILE_KEYS.len() + 1,
            "{error}"
        );
    }

    #[test]
    fn listen_takes_ip_port_or_localhost_port() {
        assert_eq!(
            parse_listen("localhost:8001"),
            Ok("127.0.0.1:8001".parse().unwrap())
        );
        assert_eq!(
            parse_listen("0.0.0.0:8001"),
            Ok("0.0.0.0:8001".parse().unwrap())
        );
        assert_eq!(
            parse_listen("[::1]:8001"),
            Ok("[::1]:8001".parse().unwrap())
        );
        for bad in ["8001", "localhost", "example.com:80", "localhost:99999"] {
            let error = parse_listen(bad).unwrap_err();
            assert!(
                error.contains("give IP:PORT, e.g. 127.0.0.1:8000"),
                "{error}"
            );
        }
        let (_file, cli) = cli_with_file("listen = \"8001\"\n");
        let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
        assert!(error.contains("listen in the config file"), "{error}");
        let (_file, cli) = cli_with_file("listen = \"localhost:8001\"\n");
        assert_eq!(Settings::from_cli(cli).unwrap().listen.port(), 8001);
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
            settings.database,
            DatabaseUrl::Sqlite(PathBuf::from("d").join("procmon.db"))
        );
        assert!(!settings.embedded_agent);
        assert_eq!(settings.body_limit, 32 * 1024 * 1024);
    }

    #[test]
    fn the_metrics_token_comes_from_the_file_or_a_flag_and_is_never_shown() {
        let (_file, mut cli) = cli_with_file("metrics_token = \"file-token-0123456789\"\n");
        let file_only = Cli {
            config: cli.config.clone(),
            ..Cli::default()
        };
        let settings = Settings::from_cli(file_only).unwrap();
        let token = settings.metrics_token.as_ref().unwrap();
        assert_eq!(token.expose_secret(), "file-token-0123456789");
        assert!(
            !format!("{settings:?}").contains("file-token"),
            "{settings:?}"
        );
        cli.metrics_token = Some(SecretString::from("flag-token-0123456789"));
        assert!(!format!("{cli:?}").contains("flag-token"), "{cli:?}");
        let settings = Settings::from_cli(cli).unwrap();
        assert_eq!(
            settings.metrics_token.unwrap().expose_secret(),
            "flag-token-0123456789"
        );
    }

    #[test]
    fn a_weak_or_unsendable_metrics_token_is_refused_without_showing_it() {
        for (text, expected) in [
            (
                "metrics_token = \"short-secret\"\n",
                "metrics_token is 12 characters long: give at least 16",
            ),
            (
                "metrics_token = \"a secret with spaces\"\n",
                "metrics_token has a space",
            ),
            (
                "metrics_token = \"\"\n",
                "metrics_token is 0 characters long",
            ),
        ] {
            let (_file, cli) = cli_with_file(text);
            let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
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
            (
                "header_timeout = \"0s\"\n",
                "header_timeout 0s is out of range: it must be between 1s and 5m",
            ),
            ("body_timeout = \"1h\"\n", "body_timeout 1h is out of range"),
            (
                "request_timeout = \"2h\"\n",
                "request_timeout 2h is out of range",
            ),
            (
                "shutdown_grace = \"1h\"\n",
                "shutdown_grace 1h is out of range",
            ),
            (
                "max_connections = 0\n",
                "max_connections 0 is out of range: it must be between 1 and 100000",
            ),
            (
                "ingest_per_second = 0\n",
                "ingest_per_second 0 is out of range",
            ),
            ("ingest_burst = 0\n", "ingest_burst 0 is out of range"),
        ] {
            let (_file, cli) = cli_with_file(text);
            let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
            assert!(error.contains(expected), "{error}");
        }
    }
}
