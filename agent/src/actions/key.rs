//! The server key an agent trusts actions from: `ed25519:<base64>`, given
//! in the config (`server_key` in `[actions]`) or saved at enrollment
//! beside the agent's own key. The config's wins.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use procmon_model::actions::KEY_PREFIX;

/// A server's public action key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ServerKey(VerifyingKey);

impl ServerKey {
    /// `text` as `ed25519:` and the standard base64 of the 32-byte key, as
    /// `procmon-server action-key` prints it; else why not, for a person.
    pub fn parse(text: &str) -> Result<ServerKey, String> {
        let text = text.trim();
        let Some(encoded) = text.strip_prefix(KEY_PREFIX) else {
            return Err(format!(
                "it must start with {KEY_PREFIX}, as `procmon-server action-key` prints it"
            ));
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|e| format!("what follows {KEY_PREFIX} is not standard base64 ({e})"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "it holds {} bytes; an Ed25519 key is 32 bytes (44 base64 characters)",
                bytes.len()
            )
        })?;
        VerifyingKey::from_bytes(&bytes)
            .map(ServerKey)
            .map_err(|_| "those 32 bytes are not an Ed25519 public key".to_owned())
    }

    /// The key of `key`, e.g. for a test that signs.
    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        Self(key)
    }

    /// Whether `signature` (standard base64) is this key's over `message`.
    /// Strict: a signature or key that other verifiers might read two ways
    /// is refused. Else why not.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<(), String> {
        let bytes = STANDARD
            .decode(signature.trim())
            .map_err(|e| format!("the signature is not standard base64 ({e})"))?;
        let signature = Signature::from_slice(&bytes).map_err(|_| {
            format!(
                "the signature holds {} bytes; an Ed25519 signature is 64",
                bytes.len()
            )
        })?;
        self.0.verify_strict(message, &signature).map_err(|_| {
            format!("the signature does not verify against the pinned server key {self}")
        })
    }
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerKey({self})")
    }
}

/// Where enrollment saves the server's action key: beside the agent's key
/// file (`procmon-agent.key` gives `procmon-agent.action-key`).
pub fn saved_key_file(agent_key_file: &Path) -> PathBuf {
    agent_key_file.with_extension("action-key")
}

/// Reads a saved action key; `Ok(None)` when there is none.
pub fn read_saved(path: &Path) -> Result<Option<ServerKey>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => ServerKey::parse(&text).map(Some).map_err(|reason| {
            format!(
                "the saved server key in {} is not valid: {reason}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot read the saved server key {}: {e}",
            path.display()
        )),
    }
}

/// Where the key actions are checked against comes from.
#[derive(Debug, Clone, Default)]
pub struct PinnedKey {
    /// `server_key` in the config; wins over the saved one.
    configured: Option<ServerKey>,
    /// The file enrollment saves the server's key in.
    saved: Option<PathBuf>,
}

impl PinnedKey {
    /// The configured key, else the one saved in `saved` (read each time
    /// it is asked for, so a key saved by an enrollment after start counts).
    pub fn new(configured: Option<ServerKey>, saved: Option<PathBuf>) -> Self {
        Self { configured, saved }
    }

    /// Only `key`.
    pub fn given(key: ServerKey) -> Self {
        Self::new(Some(key), None)
    }

    /// The configured key, if any.
    pub fn configured(&self) -> Option<ServerKey> {
        self.configured
    }

    /// The key to check an action against now; `None` when there is none,
    /// and then every action is refused. A saved key that cannot be read
    /// is said in the log and counts as none.
    pub fn current(&self) -> Option<ServerKey> {
        if self.configured.is_some() {
            return self.configured;
        }
        let path = self.saved.as_deref()?;
        read_saved(path).unwrap_or_else(|e| {
            tracing::warn!("{e}; actions are refused until it is put right");
            None
        })
    }

    /// Where the key comes from, for the start's log line.
    pub fn describe(&self) -> String {
        match (&self.configured, self.saved.as_deref()) {
            (Some(key), _) => format!("{key} (server_key in the config)"),
            (None, Some(path)) => match read_saved(path) {
                Ok(Some(key)) => format!("{key} (saved at enrollment in {})", path.display()),
                Ok(None) => "none yet (enrollment saves the server's)".to_owned(),
                Err(e) => e,
            },
            (None, None) => "none".to_owned(),
        }
    }

    /// Warns when the configured key differs from the one saved at
    /// enrollment: the configured one is used, which may be a mistake.
    pub fn warn_if_saved_differs(&self) {
        let (Some(configured), Some(path)) = (self.configured, self.saved.as_deref()) else {
            return;
        };
        if let Ok(Some(saved)) = read_saved(path) {
            warn_if_differs(&configured, &saved, path);
        }
    }
}

/// The warning for a configured key that is not the server's own.
pub(crate) fn warn_if_differs(configured: &ServerKey, enrolled: &ServerKey, saved_in: &Path) {
    if configured != enrolled {
        tracing::warn!(
            configured = %configured,
            enrolled = %enrolled,
            file = %saved_in.display(),
            "server_key in [actions] differs from the key the server gave at enrollment; \
             the configured key is used, so actions this server signs are refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> ServerKey {
        ServerKey(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key())
    }

    #[test]
    fn a_key_round_trips_through_its_text() {
        let k = key(7);
        let text = k.to_string();
        assert!(
            text.starts_with("ed25519:") && text.len() == 8 + 44,
            "{text}"
        );
        assert_eq!(ServerKey::parse(&text), Ok(k));
        assert_eq!(ServerKey::parse(&format!("  {text}\n")), Ok(k));
    }

    #[test]
    fn a_malformed_key_says_what_is_wrong() {
        let k = key(7).to_string();
        let encoded = k.strip_prefix("ed25519:").unwrap();
        let cases = [
            (encoded.to_owned(), "must start with ed25519:"),
            ("ed25519:not base64!".to_owned(), "not standard base64"),
            ("ed25519:AAAA".to_owned(), "holds 3 bytes"),
        ];
        for (text, said) in cases {
            let error = ServerKey::parse(&text).unwrap_err();
            assert!(error.contains(said), "{text}: {error}");
        }
    }

    #[test]
    fn the_saved_key_sits_beside_the_agent_key() {
        assert_eq!(
            saved_key_file(Path::new("dir/procmon-agent.key")),
            Path::new("dir/procmon-agent.action-key")
        );
    }

    #[test]
    fn the_configured_key_wins_over_the_saved_one() {
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("procmon-agent.action-key");
        let pinned = PinnedKey::new(None, Some(saved.clone()));
        assert_eq!(pinned.current(), None, "nothing saved yet");
        std::fs::write(&saved, format!("{}\n", key(1))).unwrap();
        assert_eq!(pinned.current(), Some(key(1)), "read when asked");
        let pinned = PinnedKey::new(Some(key(2)), Some(saved.clone()));
        assert_eq!(pinned.current(), Some(key(2)));
        std::fs::write(&saved, "ed25519:broken").unwrap();
        assert_eq!(PinnedKey::new(None, Some(saved)).current(), None);
    }
}
