//! What an agent tells the server about its spool with every delivery.
//!
//! An agent that cannot reach a server keeps what it collects in its spool
//! on disk and sends it, oldest first, when a server answers again. How much
//! waits there is the fleet's backlog, which only the agents know: each one
//! reports it in two request headers of `POST /api/processes/` and
//! `POST /api/changes/`, and the server counts them in its metrics
//! (`procmon_agent_spool_waiting`, `procmon_agent_spool_bytes`). They are
//! headers, not fields of the snapshot, because they describe the agent at
//! the moment of sending, not the host at the moment of collecting, and are
//! never stored.

/// Request header: deliveries waiting in the agent's spool as it sends this
/// one (this one included when it comes from the spool), a decimal integer.
pub const SPOOL_WAITING_HEADER: &str = "x-procmon-spool-waiting";

/// Request header: bytes the agent's spool takes on disk as it sends this
/// one, a decimal integer.
pub const SPOOL_BYTES_HEADER: &str = "x-procmon-spool-bytes";

/// The agent's spool as it sends a delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolReport {
    /// Deliveries waiting to be sent.
    pub waiting: u64,
    /// Bytes they take on disk.
    pub bytes: u64,
}
