//! The command line of `procmon-agent`.

use std::path::PathBuf;

use clap::Parser;
use secrecy::SecretString;

use crate::config::Overrides;

/// Takes a snapshot of every process of this machine each interval and sends
/// it to a procmon server.
///
/// Settings come from procmon-agent.toml (beside the executable, else in the
/// working directory, or --config), then the environment variables
/// PROCMON_AGENT_SERVER_URL, PROCMON_AGENT_ENROLL_SECRET,
/// PROCMON_AGENT_API_KEY, PROCMON_AGENT_KEY_FILE, PROCMON_AGENT_INTERVAL,
/// PROCMON_AGENT_FULL_EVERY, PROCMON_AGENT_CA_FILE, PROCMON_AGENT_SPOOL_DIR,
/// PROCMON_AGENT_SPOOL_MAX_MB, PROCMON_AGENT_LABELS,
/// PROCMON_AGENT_ACTIONS_ENABLED,
/// PROCMON_AGENT_ACTIONS_ALLOW and PROCMON_AGENT_ACTIONS_SERVER_KEY, then
/// these flags.
#[derive(Debug, Parser)]
#[command(name = "procmon-agent", version)]
pub struct Cli {
    /// Read settings from this TOML file (it must exist).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The procmon server, e.g. http://127.0.0.1:8000; or several sharing
    /// one database, separated by commas, the preferred first.
    #[arg(long, value_name = "URL")]
    pub server_url: Option<String>,

    /// The server's enrollment secret (pme_...): the agent exchanges it
    /// once for this machine's own key and keeps that in --key-file. Prefer
    /// the file or PROCMON_AGENT_ENROLL_SECRET: flags are visible to
    /// everyone in the process list.
    #[arg(long, value_name = "SECRET", value_parser = parse_secret)]
    pub enroll_secret: Option<SecretString>,

    /// This machine's key (pmk_..., from `procmon-server keys create`),
    /// instead of enrolling. Prefer the file or PROCMON_AGENT_API_KEY.
    #[arg(long, value_name = "KEY", value_parser = parse_secret)]
    pub api_key: Option<SecretString>,

    /// Where an enrolled agent keeps its key [default: procmon-agent.key
    /// beside the config file, else in the working directory].
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Time between snapshots, e.g. "2s" or "500ms".
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,

    /// How often the whole snapshot goes, e.g. "10m"; in between only what
    /// changed goes [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub full_every: Option<String>,

    /// For an https server with a self-signed certificate or one from your
    /// own CA: that CA's certificate (PEM), trusted besides the public CAs.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Where snapshots wait while the server cannot be reached [default:
    /// procmon-agent-spool beside the key file].
    #[arg(long, value_name = "PATH")]
    pub spool_dir: Option<PathBuf>,

    /// The most the waiting snapshots may take on disk, in MiB; past it the
    /// oldest are dropped [default: 64].
    #[arg(long, value_name = "MIB")]
    pub spool_max_mb: Option<String>,

    /// Labels for this host, separated by commas, e.g. "prod,role=db":
    /// alert rules can apply to the hosts carrying them.
    #[arg(long, value_name = "LABELS")]
    pub labels: Option<String>,

    /// Act on this machine's processes when the server asks (true or
    /// false) [default: false].
    #[arg(long, value_name = "BOOL")]
    pub actions_enabled: Option<String>,

    /// The actions allowed, separated by commas, of terminate, kill,
    /// suspend, resume and lower_priority [default: all but
    /// lower_priority].
    #[arg(long, value_name = "KINDS")]
    pub actions_allow: Option<String>,

    /// The server key to trust actions from (ed25519:..., as
    /// `procmon-server action-key` prints it) [default: the one saved at
    /// enrollment].
    #[arg(long, value_name = "KEY")]
    pub actions_server_key: Option<String>,

    /// Take one snapshot, send it and exit (non-zero if it was not stored).
    #[arg(long)]
    pub once: bool,

    /// With --once: print the snapshot as JSON instead of sending it (needs
    /// no server and no key).
    #[arg(long, requires = "once")]
    pub print: bool,

    /// Take N snapshots (none is sent) and print the CPU time each cost
    /// and the peak memory: what collecting costs on this machine.
    #[arg(long, value_name = "N", hide = true, conflicts_with = "once")]
    pub bench_collect: Option<u32>,

    /// Windows: manage the agent's Windows service.
    #[cfg(windows)]
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the Windows .exe can do besides running the agent.
#[cfg(windows)]
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Install, uninstall, start or stop the Windows service that runs the
    /// agent at boot, with the procmon-agent.toml beside the .exe.
    Service {
        #[command(subcommand)]
        action: crate::windows::service::ServiceAction,
    },
}

impl Cli {
    /// The settings the flags override.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            server_url: self.server_url.clone(),
            api_key: self.api_key.clone(),
            enroll_secret: self.enroll_secret.clone(),
            key_file: self.key_file.clone(),
            interval: self.interval.clone(),
            full_every: self.full_every.clone(),
            ca_file: self.ca_file.clone(),
            spool_dir: self.spool_dir.clone(),
            spool_max_mb: self.spool_max_mb.clone(),
            labels: self.labels.clone(),
            actions_enabled: self.actions_enabled.clone(),
            actions_allow: self.actions_allow.clone(),
            actions_server_key: self.actions_server_key.clone(),
        }
    }
}

/// Keeps the key out of `Debug` output from the moment it is parsed.
fn parse_secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}
