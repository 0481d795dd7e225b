//! What the server answers. The page and the tests read these shapes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{HostInfo, ProcessSample};

/// Answer to `POST /api/processes/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestResponse {
    /// The snapshot's id, as sent.
    pub snapshot_id: Uuid,
    /// False when this id was stored before (a retry); nothing was stored
    /// twice.
    pub stored: bool,
    /// Actions on this host's processes that wait for the agent to fetch
    /// them (`GET /api/agent/actions/`); 0 from servers older than this
    /// field.
    #[serde(default)]
    pub pending_actions: u32,
}

/// One host in `GET /api/hosts/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostSummary {
    /// What the host's newest snapshot said about it (`host.id` is the
    /// stable id to use in `?host=`).
    pub host: HostInfo,
    /// Name to show people: the hostname, made unique with part of the id
    /// when two hosts share a hostname.
    pub display_name: String,
    /// When the server first received a snapshot from this host.
    pub first_seen: DateTime<Utc>,
    /// When the server last received a snapshot from this host (server's
    /// clock, so a wrong agent clock cannot make a host look alive).
    pub last_seen: DateTime<Utc>,
    /// The oldest time whose snapshot is still kept: the later of when the
    /// host's oldest snapshot was taken (which can be before `first_seen`,
    /// for snapshots an agent held while the server was out of reach) and
    /// the start of the server's retention, rounded up to the minute.
    /// `?at=` before it finds nothing.
    pub history_from: DateTime<Utc>,
    /// True while snapshots keep arriving: false once three of the agent's
    /// intervals pass with none.
    pub online: bool,
    /// Processes in the newest snapshot.
    pub process_count: u32,
    /// Sum of all processes' CPU % in the newest snapshot (100 = one core).
    pub cpu_percent_total: f64,
    /// Sum of all processes' resident memory in the newest snapshot.
    pub memory_rss_total_bytes: u64,
}

/// Answer to `GET /api/processes/?host=…`: one snapshot of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessListing {
    /// The host and its state.
    pub host: HostSummary,
    /// The snapshot shown.
    pub snapshot_id: Uuid,
    /// When the agent took it (agent's clock).
    pub collected_at: DateTime<Utc>,
    /// When the server received it (server's clock).
    pub received_at: DateTime<Utc>,
    /// The processes, flat; the tree is built from `parent_pid`.
    pub processes: Vec<ProcessSample>,
}

/// Every error the API returns has this body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable machine-readable kind, e.g. "unauthorized", "invalid_json".
    pub error: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Answer to `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    /// "ok" or "unavailable".
    pub status: String,
    /// Whether the database answered.
    pub database: bool,
    /// Server version.
    pub version: String,
}

/// Where the points of a [`Series`] come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Every sample the agents sent, merged into steps.
    Raw,
    /// One-minute roll-ups (kept longer than raw samples).
    Minute,
    /// One-hour roll-ups (kept longest).
    Hour,
}

/// Values over time, one point per step: answer to the series endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    /// Start of the range asked for.
    pub from: DateTime<Utc>,
    /// End of the range asked for.
    pub to: DateTime<Utc>,
    /// Width of one point, in milliseconds.
    pub step_ms: u64,
    /// What the points were made from.
    pub resolution: Resolution,
    /// Names of the values in each point's `avg`, `min` and `max`, in that
    /// order, e.g. `["cpu_percent", "memory_rss_bytes", ...]`.
    pub metrics: Vec<String>,
    /// Points in time order; steps with no sample are left out.
    pub points: Vec<SeriesPoint>,
}

/// One step of a [`Series`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// Start of the step.
    pub at: DateTime<Utc>,
    /// Samples that fell in the step.
    pub samples: u64,
    /// Average of each metric over the step (`null` where no sample had it).
    pub avg: Vec<Option<f64>>,
    /// Minimum of each metric over the step.
    pub min: Vec<Option<f64>>,
    /// Maximum of each metric over the step.
    pub max: Vec<Option<f64>>,
}

/// The facts of one process: what identifies it and what changes rarely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessFacts {
    /// Process id.
    pub pid: u32,
    /// When it started; with `pid`, its identity on its host.
    pub start_time: DateTime<Utc>,
    /// Parent's pid as the OS reported it.
    pub parent_pid: Option<u32>,
    /// Short name.
    pub name: String,
    /// Executable path, when it could be read.
    pub exe: Option<String>,
    /// Command line.
    pub cmd: Vec<String>,
    /// Owner.
    pub user: Option<String>,
}

impl From<&ProcessSample> for ProcessFacts {
    fn from(p: &ProcessSample) -> Self {
        Self {
            pid: p.pid,
            start_time: p.start_time,
            parent_pid: p.parent_pid,
            name: p.name.clone(),
            exe: p.exe.clone(),
            cmd: p.cmd.clone(),
            user: p.user.clone(),
        }
    }
}

/// A process that started or exited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessEvent {
    /// The snapshot that first showed it started, or first showed it gone.
    pub at: DateTime<Utc>,
    /// Its facts: as it started, or as it last was.
    pub process: ProcessFacts,
}

/// A process whose facts changed (it exec()ed, changed user, rewrote its
/// command line, or was re-parented).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactChange {
    /// The snapshot that first showed the new facts.
    pub at: DateTime<Utc>,
    /// The facts before.
    pub before: ProcessFacts,
    /// The facts after.
    pub after: ProcessFacts,
}

/// What changed on a host between two times: answer to
/// `GET /api/history/changes/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostChanges {
    /// The host's stable id.
    pub host_id: String,
    /// Start of the range (exclusive: the state at `from` is the base).
    pub from: DateTime<Utc>,
    /// End of the range (inclusive).
    pub to: DateTime<Utc>,
    /// Processes that started, in time order.
    pub started: Vec<ProcessEvent>,
    /// Processes that exited, in time order.
    pub exited: Vec<ProcessEvent>,
    /// Processes whose facts changed, in time order.
    pub changed: Vec<FactChange>,
    /// True when the answer stopped at the limit before reaching `to`.
    pub truncated: bool,
}

/// One process found by a fleet-wide search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The host's stable id.
    pub host_id: String,
    /// The host's name to show people.
    pub display_name: String,
    /// When the snapshot it was found in was taken.
    pub taken_at: DateTime<Utc>,
    /// The process as it was then.
    pub process: ProcessSample,
}

/// Answer to `GET /api/search/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    /// The time searched (`null`: each host's newest snapshot).
    pub at: Option<DateTime<Utc>>,
    /// Matches, by host then pid.
    pub hits: Vec<SearchHit>,
    /// True when there were more matches than the limit.
    pub truncated: bool,
}

/// What an agent sends to `POST /api/enroll/` to get its host key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// The server's enrollment secret (`pme_...`).
    pub enroll_secret: String,
    /// The host's stable id, as its snapshots will name it.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub host_id: String,
    /// The host's name, for the server's log.
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub hostname: String,
}

/// Answer to `POST /api/enroll/`: the host's own key, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// The key's public id, to find it in `procmon-server keys list`.
    pub key_id: String,
    /// The key to send snapshots with (`Authorization: Bearer <key>`).
    /// Keep it: the server stores only its hash.
    pub key: String,
    /// The host it is bound to.
    pub host_id: String,
    /// The server's public key for actions (`ed25519:` and base64): the
    /// agent pins it and trusts only actions it signed. Absent from
    /// servers older than this field.
    #[serde(default)]
    pub action_key: Option<String>,
}

/// One agent key in `GET /api/keys/`: its record, never the key itself
/// (the server keeps only its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentKeyInfo {
    /// The key's public id: its part after `pmk_`, to revoke it by.
    pub id: String,
    /// The host it may send as; `null` until its first snapshot binds it.
    pub host_id: Option<String>,
    /// What it is for, e.g. "enrolled", "embedded agent", or an admin's note.
    pub label: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; `null` while it works.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What an admin sends to `POST /api/keys/` to make a key.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAgentKey {
    /// The host id it may send as; without it, the host of its first
    /// snapshot, for good.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub host_id: Option<String>,
    /// A note to tell keys apart; without it, who made it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub label: Option<String>,
}

/// Answer to `POST /api/keys/`: the whole key, shown this once, and its
/// record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedAgentKey {
    /// The key to give the agent (`api_key`, sent as
    /// `Authorization: Bearer <key>`). Only its hash is kept: it cannot be
    /// shown again.
    pub key: String,
    /// The key's record, as `GET /api/keys/` lists it.
    pub record: AgentKeyInfo,
}

/// Answer to `POST /api/enroll-secret/`: the new enrollment secret, shown
/// this once. The previous one no longer works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollSecret {
    /// The secret agents enroll with (`pme_...`): `--enroll-secret`, or
    /// `enroll_secret` in the agent's config.
    pub enroll_secret: String,
}
