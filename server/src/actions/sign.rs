//! The key actions are signed with, and the signing. One Ed25519 key per
//! database, made on first use inside the store (so every server of a
//! shared database signs alike and agents pin one key), its public half
//! written `ed25519:<standard base64>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::{Signer, SigningKey};
use procmon_model::actions::{ActionKind, SignedAction, ACTION_LIFETIME_SECS, KEY_PREFIX};
use uuid::Uuid;

use crate::store::actions::SEED_BYTES;
use crate::store::ActionStore;

/// Signs actions with the database's key.
pub struct ActionSigner {
    key: SigningKey,
    /// The public key as agents pin it.
    public: String,
}

impl std::fmt::Debug for ActionSigner {
    // Never the secret half.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionSigner")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// What a signed action says, before it is signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsigned {
    pub id: Uuid,
    pub host_id: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub kind: ActionKind,
}

impl ActionSigner {
    /// The database's key: the one stored, or, if there is none yet, a new
    /// random one, stored now.
    pub async fn load(store: &dyn ActionStore, now: DateTime<Utc>) -> anyhow::Result<Self> {
        let mut candidate = [0u8; SEED_BYTES];
        getrandom::fill(&mut candidate)
            .map_err(|e| anyhow::anyhow!("the OS gave no random bytes for a signing key: {e}"))?;
        let seed = store.signing_seed(&candidate, now).await?;
        Ok(Self::from_seed(&seed))
    }

    /// The signer of the key with this seed.
    pub fn from_seed(seed: &[u8; SEED_BYTES]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let public = format!(
            "{KEY_PREFIX}{}",
            STANDARD.encode(key.verifying_key().as_bytes())
        );
        Self { key, public }
    }

    /// The public key, `ed25519:<standard base64>`: what
    /// `EnrollResponse.action_key` gives and agents pin.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// `action` signed at `now` with a fresh nonce, good for
    /// [`ACTION_LIFETIME_SECS`].
    pub fn sign(&self, action: Unsigned, now: DateTime<Utc>) -> anyhow::Result<SignedAction> {
        let mut signed = SignedAction {
            id: action.id,
            host_id: action.host_id,
            pid: action.pid,
            started_at: action.started_at,
            kind: action.kind,
            nonce: nonce()?,
            issued_at: now,
            expires_at: now + TimeDelta::seconds(ACTION_LIFETIME_SECS),
            signature: String::new(),
        };
        let signature = self.key.sign(&signed.signing_bytes());
        signed.signature = STANDARD.encode(signature.to_bytes());
        Ok(signed)
    }
}

/// 128 random bits, hex.
fn nonce() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the OS gave no random bytes for a nonce: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an agent checks, with the agent's own code: the signature
    /// against the pinned key.
    fn verifies(public: &str, action: &SignedAction) -> bool {
        procmon_agent::actions::ServerKey::parse(public)
            .expect("a public key in its published form")
            .verify(&action.signing_bytes(), &action.signature)
            .is_ok()
    }

    fn unsigned() -> Unsigned {
        Unsigned {
            id: Uuid::new_v4(),
            host_id: "h1".into(),
            pid: 4242,
            started_at: DateTime::from_timestamp_nanos(1_700_000_000_123_456_789),
            kind: ActionKind::Terminate,
        }
    }

    #[test]
    fn a_signed_action_verifies_with_the_public_key_and_not_once_changed() {
        let signer = ActionSigner::from_seed(&[7; SEED_BYTES]);
        assert!(signer.public_key().starts_with("ed25519:"));
        let now = DateTime::from_timestamp_nanos(1_800_000_000_000_000_001);
        let action = signer.sign(unsigned(), now).unwrap();
        assert_eq!(action.issued_at, now);
        assert_eq!(
            action.expires_at - action.issued_at,
            TimeDelta::seconds(ACTION_LIFETIME_SECS)
        );
        assert_eq!(action.nonce.len(), 32);
        assert!(action.nonce.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(verifies(signer.public_key(), &action));

        let mut moved = action.clone();
        moved.pid += 1;
        assert!(!verifies(signer.public_key(), &moved));
        let other = ActionSigner::from_seed(&[8; SEED_BYTES]);
        assert!(!verifies(other.public_key(), &action));
    }

    #[test]
    fn every_action_gets_its_own_nonce_and_the_debug_form_hides_the_key() {
        let signer = ActionSigner::from_seed(&[7; SEED_BYTES]);
        let now = Utc::now();
        let a = signer.sign(unsigned(), now).unwrap();
        let b = signer.sign(unsigned(), now).unwrap();
        assert_ne!(a.nonce, b.nonce);
        let shown = format!("{signer:?}");
        assert!(shown.contains(signer.public_key()));
        assert!(!shown.contains("key:"), "{shown}");
    }
}
