//! macOS, the BSDs and anything else sysinfo supports: sysinfo's view, with
//! no extras. See the contract in `mod.rs`.

use sysinfo::{Product, System};

use super::PlatformExtras;

/// The hardware UUID where sysinfo can read one (macOS `IOPlatformUUID`),
/// else an id saved on first run.
pub(super) fn host_id() -> String {
    Product::uuid()
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(super::saved_id::load_or_create)
}

pub(super) fn os_name_and_version() -> (String, String) {
    (
        System::name().unwrap_or_else(|_| std::env::consts::OS.to_owned()),
        System::os_version().unwrap_or_default(),
    )
}

/// sysinfo has no thread or handle counts here; every process is reported
/// with what sysinfo read.
pub(super) struct ProcessDetails;

impl ProcessDetails {
    pub(super) fn new() -> Self {
        ProcessDetails
    }

    pub(super) fn begin_snapshot(&mut self) {}

    pub(super) fn read(&mut self, _pid: u32) -> PlatformExtras {
        PlatformExtras::default()
    }
}
