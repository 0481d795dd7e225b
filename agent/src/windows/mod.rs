//! What only Windows has: reading the OS directly for the collector, the
//! double-click start, the log file beside the .exe, running as a Windows
//! service, and the access lists that keep the agent's files private.

pub mod actions;
#[cfg(feature = "http")]
pub mod console;
pub(crate) mod cpu_times;
#[cfg(feature = "http")]
pub mod double_click;
pub(crate) mod handle;
#[cfg(feature = "http")]
pub mod logfile;
pub(crate) mod owner;
pub(crate) mod private;
pub(crate) mod privilege;
pub(crate) mod process_facts;
pub(crate) mod process_table;
pub(crate) mod registry;
#[cfg(feature = "http")]
pub mod service;
pub(crate) mod text;
