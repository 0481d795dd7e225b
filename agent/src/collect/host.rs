//! The host's facts: what a snapshot says about the machine itself.

use procmon_model::HostInfo;
use sysinfo::{MemoryRefreshKind, System};

use super::{from_unix_secs, platform};

/// Reads the host's facts; `id` is the host id read once at start (see
/// [`platform::host_id`]), `labels` those the settings give. Only memory is refreshed in `system`: the global
/// CPU refresh is avoided on purpose, since on Windows it needs the PDH
/// counters, which Wine lacks.
pub(super) fn read(system: &mut System, id: String, labels: &[String]) -> HostInfo {
    system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
    let (os_name, os_version) = platform::os_name_and_version();
    // sysinfo learns the CPUs while measuring process CPU %; the standard
    // library's count is the fallback before that.
    let cpu_count = match system.cpus().len() {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    HostInfo {
        id,
        hostname: System::host_name().unwrap_or_else(|_| "unknown".to_owned()),
        os_name,
        os_version,
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
        cpu_count: u32::try_from(cpu_count).unwrap_or(u32::MAX),
        memory_total_bytes: system.total_memory(),
        boot_time: from_unix_secs(System::boot_time().unwrap_or(0)),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        labels: labels.to_vec(),
    }
}
