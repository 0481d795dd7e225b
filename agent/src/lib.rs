//! The procmon agent: takes a snapshot of every process of this machine each
//! interval and sends it to a procmon server.
//!
//! - [`Collector`] takes snapshots ([`collect`] holds the per-OS code).
//! - [`Sender`] delivers one snapshot to the server, over https trusting
//!   what [`ServerTrust`] says.
//! - [`AgentConfig`] and [`config::Settings`] say where and how often.
//! - [`run`] is the loop that ties them together until shutdown.
//! - [`spool::Spool`] keeps outgoing messages on disk until the server has
//!   them, and [`retry`] says when to try again.

pub mod bench;
pub mod cli;
pub mod collect;
pub mod config;
pub mod enroll;
pub mod first_run;
pub mod retry;
mod run;
pub mod send;
pub mod spool;
pub mod tls;
#[cfg(windows)]
pub mod windows;

pub use collect::Collector;
pub use config::{AgentConfig, AgentKey};
pub use run::run;
pub use send::{SendError, Sender};
pub use tls::ServerTrust;
