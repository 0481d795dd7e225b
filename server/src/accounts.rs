//! What accounts mean, apart from HTTP: which names and passwords are
//! acceptable, hashing them (argon2, on the blocking pool), session and
//! sign-in link tokens (256 random bits, stored only as SHA-256), and the
//! first admin of a new database. The API and the command line both go
//! through here, so a user added either way is the same.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::store::accounts::{AccountStore, Role, TokenHash, UserRecord};
use crate::store::StoreError;

/// Name of the admin created on first start.
pub const FIRST_ADMIN: &str = "admin";
/// How long a one-time sign-in link works.
pub const LINK_VALID_FOR: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest and longest password, in bytes.
pub const PASSWORD_BYTES: std::ops::RangeInclusive<usize> = 8..=1024;
/// Longest user name, in characters.
pub const MAX_NAME: usize = 64;

/// Hashes at once, at most: each takes argon2's 19 MiB for tens of
/// milliseconds, so a flood of sign-ins waits here instead of taking the
/// machine's memory.
static HASHING: Semaphore = Semaphore::const_new(4);

/// Why an account could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("a user named {0:?} already exists")]
    NameTaken(String),
    #[error("no user named {0:?}")]
    UnknownUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A user name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`, so it is
/// safe in a URL path, a log line and a shell.
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let fine = |c: char| c.is_ascii_alphanumeric() || "._-@".contains(c);
    if name.is_empty() || name.chars().count() > MAX_NAME || !name.chars().all(fine) {
        return Err(AccountError::Invalid(format!(
            "{name:?} is not a user name: use 1 to {MAX_NAME} letters, digits, '.', '_', '-' or '@'"
        )));
    }
    Ok(())
}

/// A password long enough to resist guessing and short enough to hash.
pub fn check_password(password: &SecretString) -> Result<(), AccountError> {
    let len = password.expose_secret().len();
    if !PASSWORD_BYTES.contains(&len) {
        return Err(AccountError::Invalid(format!(
            "a password must be {} to {} bytes long",
            PASSWORD_BYTES.start(),
            PASSWORD_BYTES.end()
        )));
    }
    Ok(())
}

/// The argon2id hash (default parameters) of `password`, in PHC form.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || hash_blocking(password.expose_secret()))
        .await
        .map_err(|e| anyhow::anyhow!("the hashing task failed: {e}"))?
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches `hash`. With no hash (unknown user, or no
/// password set) a stand-in hash is checked instead and the answer is no:
/// the time taken does not tell which names exist.
pub async fn verify_password(password: SecretString, hash: Option<String>) -> anyhow::Result<bool> {
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let (phc, real) = match &hash {
            Some(hash) => (hash.as_str(), true),
            None => (stand_in_hash()?, false),
        };
        let parsed = PasswordHash::new(phc)
            .map_err(|e| anyhow::anyhow!("a stored hash is unreadable: {e}"))?;
        let matches = Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok();
        Ok(matches && real)
    })
    .await
    .map_err(|e| anyhow::anyhow!("the hashing task failed: {e}"))?
}

/// A hash of a random password, made once, with the same parameters as
/// real ones.
fn stand_in_hash() -> anyhow::Result<&'static str> {
    static STAND_IN: OnceLock<String> = OnceLock::new();
    if let Some(hash) = STAND_IN.get() {
        return Ok(hash);
    }
    let (token, _) = new_token()?;
    let hash = hash_blocking(token.expose_secret())?;
    Ok(STAND_IN.get_or_init(|| hash))
}

/// A new token (64 hex digits of OS randomness) and its hash.
pub fn new_token() -> anyhow::Result<(SecretString, TokenHash)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    Ok((SecretString::from(token), hash))
}

/// The SHA-256 of a token, as stored. A plain hash suffices (no salt, no
/// slow hash): tokens are 256 random bits, not guessable words.
pub fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Adds a user, with a password or (`None`) none yet.
pub async fn add_user(
    store: &dyn AccountStore,
    name: &str,
    role: Role,
    password: Option<SecretString>,
    now: DateTime<Utc>,
) -> Result<UserRecord, AccountError> {
    check_name(name)?;
    let password_hash = match password {
        Some(password) => {
            check_password(&password)?;
            Some(hash_password(password).await?)
        }
        None => None,
    };
    let user = UserRecord {
        name: name.to_owned(),
        role,
        created_at: now,
        password_hash,
    };
    if store.create_user(&user).await? {
        Ok(user)
    } else {
        Err(AccountError::NameTaken(name.to_owned()))
    }
}

/// Sets a user's password and ends their sessions but `keep` (a password
/// is changed when it may be known to someone else).
pub async fn set_password(
    store: &dyn AccountStore,
    name: &str,
    password: SecretString,
    keep: Option<&TokenHash>,
) -> Result<(), AccountError> {
    check_password(&password)?;
    let hash = hash_password(password).await?;
    if !store.set_password(name, &hash).await? {
        return Err(AccountError::UnknownUser(name.to_owned()));
    }
    store.delete_sessions_of_user(name, keep).await?;
    Ok(())
}

/// A new one-time sign-in link for `name`: `base_url` (ending in `/`)
/// with the token in the fragment, which browsers never send to servers
/// or put in logs; the page reads it and signs in with it.
pub async fn signin_link(
    store: &dyn AccountStore,
    name: &str,
    now: DateTime<Utc>,
    base_url: &str,
) -> Result<SecretString, AccountError> {
    if store.find_user(name).await?.is_none() {
        return Err(AccountError::UnknownUser(name.to_owned()));
    }
    let (token, hash) = new_token()?;
    let expires = now + chrono::Duration::from_std(LINK_VALID_FOR).unwrap_or_default();
    store.create_signin_link(&hash, name, expires).await?;
    Ok(SecretString::from(format!(
        "{base_url}#signin={}",
        token.expose_secret()
    )))
}

/// On a database with no user: creates the admin (no password yet) and
/// answers a one-time link that signs them in. `None` when users exist.
pub async fn first_start(
    store: &dyn AccountStore,
    now: DateTime<Utc>,
    base_url: &str,
) -> Result<Option<SecretString>, AccountError> {
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    match add_user(store, FIRST_ADMIN, Role::Admin, None, now).await {
        Ok(_) => {}
        // Another server process on the same file was quicker: its link
        // is the one printed.
        Err(AccountError::NameTaken(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    signin_link(store, FIRST_ADMIN, now, base_url)
        .await
        .map(Some)
}

/// Deletes ended sessions and expired sign-in links every `every`, until
/// the task is dropped or aborted: a session nobody uses again would
/// otherwise stay in the database for ever.
pub async fn sweep_ended(
    accounts: std::sync::Arc<dyn AccountStore>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    lifetime: crate::store::accounts::SessionLifetime,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match accounts.delete_ended(clock.now(), lifetime).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "ended sessions and expired links deleted"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "cannot delete ended sessions; will retry"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_a_small_alphabet() {
        for good in ["admin", "a", "jo.smith@example.org", "x_y-z"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "n".repeat(MAX_NAME + 1);
        for bad in ["", "a b", "a/b", "é", "<b>", long.as_str()] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password(SecretString::from("correct horse"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let check =
            |p: &str, h: Option<String>| verify_password(SecretString::from(p.to_owned()), h);
        assert!(check("correct horse", Some(hash.clone())).await.unwrap());
        assert!(!check("correct horsf", Some(hash)).await.unwrap());
        assert!(!check("anything", None).await.unwrap());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, hash_a) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_eq!(a.expose_secret().len(), 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(token_hash(a.expose_secret()), hash_a);
    }
}
