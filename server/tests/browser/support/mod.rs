//! What every browser test shares, in one glob: `use super::*;` in an area
//! module brings the names below, the helpers of each part, and the crates'
//! names the tests use.

mod agent;
mod browser;
mod data;
mod page;
mod proxy;

pub use agent::*;
pub use browser::*;
pub use data::*;
pub use page::*;
pub use proxy::*;

pub use std::collections::BTreeMap;
pub use std::future::Future;
pub use std::path::Path;
pub use std::process::Command;
pub use std::sync::Arc;
pub use std::time::{Duration, Instant};

pub use crate::chromium::{connect, start_driver};
pub use crate::common::{
    require, sample_snapshot, spawn_app, spawn_app_with_clock, KillOnDrop, TestApp, TEST_PASSWORD,
    TEST_USER,
};
pub use chrono::{DateTime, Utc};
pub use fantoccini::{Client, Locator};
pub use procmon_model::{HostInfo, ProcessSample, ProcessStatus, Snapshot, WIRE_VERSION};
pub use procmon_server::clock::ManualClock;
pub use procmon_server::store::accounts::Role;
pub use serde_json::{json, Value};
pub use uuid::Uuid;

/// Long enough for a loaded 2-core machine; the page itself polls every 2 s.
pub const PATIENCE: Duration = Duration::from_secs(30);
