//! The store under faults, against a real database file or a real
//! PostgreSQL server (several servers on it, one killed; the database
//! restarted or cut off): a full disk, the
//! files deleted, a read-only directory, another program's lock, SIGKILL
//! mid-ingest, and a minute of everything at once. Each must end in 201
//! only for what is committed, clear 503s otherwise, and recovery without
//! a restart. The tmpfs tests need root (for mount): without it they skip,
//! and fail under `CI=true`.

#[path = "../common/mod.rs"]
mod common;
mod process;
mod support;

mod deleted;
mod disk_full;
mod locked;
mod read_only;
mod scale_out;
mod sigkill;
mod soak;
