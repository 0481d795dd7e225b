//! The procmon agent: takes a snapshot of every process of this machine each
//! interval and sends it to a procmon server.
//!
//! - [`Collector`] takes snapshots ([`collect`] holds the per-OS code).
//! - [`run_with`] is the loop: collect, then hand the snapshot, whole or
//!   as a change batch, to a [`Deliver`].
//! - With the `http` feature (on by default): [`Sender`] posts to a server
//!   over http or https, trusting what [`ServerTrust`] says; [`AgentConfig`]
//!   and [`config::Settings`] say where and how often; [`run`] is the loop
//!   over HTTP. Without it (the server's own agent, which hands snapshots
//!   over in process) no HTTP client is built in.
//! - [`failover`] says which of several servers sharing one database gets
//!   the next delivery: the first, the next while one is not usable, and
//!   the first again once it answers.
//! - [`actions`] acts on a process when the server asks (signed, checked
//!   against the pinned server key and the local config), fetched in a
//!   task of its own after an ingest answer says actions wait.
//! - [`spool::Spool`] keeps what could not be sent on disk until the server
//!   has it, and [`retry`] says when to try again. The spool and the key
//!   file are private to the agent's user (`private`).

pub mod actions;
pub mod bench;
pub mod collect;
pub mod deliver;
mod private;
pub mod retry;
mod run;
pub mod spool;

#[cfg(feature = "http")]
pub mod cli;
#[cfg(feature = "http")]
pub mod config;
#[cfg(feature = "http")]
pub mod enroll;
#[cfg(feature = "http")]
pub mod failover;
#[cfg(feature = "http")]
pub mod first_run;
#[cfg(feature = "http")]
pub mod send;
#[cfg(feature = "http")]
pub mod tls;
#[cfg(windows)]
pub mod windows;

pub use collect::Collector;
pub use deliver::{Deliver, Delivery, SendError};
pub use run::{run_with, run_with_actions, Link, Pace, Sent, DEFAULT_FULL_EVERY, STOP_GRACE};

#[cfg(feature = "http")]
pub use config::{AgentConfig, AgentKey};
#[cfg(feature = "http")]
pub use run::run;
#[cfg(feature = "http")]
pub use send::{HttpOutbox, Sender};
#[cfg(feature = "http")]
pub use tls::ServerTrust;
