//! The procmon wire format: what an agent sends and what the server answers.
//!
//! Agent, server and tests all use these types, so they cannot disagree about
//! the format. Every struct here is plain data with a documented field for
//! each thing on the wire; times are UTC and serialise as RFC 3339.
//!
//! The format is versioned ([`WIRE_VERSION`]): a server rejects a snapshot of
//! a version it does not know, with a message that says which it speaks.
//!
//! [`limits`] says how big a snapshot and each of its fields may be: the
//! server refuses more, and the agent cuts what it collects to fit.

pub mod actions;
pub mod alerts;
mod api;
pub mod changes;
pub mod channels;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod limits;
mod snapshot;
mod spool;
mod whole;

pub use api::{
    AgentKeyInfo, CreatedAgentKey, EnrollRequest, EnrollResponse, EnrollSecret, ErrorBody,
    FactChange, HealthStatus, HostChanges, HostSummary, IngestResponse, NewAgentKey, ProcessEvent,
    ProcessFacts, ProcessListing, Resolution, SearchHit, SearchResults, Series, SeriesPoint,
};
pub use changes::{ApplyError, ChangeBatch, ProcessUpdate};
pub use snapshot::{HostInfo, HostLoad, ProcessSample, ProcessStatus, Snapshot};
pub use spool::{SpoolReport, SPOOL_BYTES_HEADER, SPOOL_WAITING_HEADER};

/// The version of the snapshot format this crate describes. Bump it when a
/// change would make an older server misread a newer agent's snapshot.
pub const WIRE_VERSION: u32 = 1;
