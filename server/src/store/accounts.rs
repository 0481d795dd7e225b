//! People's accounts: users with a role and a password hash, their sessions
//! and one-time sign-in links. Only hashes are stored: of passwords
//! (argon2, made by `crate::accounts`) and of session and link tokens
//! (SHA-256), so a copy of the database signs nobody in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// What a user may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads hosts, processes and history.
    Viewer,
    /// Reads as a viewer does, and may act on processes (end, kill,
    /// suspend, resume, lower priority); manages nothing.
    Operator,
    /// Reads, acts, and manages users, keys, rules and channels.
    Admin,
}

impl Role {
    /// Every role, from the least allowed.
    pub const ALL: [Role; 3] = [Self::Viewer, Self::Operator, Self::Admin];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// The role named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Whether the role may act on processes.
    pub fn may_act(self) -> bool {
        matches!(self, Self::Operator | Self::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// The argon2 hash in PHC form; `None` until a password is set (the
    /// first admin signs in with a one-time link instead).
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("has_password", &self.password_hash.is_some())
            .finish()
    }
}

/// A SHA-256 hash of a session or sign-in link token.
pub type TokenHash = [u8; 32];

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetime {
    /// A session unused this long ends.
    pub idle: std::time::Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute: std::time::Duration,
}

/// A live session with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: UserRecord,
    pub created_at: DateTime<Utc>,
    pub last_used: DateTime<Utc>,
    /// Whether it was opened with a one-time link (then the password may be
    /// set without the current one: the link is how a lost one is replaced).
    pub via_link: bool,
}

impl SessionRecord {
    /// When the session ends unless used again before.
    pub fn expires_at(&self, lifetime: SessionLifetime) -> DateTime<Utc> {
        let add = |t: DateTime<Utc>, d: std::time::Duration| {
            t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
        };
        add(self.last_used, lifetime.idle).min(add(self.created_at, lifetime.absolute))
    }
}

/// Users, sessions and sign-in links. Names compare exactly (the API
/// limits them to a small alphabet).
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Adds a user; false (and nothing changed) when the name is taken.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<bool>;

    /// Replaces a user's password hash; false when there is no such user.
    async fn set_password(&self, name: &str, password_hash: &str) -> StoreResult<bool>;

    /// Removes a user with their sessions and links; false when unknown.
    async fn remove_user(&self, name: &str) -> StoreResult<bool>;

    async fn find_user(&self, name: &str) -> StoreResult<Option<UserRecord>>;

    /// Every user, by name.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;

    /// Starts a session for `name`, known by the hash of its token.
    async fn create_session(
        &self,
        token_hash: &TokenHash,
        name: &str,
        now: DateTime<Utc>,
        via_link: bool,
    ) -> StoreResult<()>;

    /// The session with this token hash, if it has not ended by `now`
    /// under `lifetime`; using it counts as activity (recorded to the
    /// minute, so reads do not each cost a write). An ended one is deleted.
    async fn session(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
        lifetime: SessionLifetime,
    ) -> StoreResult<Option<SessionRecord>>;

    /// Ends one session (nothing happens if it does not exist).
    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<()>;

    /// Ends every session of `name` but `keep`; how many ended.
    async fn delete_sessions_of_user(
        &self,
        name: &str,
        keep: Option<&TokenHash>,
    ) -> StoreResult<u64>;

    /// Deletes the sessions that have ended by `now` under `lifetime`, and
    /// the sign-in links that have expired, though nobody used them again
    /// (a used one is deleted on use); how many in all.
    async fn delete_ended(&self, now: DateTime<Utc>, lifetime: SessionLifetime)
        -> StoreResult<u64>;

    /// Stores a one-time sign-in link for `name`, valid until `expires_at`.
    async fn create_signin_link(
        &self,
        token_hash: &TokenHash,
        name: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Uses up the link with this token hash: the user's name if it exists
    /// and has not expired by `now`. Either way it is gone afterwards.
    async fn take_signin_link(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>>;
}
