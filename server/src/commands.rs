//! The agent key commands of `procmon-server` (`keys ...`,
//! `enroll-secret ...`). Like the user commands (`users_cli`), they act on
//! the same database the server uses, which SQLite allows while it runs.

use chrono::Utc;
use clap::Subcommand;
use secrecy::ExposeSecret;

use crate::agent_keys::AgentKeys;

/// The commands; without one, the server runs.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Agent keys: one per host, shown once, stored only as a hash.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The enrollment secret agents exchange for their own host keys.
    #[command(subcommand, name = "enroll-secret")]
    EnrollSecret(EnrollCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Makes a key and prints it (the only time it is shown).
    Create {
        /// The host id it may send as; without it, the host of its first
        /// snapshot, for good.
        #[arg(long)]
        host: Option<String>,
        /// A note to tell keys apart in `keys list`.
        #[arg(long, default_value = "created by an admin")]
        label: String,
    },
    /// Lists every key: id, host, label, when made, whether revoked.
    List,
    /// Revokes a key by its id: its agent is refused from then on.
    Revoke {
        /// The key's id, as `keys list` shows it.
        id: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum EnrollCommand {
    /// Makes a new enrollment secret, prints it once, and retires the old.
    Rotate,
    /// Retires every enrollment secret: no agent can enroll until the next
    /// `rotate`. Keys already handed out keep working.
    Revoke,
}

/// Does `command` with the keys of an open store.
pub async fn execute(command: Command, keys: &AgentKeys) -> anyhow::Result<()> {
    let now = Utc::now();
    match command {
        Command::Keys(KeysCommand::Create { host, label }) => {
            if let Some(host) = &host {
                anyhow::ensure!(
                    !host.trim().is_empty() && host.trim() == host,
                    "--host {host:?}: a host id is not empty and has no spaces around it"
                );
            }
            let new = keys.create(host.as_deref(), &label, now).await?;
            println!("{}", new.key.expose_secret());
            eprintln!(
                "key {} made{}; it is shown only now. Give it to the agent as api_key.",
                new.record.id,
                host.map(|h| format!(" for host {h}"))
                    .unwrap_or_else(|| " (bound to the host of its first snapshot)".into())
            );
        }
        Command::Keys(KeysCommand::List) => {
            let list = keys.store().keys().await?;
            if list.is_empty() {
                println!("no agent keys");
            }
            for k in list {
                println!(
                    "{}  host {}  {}  made {}{}",
                    k.id,
                    k.host_id.as_deref().unwrap_or("(not bound yet)"),
                    k.label,
                    k.created_at.to_rfc3339(),
                    k.revoked_at
                        .map(|t| format!("  REVOKED {}", t.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
        }
        Command::Keys(KeysCommand::Revoke { id }) => {
            anyhow::ensure!(
                keys.store().revoke_key(&id, now).await?,
                "no key {id:?} in force (see `procmon-server keys list`)"
            );
            println!("key {id} revoked");
        }
        Command::EnrollSecret(EnrollCommand::Rotate) => {
            let secret = keys.rotate_enroll_secret(now).await?;
            println!("{}", secret.expose_secret());
            eprintln!(
                "new enrollment secret; it is shown only now, and the previous one no longer \
                 works. Agents enroll with --enroll-secret (enroll_secret in their config)."
            );
        }
        Command::EnrollSecret(EnrollCommand::Revoke) => {
            let n = keys.store().revoke_enroll_secrets(now).await?;
            println!("{n} enrollment secret(s) revoked; agents cannot enroll until `enroll-secret rotate`");
        }
    }
    Ok(())
}
