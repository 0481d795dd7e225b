//! What the server answers. The page and the tests read these shapes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{HostInfo, ProcessSample};

/// Answer to `POST /api/processes/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    /// The snapshot's id, as sent.
    pub snapshot_id: Uuid,
    /// False when this id was stored before (a retry); nothing was stored
    /// twice.
    pub stored: bool,
}

/// One host in `GET /api/hosts/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// True while snapshots keep arriving: false once three of the agent's
    /// intervals pass with none.
    pub online: bool,
    /// Processes in the newest snapshot.
    pub process_count: u32,
    /// Sum of all processes' CPU % in the newest snapshot (100 = one core).
    pub cpu_percent_total: f32,
    /// Sum of all processes' resident memory in the newest snapshot.
    pub memory_rss_total_bytes: u64,
}

/// Answer to `GET /api/processes/?host=…`: one snapshot of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable kind, e.g. "unauthorized", "invalid_json".
    pub error: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Answer to `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    /// "ok" or "unavailable".
    pub status: String,
    /// Whether the database answered.
    pub database: bool,
    /// Server version.
    pub version: String,
}
