//! `procmon-agent --bench-collect N`: what collecting costs on this machine.
//! Takes a first reading, then `N` snapshots as the agent would (nothing is
//! sent), and prints the CPU time this process spent per snapshot and its
//! peak memory, and on Windows the floor to compare with: one read of the
//! kernel's process table. Pauses between snapshots are not counted:
//! sleeping costs no CPU.
//!
//! Under Wine, part of every system call is served by `wineserver`, a
//! separate process whose CPU time is not counted here.

use std::time::{Duration, Instant};

use crate::Collector;

/// The interval written into the snapshots; it changes nothing measured.
const INTERVAL: Duration = Duration::from_secs(2);

/// Runs the benchmark and prints its figures to stdout.
pub fn run(cycles: u32) -> anyhow::Result<()> {
    anyhow::ensure!(cycles > 0, "--bench-collect needs at least one cycle");
    let at_start = own_cpu_time()?;
    let mut collector = Collector::new();
    let first = own_cpu_time()? - at_start;

    let mut processes = 0;
    let mut spent = Duration::ZERO;
    let started = Instant::now();
    for _ in 0..cycles {
        // The collector waits out its minimum CPU span by itself; that
        // sleep costs no CPU time.
        let before = own_cpu_time()?;
        let snapshot = collector.snapshot(INTERVAL);
        spent += own_cpu_time()? - before;
        processes = snapshot.processes.len();
    }
    let wall = started.elapsed();
    let floor = floor_per_cycle()?;

    println!("processes per snapshot:  {processes}");
    println!("first reading (new):     {:>8.2} ms CPU", ms(first));
    println!(
        "CPU per snapshot:        {:>8.2} ms  (mean of {cycles}, {:.1} s wall in all)",
        ms(spent) / f64::from(cycles),
        wall.as_secs_f64()
    );
    if let Some((what, floor)) = floor {
        println!("{what:<25}{:>8.2} ms CPU", ms(floor));
    }
    println!(
        "peak memory:             {:>8.1} MiB ({})",
        peak_memory()? as f64 / (1024.0 * 1024.0),
        PEAK_MEMORY_MEANING
    );
    Ok(())
}

/// What the least a collector must do per cycle costs here, for
/// comparison: on Windows one read of the kernel's process table.
#[cfg(windows)]
fn floor_per_cycle() -> anyhow::Result<Option<(&'static str, Duration)>> {
    use crate::windows::process_table::KernelProcessTable;

    // Many reads: under Wine the process's CPU time counts in 10 ms steps.
    const READS: u32 = 200;
    let mut table = KernelProcessTable::new();
    let before = own_cpu_time()?;
    for _ in 0..READS {
        std::hint::black_box(table.read()?);
    }
    Ok(Some((
        "floor (table read only):",
        (own_cpu_time()? - before) / READS,
    )))
}

#[cfg(not(windows))]
fn floor_per_cycle() -> anyhow::Result<Option<(&'static str, Duration)>> {
    Ok(None)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(windows)]
const PEAK_MEMORY_MEANING: &str = "peak working set";
#[cfg(not(windows))]
const PEAK_MEMORY_MEANING: &str = "VmHWM, peak resident set";

/// User plus kernel time of this whole process so far.
#[cfg(windows)]
fn own_cpu_time() -> anyhow::Result<Duration> {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessTimes};

    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: plain call with out pointers to locals; the pseudo handle
    // needs no closing.
    let ok = unsafe {
        GetProcessTimes(
            GetCurrentProcess(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    anyhow::ensure!(
        ok != 0,
        "GetProcessTimes: {}",
        std::io::Error::last_os_error()
    );
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    // FILETIME counts 100 ns units.
    Ok(Duration::from_nanos((ticks(kernel) + ticks(user)) * 100))
}

/// Peak working set of this process.
#[cfg(windows)]
fn peak_memory() -> anyhow::Result<u64> {
    use windows_sys::Win32::System::ProcessStatus::{
        GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS,
    };
    use windows_sys::Win32::System::Threading::GetCurrentProcess;

    // SAFETY: an all-zero PROCESS_MEMORY_COUNTERS is valid (plain numbers).
    let mut counters: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    let size = size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: the size passed is the struct's.
    let ok = unsafe { GetProcessMemoryInfo(GetCurrentProcess(), &mut counters, size) };
    anyhow::ensure!(
        ok != 0,
        "GetProcessMemoryInfo: {}",
        std::io::Error::last_os_error()
    );
    Ok(counters.PeakWorkingSetSize as u64)
}

/// User plus system time of the collecting (main) thread, in nanoseconds
/// from schedstat: the process's own `stat` counts in 10 ms ticks, too
/// coarse for one snapshot.
#[cfg(target_os = "linux")]
fn own_cpu_time() -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let nanos = text
        .split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("unexpected schedstat: {text:?}"))?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(target_os = "linux")]
fn peak_memory() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))?;
    Ok(kib * 1024)
}

#[cfg(not(any(windows, target_os = "linux")))]
fn own_cpu_time() -> anyhow::Result<Duration> {
    anyhow::bail!("--bench-collect measures CPU time on Windows and Linux only")
}

#[cfg(not(any(windows, target_os = "linux")))]
fn peak_memory() -> anyhow::Result<u64> {
    anyhow::bail!("--bench-collect measures memory on Windows and Linux only")
}
