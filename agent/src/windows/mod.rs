//! What only Windows has: reading the OS directly for the collector, the
//! double-click start, the log file beside the .exe, and running as a
//! Windows service.

pub mod console;
pub mod double_click;
pub(crate) mod handle;
pub mod logfile;
pub(crate) mod owner;
pub(crate) mod privilege;
pub(crate) mod process_facts;
pub(crate) mod process_table;
pub(crate) mod registry;
pub mod service;
pub(crate) mod text;
