//! Agent keys: one per host, 256 random bits, shown once and kept only as
//! a SHA-256 hash. A key reads `pmk_<id>_<secret>`: the id finds its row
//! (and names it in lists and logs), the secret proves it. A new key is
//! bound to the host of the first snapshot sent with it, and can never send
//! as another host.
//!
//! Fleets enroll instead of having a key made for every machine: an agent
//! sends the enrollment secret (`pme_<secret>`, set on the server, kept as
//! a hash too) once, and gets its own host key back.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::store::keys::{AgentKeyRecord, Binding, Digest, KeyStore};
use crate::store::{StoreError, StoreResult};

const KEY_PREFIX: &str = "pmk_";
const ENROLL_PREFIX: &str = "pme_";
/// The label of the key the server makes for its own embedded agent.
pub const EMBEDDED_LABEL: &str = "embedded agent";
/// The label of keys handed out by enrollment.
pub const ENROLLED_LABEL: &str = "enrolled";

/// SHA-256 of a secret.
pub fn hash(secret: &str) -> Digest {
    Sha256::digest(secret.as_bytes()).into()
}

/// `bytes` random bytes from the OS, as hex.
fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A key just made: its record, and the whole key, to show once.
pub struct NewKey {
    pub record: AgentKeyRecord,
    pub key: SecretString,
}

/// The id and secret parts of a key as sent, if it has the key's shape.
fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// Why a key was not accepted. The API answers all of `Refused` alike, so
/// a caller cannot tell a wrong key from a revoked one.
#[derive(Debug)]
pub enum KeyError {
    Refused,
    OtherHost(String),
    Store(StoreError),
}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Makes, checks, binds and revokes agent keys.
#[derive(Clone)]
pub struct AgentKeys {
    store: Arc<dyn KeyStore>,
}

impl AgentKeys {
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        Self { store }
    }

    /// The store behind, for listing and revoking.
    pub fn store(&self) -> &dyn KeyStore {
        self.store.as_ref()
    }

    /// Makes a key, bound to `host_id` when given.
    pub async fn create(
        &self,
        host_id: Option<&str>,
        label: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<NewKey> {
        let id = random_hex(6)?;
        let secret = random_hex(32)?;
        let record = AgentKeyRecord {
            id: id.clone(),
            host_id: host_id.map(str::to_owned),
            label: label.to_owned(),
            created_at: now,
            revoked_at: None,
        };
        self.store.create_key(&record, hash(&secret)).await?;
        Ok(NewKey {
            record,
            key: SecretString::from(format!("{KEY_PREFIX}{id}_{secret}")),
        })
    }

    /// The key `token` if it is one in force (not revoked).
    pub async fn check(&self, token: &str) -> Result<AgentKeyRecord, KeyError> {
        let Some((id, secret)) = parse(token) else {
            return Err(KeyError::Refused);
        };
        let Some((record, stored)) = self.store.key(id).await? else {
            // Hash anyway, so an unknown id takes as long as a wrong secret.
            let _ = hash(secret);
            return Err(KeyError::Refused);
        };
        let matches: bool = hash(secret).ct_eq(&stored).into();
        if !matches || record.revoked_at.is_some() {
            return Err(KeyError::Refused);
        }
        Ok(record)
    }

    /// Lets `record` send as `host_id`: binds it on first use.
    pub async fn authorize_host(
        &self,
        record: &AgentKeyRecord,
        host_id: &str,
    ) -> Result<(), KeyError> {
        match &record.host_id {
            Some(bound) if bound == host_id => return Ok(()),
            Some(bound) => return Err(KeyError::OtherHost(bound.clone())),
            None => {}
        }
        match self.store.bind_key(&record.id, host_id).await? {
            Binding::Bound => {
                tracing::info!(key = %record.id, host = host_id, "agent key bound to its host");
                Ok(())
            }
            Binding::OtherHost(bound) => Err(KeyError::OtherHost(bound)),
            Binding::Invalid => Err(KeyError::Refused),
        }
    }

    /// A new enrollment secret in force (the previous ones no longer work),
    /// to show once.
    pub async fn rotate_enroll_secret(&self, now: DateTime<Utc>) -> anyhow::Result<SecretString> {
        let secret = format!("{ENROLL_PREFIX}{}", random_hex(32)?);
        self.store.set_enroll_secret(hash(&secret), now).await?;
        Ok(SecretString::from(secret))
    }

    /// Whether any enrollment secret is in force.
    pub async fn enrollment_open(&self) -> StoreResult<bool> {
        Ok(!self.store.enroll_secrets().await?.is_empty())
    }

    /// Exchanges the enrollment secret for a key of `host_id`. A host that
    /// enrolls again (reinstalled, or its key file lost) gets a new key,
    /// and its previous keys stop working.
    pub async fn enroll(
        &self,
        secret: &SecretString,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<NewKey, KeyError> {
        let given = hash(secret.expose_secret());
        let mut valid = false;
        for stored in self.store.enroll_secrets().await? {
            valid |= bool::from(given.ct_eq(&stored));
        }
        if !valid {
            return Err(KeyError::Refused);
        }
        let new = self
            .create(Some(host_id), ENROLLED_LABEL, now)
            .await
            .map_err(|e| KeyError::Store(StoreError::Failed(e)))?;
        let revoked = self
            .store
            .revoke_keys_of(Some(host_id), None, &new.record.id, now)
            .await?;
        if revoked > 0 {
            tracing::warn!(
                host = host_id,
                revoked,
                "host enrolled again: its previous keys were revoked"
            );
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_into_id_and_secret() {
        assert_eq!(parse("pmk_abc_def"), Some(("abc", "def")));
        assert_eq!(parse("pmk_abc_"), None);
        assert_eq!(parse("pmk__def"), None);
        assert_eq!(parse("abc_def"), None);
        assert_eq!(parse("pme_abc_def"), None);
    }
}
