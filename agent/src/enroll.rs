//! Getting and keeping this machine's key: an agent given the server's
//! enrollment secret exchanges it once (`POST /api/enroll/`) for a key of
//! its own host, keeps that key in a file only its user can read, and uses
//! it from then on. If the server refuses the kept key (revoked, or the
//! server's database was replaced), it enrolls again.

use std::io::Write;
use std::path::{Path, PathBuf};

use procmon_model::{EnrollRequest, EnrollResponse, HostInfo};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use crate::actions::{saved_key_file, ServerKey};
use crate::config::AgentKey;
use crate::send::{answer_body, endpoint, explain, http_client, parse_server_url, server_message};
use crate::tls::ServerTrust;
use crate::{SendError, Sender};

/// The key in a key file, without surrounding white space. A key file
/// open to other users (left so by an older agent, or by a person) is
/// narrowed to this user first, with a warning; if that fails (say, the
/// file is another user's), the key is still used, with a warning naming
/// the file: refusing it would not make it secret again.
pub fn read_key_file(path: &Path) -> std::io::Result<SecretString> {
    let text = std::fs::read_to_string(path)?;
    if let Err(e) = crate::private::narrow_file(path) {
        tracing::warn!(
            file = %path.display(),
            "the key file may be readable by other users: {e}"
        );
    }
    let key = text.trim();
    if key.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        ));
    }
    Ok(SecretString::from(key.to_owned()))
}

/// Writes `key` to `path`, readable only by this user, replacing the file
/// as a whole (written beside it, then renamed). A missing folder is
/// created private to this user; an existing one is the config file's,
/// which holds other things (on Windows, the .exe), and is left as it is.
fn write_key_file(path: &Path, key: &SecretString) -> std::io::Result<()> {
    write_private(path, key.expose_secret())
}

/// Writes `text` and a newline to `path` as [`write_key_file`] says.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let context = |what: String| {
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            crate::private::dir(dir).map_err(context(format!("its folder {}", dir.display())))?;
        }
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let in_temporary = || context(format!("the file {} written first", temporary.display()));
    let mut file = crate::private::create_new_file(&temporary).map_err(in_temporary())?;
    file.write_all(format!("{text}\n").as_bytes())
        .map_err(in_temporary())?;
    file.sync_all().map_err(in_temporary())?;
    drop(file);
    std::fs::rename(&temporary, path)
        .map_err(context(format!("renaming {} to it", temporary.display())))
}

/// Keeps the server's action key (`action_key` of its enrollment answer)
/// beside the agent's key, where [`crate::actions::PinnedKey`] reads it;
/// says so when it is not the key the config pins. A server that gave no
/// key leaves none: a key kept from an earlier enrollment no longer
/// stands for this server.
fn save_action_key(key_file: &Path, given: Option<&str>, configured: Option<&ServerKey>) {
    let path = saved_key_file(key_file);
    let Some(text) = given else {
        if std::fs::remove_file(&path).is_ok() {
            tracing::info!(file = %path.display(), "the server gave no action key; the one saved before is removed");
        }
        return;
    };
    let key = match ServerKey::parse(text) {
        Ok(key) => key,
        Err(reason) => {
            tracing::warn!("the server's action key {text:?} cannot be used ({reason}); actions from it are refused");
            let _ = std::fs::remove_file(&path);
            return;
        }
    };
    match write_private(&path, &key.to_string()) {
        Ok(()) => {
            tracing::info!(key = %key, file = %path.display(), "saved the server's action key")
        }
        Err(e) => tracing::warn!(
            file = %path.display(),
            "cannot keep the server's action key ({e}); actions are refused unless server_key is set"
        ),
    }
    if let Some(configured) = configured {
        crate::actions::key::warn_if_differs(configured, &key, &path);
    }
}

/// Asks the server at `server_url` for a key of `host`.
pub async fn enroll(
    server_url: &str,
    secret: &SecretString,
    host: &HostInfo,
    trust: &ServerTrust,
) -> Result<EnrollResponse, SendError> {
    let bad_url = |reason: String| SendError::BadUrl {
        server_url: server_url.to_owned(),
        reason,
    };
    let base = parse_server_url(server_url).map_err(bad_url)?;
    let url = endpoint(&base, "api/enroll/");
    let client = http_client(trust).map_err(bad_url)?;
    let response = client
        .post(url.clone())
        .json(&EnrollRequest {
            enroll_secret: secret.expose_secret().to_owned(),
            host_id: host.id.clone(),
            hostname: host.hostname.clone(),
        })
        .send()
        .await
        .map_err(|e| explain(&base, &url, &e))?;
    let status = response.status();
    let body = answer_body(response, &base, &url).await?;
    if status == StatusCode::UNAUTHORIZED {
        return Err(SendError::EnrollRefused);
    }
    if !status.is_success() {
        return Err(SendError::Rejected {
            status: status.as_u16(),
            message: server_message(&body),
        });
    }
    serde_json::from_slice(&body).map_err(|e| SendError::Rejected {
        status: status.as_u16(),
        message: format!(
            "the server's answer is not an EnrollResponse ({e}); is server_url a procmon server?"
        ),
    })
}

/// The agent's key as it stands: a sender to each server with it, once
/// there is one. The key is the host's, valid on every server of the list
/// (they share one database).
pub struct Credentials {
    server_urls: Vec<String>,
    key: AgentKey,
    trust: ServerTrust,
    /// One per server, in the list's order; empty until there is a key.
    senders: Vec<Sender>,
    /// `server_key` of the config, to warn when enrollment gives another.
    configured_action_key: Option<ServerKey>,
}

impl Credentials {
    /// Ready to send when the key is given or was kept from an earlier
    /// enrollment; else it enrolls before the first send. Every URL is
    /// checked now, even when enrollment comes later.
    pub fn new(
        server_urls: &[String],
        key: AgentKey,
        trust: ServerTrust,
    ) -> Result<Self, SendError> {
        if server_urls.is_empty() {
            return Err(SendError::BadUrl {
                server_url: String::new(),
                reason: "no server URL is given".to_owned(),
            });
        }
        for server_url in server_urls {
            parse_server_url(server_url).map_err(|reason| SendError::BadUrl {
                server_url: server_url.clone(),
                reason,
            })?;
        }
        let mut credentials = Self {
            server_urls: server_urls.to_vec(),
            key,
            trust,
            senders: Vec::new(),
            configured_action_key: None,
        };
        let known = match &credentials.key {
            AgentKey::Given(key) => Some(key.clone()),
            AgentKey::Enroll { key_file, .. } => read_key_file(key_file).ok(),
        };
        if let Some(key) = known {
            credentials.senders = credentials.senders_with(&key)?;
        }
        Ok(credentials)
    }

    /// The same, told the action key the config pins (`server_key`), if
    /// any, so that enrolling with a server whose key differs is said.
    pub fn with_configured_action_key(mut self, key: Option<ServerKey>) -> Self {
        self.configured_action_key = key;
        self
    }

    /// The senders as they are, without enrolling: empty until there is a
    /// key.
    pub fn ready_senders(&self) -> &[Sender] {
        &self.senders
    }

    fn senders_with(&self, key: &SecretString) -> Result<Vec<Sender>, SendError> {
        self.server_urls
            .iter()
            .map(|url| Sender::with_trust(url, key.clone(), &self.trust))
            .collect()
    }

    /// A sender to each server (in the list's order), enrolling `host`
    /// first if there is no key yet: with the first server that is usable
    /// (see [`crate::failover::unusable`]), trying them in order.
    pub async fn senders(&mut self, host: &HostInfo) -> Result<&[Sender], SendError> {
        if self.senders.is_empty() {
            let AgentKey::Enroll { secret, key_file } = &self.key else {
                unreachable!("a given key makes its senders at once");
            };
            let mut last = None;
            for server_url in &self.server_urls {
                match enroll(server_url, secret, host, &self.trust).await {
                    Ok(enrolled) => {
                        last = Some(Ok((server_url, enrolled)));
                        break;
                    }
                    Err(error) => match crate::failover::unusable(&error) {
                        Some(why) => {
                            tracing::debug!(server = %server_url, "cannot enroll here: {why}");
                            last = Some(Err(error));
                        }
                        None => return Err(error),
                    },
                }
            }
            let (server_url, enrolled) = last.expect("at least one server")?;
            let key = SecretString::from(enrolled.key);
            write_key_file(key_file, &key).map_err(|e| SendError::KeyFile {
                path: key_file.display().to_string(),
                cause: e.to_string(),
            })?;
            tracing::info!(
                key = %enrolled.key_id,
                host = %enrolled.host_id,
                file = %key_file.display(),
                server = %server_url,
                "enrolled: this machine has its own key now"
            );
            save_action_key(
                key_file,
                enrolled.action_key.as_deref(),
                self.configured_action_key.as_ref(),
            );
            self.senders = self.senders_with(&key)?;
        }
        Ok(&self.senders)
    }

    /// The server refused the key: an agent that enrolled forgets it, so
    /// the next cycle enrolls again; a given key stays (it needs a person).
    pub fn refused(&mut self) {
        if let AgentKey::Enroll { key_file, .. } = &self.key {
            tracing::warn!(
                file = %key_file.display(),
                "the server refused this machine's key; enrolling again"
            );
            let _ = std::fs::remove_file(key_file);
            self.senders.clear();
        }
    }

    /// The servers snapshots go to, first first.
    pub fn server_urls(&self) -> &[String] {
        &self.server_urls
    }

    /// The key file an enrolled agent keeps, if it enrolls.
    pub fn key_file(&self) -> Option<PathBuf> {
        match &self.key {
            AgentKey::Enroll { key_file, .. } => Some(key_file.clone()),
            AgentKey::Given(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> ServerKey {
        ServerKey::from_verifying_key(
            ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key(),
        )
    }

    #[test]
    fn the_servers_action_key_is_saved_beside_the_agent_key_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("procmon-agent.key");
        let saved = saved_key_file(&key_file);
        save_action_key(&key_file, Some(&key(1).to_string()), Some(&key(2)));
        assert_eq!(
            std::fs::read_to_string(&saved).unwrap(),
            format!("{}\n", key(1))
        );
        // A key the agent cannot use is not kept, nor the one before it.
        save_action_key(&key_file, Some("ed25519:AAAA"), None);
        assert!(!saved.exists());
        save_action_key(&key_file, Some(&key(1).to_string()), None);
        // A server that gives none: the one kept no longer stands.
        save_action_key(&key_file, None, None);
        assert!(!saved.exists());
    }
}
