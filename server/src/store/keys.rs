//! Agent keys and enrollment secrets as the store keeps them: only their
//! SHA-256 hashes, never the keys themselves.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// One agent key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentKeyRecord {
    /// The key's public id (its first part), to list and revoke it by.
    pub id: String,
    /// The host it may send as; `None` until its first snapshot binds it.
    pub host_id: Option<String>,
    /// What it is for, e.g. "enrolled", "embedded agent", or the admin's
    /// note.
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What binding a key to a host found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The key is (now) bound to the host asked for.
    Bound,
    /// The key belongs to another host.
    OtherHost(String),
    /// The key is unknown or revoked.
    Invalid,
}

/// Where agent keys and enrollment secrets are kept.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Stores a new key by its id and the hash of its secret.
    async fn create_key(&self, record: &AgentKeyRecord, secret_hash: Digest) -> StoreResult<()>;

    /// The key with this id and its secret's hash, revoked ones included.
    async fn key(&self, id: &str) -> StoreResult<Option<(AgentKeyRecord, Digest)>>;

    /// Every key, newest first.
    async fn keys(&self) -> StoreResult<Vec<AgentKeyRecord>>;

    /// Binds an unbound key to `host_id`, or says whom it belongs to.
    async fn bind_key(&self, id: &str, host_id: &str) -> StoreResult<Binding>;

    /// Revokes one key; false when there is no such active key.
    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool>;

    /// Revokes every active key but `except` that is bound to `host_id`,
    /// or labelled `label` and either unbound or bound to `host_id` (to any
    /// host when no `host_id` is given: a label alone revokes that label's
    /// keys, bound or not). One of the two must be given; how many.
    async fn revoke_keys_of(
        &self,
        host_id: Option<&str>,
        label: Option<&str>,
        except: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Replaces the enrollment secret (revoking the previous ones).
    async fn set_enroll_secret(&self, hash: Digest, at: DateTime<Utc>) -> StoreResult<()>;

    /// Hashes of the enrollment secrets in force.
    async fn enroll_secrets(&self) -> StoreResult<Vec<Digest>>;

    /// Whether an enrollment secret was ever set (even if revoked since).
    async fn enroll_secret_made(&self) -> StoreResult<bool>;

    /// Revokes every enrollment secret: no agent can enroll until a new one
    /// is set.
    async fn revoke_enroll_secrets(&self, at: DateTime<Utc>) -> StoreResult<u64>;
}
