//! Actions on processes as the store keeps them: the audit log (who asked
//! what of which process, why, and how it ended), which is also the queue
//! the host's agent fetches from, and the key every server of the database
//! signs actions with.
//!
//! A fetch claims what it hands out (`delivered_at` set in the same
//! statement), so an action goes to its agent once, even with several
//! servers on one database: PostgreSQL locks the rows it claims and skips
//! those another server's claim holds (`FOR UPDATE SKIP LOCKED`), SQLite
//! has one writer. A result is written once; entries are never deleted.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::actions::{
    ActionEntry, ActionKind, ActionOutcome, ActionReport, ActionResultCode, SignedAction,
};
use uuid::Uuid;

use super::chain::nanos;
use super::StoreResult;

/// The length of the signing key's seed (an Ed25519 secret key).
pub const SEED_BYTES: usize = 32;

/// One action to store: signed, with what the audit log says beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    /// What the agent is handed, signature included.
    pub action: SignedAction,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// The host's name, the target's name and user, as the newest snapshot
    /// had them when it was asked.
    pub hostname: String,
    pub process_name: String,
    pub process_user: Option<String>,
    pub reason: String,
}

impl NewAction {
    /// The audit entry of the action as just asked: pending.
    pub fn entry(&self) -> ActionEntry {
        let a = &self.action;
        ActionEntry {
            id: a.id,
            requested_by: self.requested_by.clone(),
            requested_at: self.requested_at,
            host_id: a.host_id.clone(),
            hostname: self.hostname.clone(),
            pid: a.pid,
            started_at: a.started_at,
            process_name: self.process_name.clone(),
            process_user: self.process_user.clone(),
            kind: a.kind,
            reason: self.reason.clone(),
            expires_at: a.expires_at,
            outcome: ActionOutcome::Pending,
            delivered_at: None,
            code: None,
            message: None,
            finished_at: None,
        }
    }
}

/// What became of a reported result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultRecorded {
    /// Written now.
    Recorded,
    /// No action of that host has the id.
    NotFound,
    /// The action has a result already; nothing changed.
    AlreadyRecorded,
}

#[async_trait]
pub trait ActionStore: Send + Sync + 'static {
    /// The seed of the database's signing key: `candidate` (made at
    /// `now`) if the database has none yet, else the one it has. Atomic,
    /// so servers starting at once on one database all get the same.
    async fn signing_seed(
        &self,
        candidate: &[u8; SEED_BYTES],
        now: DateTime<Utc>,
    ) -> StoreResult<[u8; SEED_BYTES]>;

    /// Stores a new action, pending.
    async fn insert_action(&self, action: &NewAction) -> StoreResult<()>;

    /// How many of the host's actions wait to be fetched at `now`: not
    /// yet delivered, without a result, not expired.
    async fn pending_actions(&self, host_id: &str, now: DateTime<Utc>) -> StoreResult<u32>;

    /// Claims up to `limit` of the host's actions waiting at `now` (oldest
    /// first), marking them delivered at `now`: none is handed out twice.
    async fn claim_actions(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<SignedAction>>;

    /// Writes the result of the host's action `id`, reported at `at`,
    /// unless it has one.
    async fn record_result(
        &self,
        host_id: &str,
        id: Uuid,
        report: &ActionReport,
        at: DateTime<Utc>,
    ) -> StoreResult<ResultRecorded>;

    /// One entry of the audit log, as it stands at `now`.
    async fn action(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<Option<ActionEntry>>;

    /// Entries of one host or of all, newest first, at most `limit`, as
    /// they stand at `now`.
    async fn actions(
        &self,
        host_id: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ActionEntry>>;
}

/// The tables, one text for both backends, as [`super::alerts::TABLES`].
/// Times are nanoseconds since 1970. The key's seed is hex (one type both
/// read alike); one row at most, id 1.
pub const TABLES: &str = "
CREATE TABLE IF NOT EXISTS action_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS process_action (
    id TEXT PRIMARY KEY NOT NULL,
    host_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    process_name TEXT NOT NULL,
    process_user TEXT,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    nonce TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    signature TEXT NOT NULL,
    delivered_at BIGINT,
    code TEXT,
    message TEXT,
    finished_at BIGINT
);
CREATE INDEX IF NOT EXISTS process_action_host ON process_action (host_id, requested_at);
CREATE INDEX IF NOT EXISTS process_action_requested ON process_action (requested_at);
-- What every ingest answer counts: the few actions still waiting.
CREATE INDEX IF NOT EXISTS process_action_waiting ON process_action (host_id, expires_at)
    WHERE delivered_at IS NULL AND code IS NULL;
";

/// The statements both backends run, with PostgreSQL's `$n` (SQLite's
/// text: [`super::alerts::sqlite_text`]).
pub(super) mod sql {
    pub const PUT_SEED: &str = "INSERT INTO action_key (id, seed, created_at) VALUES (1, $1, $2)
        ON CONFLICT (id) DO NOTHING";
    pub const SEED: &str = "SELECT seed FROM action_key WHERE id = 1";
    pub const INSERT: &str = "INSERT INTO process_action
        (id, host_id, hostname, pid, started_at, process_name, process_user, kind, reason,
         requested_by, requested_at, nonce, issued_at, expires_at, signature)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
    pub const PENDING: &str = "SELECT count(*) FROM process_action
        WHERE host_id = $1 AND delivered_at IS NULL AND code IS NULL AND expires_at > $2";
    /// The columns of a [`procmon_model::actions::SignedAction`].
    pub const SIGNED_COLUMNS: &str =
        "id, host_id, pid, started_at, kind, nonce, issued_at, expires_at, signature";
    /// The columns of an [`procmon_model::actions::ActionEntry`].
    pub const ENTRY_COLUMNS: &str = "id, requested_by, requested_at, host_id, hostname, pid,
        started_at, process_name, process_user, kind, reason, expires_at, delivered_at, code,
        message, finished_at";
    pub const RECORD: &str = "UPDATE process_action SET code = $3, message = $4, finished_at = $5
        WHERE id = $1 AND host_id = $2 AND code IS NULL";
    pub const EXISTS: &str = "SELECT count(*) FROM process_action WHERE id = $1 AND host_id = $2";

    /// Claims what waits: `$1` the host, `$2` now, `$3` the limit. `lock`
    /// is PostgreSQL's row locking (SQLite has none, nor needs it). The
    /// rows are picked once, in a materialized CTE: as a plain `IN
    /// (SELECT … LIMIT)`, PostgreSQL may run the subquery again for each
    /// row it updates, and each run, no longer seeing the rows already
    /// claimed, picks the next, past the limit. The outer condition is
    /// checked again on a row another claim changed meanwhile.
    pub fn claim(lock: &str) -> String {
        format!(
            "WITH picked AS MATERIALIZED (
                 SELECT id FROM process_action
                 WHERE host_id = $1 AND delivered_at IS NULL AND code IS NULL AND expires_at > $2
                 ORDER BY requested_at, id
                 LIMIT $3 {lock})
             UPDATE process_action SET delivered_at = $2
             WHERE id IN (SELECT id FROM picked) AND delivered_at IS NULL AND code IS NULL
             RETURNING {SIGNED_COLUMNS}"
        )
    }

    /// The listing, newest first, with `$1` the host when `by_host`.
    pub fn list(by_host: bool, limit: usize) -> String {
        let clause = if by_host { "WHERE host_id = $1" } else { "" };
        format!(
            "SELECT {ENTRY_COLUMNS} FROM process_action {clause}
             ORDER BY requested_at DESC, id DESC LIMIT {limit}"
        )
    }
}

/// The values of [`sql::INSERT`], in order, as both backends bind them.
pub(super) struct InsertValues {
    pub id: String,
    pub host_id: String,
    pub hostname: String,
    pub pid: i64,
    pub started_at: i64,
    pub process_name: String,
    pub process_user: Option<String>,
    pub kind: &'static str,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub nonce: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub signature: String,
}

impl InsertValues {
    pub fn of(new: &NewAction) -> Self {
        let a = &new.action;
        Self {
            id: a.id.to_string(),
            host_id: a.host_id.clone(),
            hostname: new.hostname.clone(),
            pid: i64::from(a.pid),
            started_at: nanos(a.started_at),
            process_name: new.process_name.clone(),
            process_user: new.process_user.clone(),
            kind: a.kind.as_str(),
            reason: new.reason.clone(),
            requested_by: new.requested_by.clone(),
            requested_at: nanos(new.requested_at),
            nonce: a.nonce.clone(),
            issued_at: nanos(a.issued_at),
            expires_at: nanos(a.expires_at),
            signature: a.signature.clone(),
        }
    }
}

/// The columns of [`sql::SIGNED_COLUMNS`], in order.
pub(super) type SignedRow = (String, String, i64, i64, String, String, i64, i64, String);

/// A signed action from the columns of [`sql::SIGNED_COLUMNS`].
pub(super) fn signed(row: SignedRow) -> StoreResult<SignedAction> {
    let time = DateTime::from_timestamp_nanos;
    let (id, host_id, pid, started_at, kind, nonce, issued_at, expires_at, signature) = row;
    Ok(SignedAction {
        id: uuid(&id)?,
        host_id,
        pid: pid_of(&id, pid)?,
        started_at: time(started_at),
        kind: kind_of(&id, &kind)?,
        nonce,
        issued_at: time(issued_at),
        expires_at: time(expires_at),
        signature,
    })
}

/// The columns of [`sql::ENTRY_COLUMNS`], in order.
pub(super) type EntryRow = (
    String,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// What the audit log says of an action that expired with no report.
pub const UNANSWERED: &str = "no agent reported a result before the action expired";

/// An audit entry from the columns of [`sql::ENTRY_COLUMNS`], as it stands
/// at `now`: one that expired with no result reads failed, unanswered.
pub(super) fn entry(row: EntryRow, now: DateTime<Utc>) -> StoreResult<ActionEntry> {
    let time = DateTime::from_timestamp_nanos;
    let (
        id,
        requested_by,
        requested_at,
        host_id,
        hostname,
        pid,
        started_at,
        process_name,
        process_user,
        kind,
        reason,
        expires_at,
        delivered_at,
        code,
        message,
        finished_at,
    ) = row;
    let code = code
        .map(|c| {
            serde_json::from_value::<ActionResultCode>(serde_json::Value::String(c.clone()))
                .map_err(|_| anyhow::anyhow!("stored action {id} has an unknown result code {c:?}"))
        })
        .transpose()?;
    let expires_at = time(expires_at);
    let delivered_at = delivered_at.map(time);
    let (outcome, code, message, finished_at) = match code {
        Some(code) => (code.outcome(), Some(code), message, finished_at.map(time)),
        None if expires_at <= now => (
            ActionOutcome::Failed,
            Some(ActionResultCode::Unanswered),
            Some(UNANSWERED.to_owned()),
            Some(expires_at),
        ),
        None if delivered_at.is_some() => (ActionOutcome::Delivered, None, None, None),
        None => (ActionOutcome::Pending, None, None, None),
    };
    Ok(ActionEntry {
        id: uuid(&id)?,
        pid: pid_of(&id, pid)?,
        kind: kind_of(&id, &kind)?,
        requested_by,
        requested_at: time(requested_at),
        host_id,
        hostname,
        started_at: time(started_at),
        process_name,
        process_user,
        reason,
        expires_at,
        outcome,
        delivered_at,
        code,
        message,
        finished_at,
    })
}

/// A result code as stored: its name on the wire.
pub(super) fn code_text(code: ActionResultCode) -> StoreResult<String> {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(text)) => Ok(text),
        _ => Err(anyhow::anyhow!("cannot encode the result code {code:?}").into()),
    }
}

/// The seed as stored: hex.
pub(super) fn seed_text(seed: &[u8; SEED_BYTES]) -> String {
    seed.iter().map(|b| format!("{b:02x}")).collect()
}

/// The seed from its stored hex.
pub(super) fn seed_of(text: &str) -> StoreResult<[u8; SEED_BYTES]> {
    let bad = || anyhow::anyhow!("the stored action signing key is not {SEED_BYTES} bytes of hex");
    if text.len() != SEED_BYTES * 2 || !text.is_ascii() {
        return Err(bad().into());
    }
    let mut seed = [0; SEED_BYTES];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(seed)
}

fn uuid(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| anyhow::anyhow!("stored action id {text:?} is not a UUID").into())
}

fn pid_of(id: &str, pid: i64) -> StoreResult<u32> {
    u32::try_from(pid)
        .map_err(|_| anyhow::anyhow!("stored action {id} has pid {pid}, out of range").into())
}

fn kind_of(id: &str, kind: &str) -> StoreResult<ActionKind> {
    ActionKind::parse(kind)
        .ok_or_else(|| anyhow::anyhow!("stored action {id} has an unknown kind {kind:?}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_round_trip_through_hex_and_bad_text_is_refused() {
        let seed: [u8; SEED_BYTES] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(seed_of(&seed_text(&seed)).unwrap(), seed);
        assert!(seed_of("00").is_err());
        assert!(seed_of(&"zz".repeat(SEED_BYTES)).is_err());
    }

    #[test]
    fn result_codes_are_stored_by_their_wire_names() {
        assert_eq!(
            code_text(ActionResultCode::PidReused).unwrap(),
            "pid_reused"
        );
        assert_eq!(code_text(ActionResultCode::Done).unwrap(), "done");
    }
}
