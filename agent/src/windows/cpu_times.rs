//! Each logical CPU's busy share, from one
//! `NtQuerySystemInformation(SystemProcessorPerformanceInformation)` call per
//! reading: the same counters Task Manager's per-core graphs use.
//!
//! sysinfo reads CPU use through the PDH performance counters, which Wine
//! does not provide (a snapshot then never completes there); this reads the
//! kernel's own times, which both have.

use windows_sys::Wdk::System::SystemInformation::NtQuerySystemInformation;

/// `SystemProcessorPerformanceInformation`, not named by windows-sys.
const PROCESSOR_PERFORMANCE_INFORMATION: i32 = 8;
/// Room for this many logical CPUs per reading (one processor group).
const MAX_CPUS: usize = 256;

/// One CPU's counters in 100 ns units, as the kernel lays them out.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ProcessorTimes {
    idle: i64,
    /// Kernel time, idle time included.
    kernel: i64,
    user: i64,
    dpc: i64,
    interrupt: i64,
    interrupt_count: u32,
}

/// Busy share per CPU between two readings.
pub struct CpuTimes {
    last: Vec<ProcessorTimes>,
}

impl CpuTimes {
    /// Takes a first reading to measure the next one from.
    pub fn new() -> Self {
        CpuTimes {
            last: read().unwrap_or_default(),
        }
    }

    /// Each CPU's use since the previous reading, 0 to 100; empty if the
    /// counters cannot be read.
    pub fn usage(&mut self) -> Vec<f32> {
        let Some(now) = read() else {
            return Vec::new();
        };
        let usage = now
            .iter()
            .zip(
                self.last
                    .iter()
                    .chain(std::iter::repeat(&ProcessorTimes::default())),
            )
            .map(|(now, then)| {
                let idle = (now.idle - then.idle).max(0) as f64;
                let total = ((now.kernel - then.kernel) + (now.user - then.user)).max(0) as f64;
                if total > 0.0 {
                    (100.0 * (1.0 - idle / total)).clamp(0.0, 100.0) as f32
                } else {
                    0.0
                }
            })
            .collect();
        self.last = now;
        usage
    }
}

fn read() -> Option<Vec<ProcessorTimes>> {
    let mut times = vec![ProcessorTimes::default(); MAX_CPUS];
    let size = std::mem::size_of_val(times.as_slice()) as u32;
    let mut returned = 0u32;
    // SAFETY: the buffer is writable for `size` bytes and laid out as the
    // kernel writes this class.
    let status = unsafe {
        NtQuerySystemInformation(
            PROCESSOR_PERFORMANCE_INFORMATION,
            times.as_mut_ptr().cast(),
            size,
            &mut returned,
        )
    };
    if status < 0 {
        return None;
    }
    times.truncate(returned as usize / std::mem::size_of::<ProcessorTimes>());
    Some(times)
}
