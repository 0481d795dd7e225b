//! The host's load: CPU use per core, memory, swap and load average, as
//! the page's meters show them.
//!
//! A meter of its own (its own `sysinfo::System`), apart from the process
//! table: two small reads per cycle (on Linux `/proc/stat` and
//! `/proc/meminfo`) and the load average, whatever reads the processes. On
//! Windows CPU use comes from the kernel's per-CPU times instead of
//! sysinfo's PDH counters, which Wine lacks.

use procmon_model::HostLoad;
use sysinfo::System;

/// Reads the host's load each cycle; CPU use is measured between two
/// readings, so keep one for the life of the agent.
pub struct LoadMeter {
    system: System,
    #[cfg(windows)]
    cpus: crate::windows::cpu_times::CpuTimes,
}

impl LoadMeter {
    /// Takes a first CPU reading, so the next [`read`](Self::read) measures
    /// from now. `None` where sysinfo cannot read this OS at all.
    pub fn new() -> Option<LoadMeter> {
        let mut meter = LoadMeter {
            system: System::new().ok()?,
            #[cfg(windows)]
            cpus: crate::windows::cpu_times::CpuTimes::new(),
        };
        // The first CPU reading, measured from by the next.
        meter.cpu_per_core();
        Some(meter)
    }

    /// The load since the previous reading.
    pub fn read(&mut self) -> HostLoad {
        let cpu_per_core = self.cpu_per_core();
        self.system.refresh_memory();
        let memory_available_bytes = self.system.available_memory();
        HostLoad {
            cpu_per_core,
            memory_used_bytes: self
                .system
                .total_memory()
                .saturating_sub(memory_available_bytes),
            memory_available_bytes,
            swap_total_bytes: self.system.total_swap(),
            swap_used_bytes: self.system.used_swap(),
            load_average: load_average(),
        }
    }
}

impl LoadMeter {
    #[cfg(windows)]
    fn cpu_per_core(&mut self) -> Vec<f32> {
        self.cpus.usage()
    }

    #[cfg(not(windows))]
    fn cpu_per_core(&mut self) -> Vec<f32> {
        self.system.refresh_cpu_usage();
        self.system
            .cpus()
            .iter()
            .map(sysinfo::Cpu::usage)
            .map(|usage| {
                if usage.is_finite() {
                    usage.clamp(0.0, 100.0)
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// Over 1, 5 and 15 minutes; `None` where the OS keeps none (Windows).
fn load_average() -> Option<[f64; 3]> {
    if cfg!(windows) {
        return None;
    }
    System::load_average()
        .ok()
        .map(|l| [l.one, l.five, l.fifteen])
        .filter(|l| l.iter().all(|v| v.is_finite() && *v >= 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_has_every_core_and_plausible_memory() {
        let mut meter = LoadMeter::new().expect("sysinfo reads this OS");
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let load = meter.read();
        assert!(!load.cpu_per_core.is_empty());
        assert!(load.cpu_per_core.iter().all(|c| (0.0..=100.0).contains(c)));
        assert!(load.memory_used_bytes > 0 && load.memory_available_bytes > 0);
        assert!(load.swap_used_bytes <= load.swap_total_bytes);
        if cfg!(target_os = "linux") {
            assert!(load.load_average.is_some());
        }
    }
}
