//! What only Windows has: reading the OS directly for the collector, and
//! running as a Windows service.

pub(crate) mod handle;
pub(crate) mod owner;
pub(crate) mod privilege;
pub(crate) mod process_table;
pub(crate) mod registry;
pub(crate) mod text;
