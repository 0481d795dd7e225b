//! What one snapshot of this machine costs, against the least any process
//! monitor must do: list the process table and read each process's status
//! once (on Linux, `/proc/<pid>/stat`). Prints time and peak heap of both,
//! and their ratio. Run with `cargo bench -p procmon-agent --bench collect`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use procmon_agent::Collector;

/// Counts live heap bytes and their peak, so memory is measured per step
/// rather than for the whole process.
struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const ROUNDS: usize = 15;

/// Median time and median peak heap growth over `ROUNDS` runs of `step`
/// (medians, so one unusual round, say a user list reload, does not count);
/// `pause` runs before each, untimed.
fn measure<T>(mut pause: impl FnMut(), mut step: impl FnMut() -> T) -> (Duration, usize) {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut peaks = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        pause();
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let started = Instant::now();
        let result = step();
        times.push(started.elapsed());
        peaks.push(PEAK.load(Ordering::Relaxed) - before);
        drop(result);
    }
    times.sort();
    peaks.sort();
    (times[ROUNDS / 2], peaks[ROUNDS / 2])
}

/// The floor: every pid of the process table and one status read each.
#[cfg(target_os = "linux")]
fn baseline() -> usize {
    let mut read = 0;
    for entry in std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
    {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) {
            read += stat.len().min(1);
        }
    }
    read
}

/// Elsewhere the floor is sysinfo listing processes with nothing refreshed.
#[cfg(not(target_os = "linux"))]
fn baseline() -> usize {
    let mut system = sysinfo::System::new().expect("sysinfo supports this OS");
    system.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::All,
        true,
        sysinfo::ProcessRefreshKind::nothing().without_tasks(),
    );
    system.processes().len()
}

fn main() {
    let processes = baseline();
    let (base_time, base_heap) = measure(|| {}, baseline);

    let before = LIVE.load(Ordering::Relaxed);
    let mut collector = Collector::new();
    drop(collector.snapshot(Duration::from_secs(2)));
    let kept = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    // A collector lives as long as the agent; measure its steady state. The
    // pause keeps the collector from waiting out its minimum CPU span.
    let (snap_time, snap_heap) = measure(
        || std::thread::sleep(Duration::from_millis(300)),
        || collector.snapshot(Duration::from_secs(2)),
    );
    let snapshot = collector.snapshot(Duration::from_secs(2));
    let (json_time, _) = measure(
        || {},
        || serde_json::to_vec(&snapshot).expect("a snapshot serialises"),
    );

    println!("processes on this machine:         {processes}");
    println!(
        "baseline (list + read stat once):  {:>9.2} ms  peak heap {:>8.1} KiB",
        ms(base_time),
        kib(base_heap)
    );
    println!(
        "procmon snapshot (steady state):   {:>9.2} ms  peak heap {:>8.1} KiB",
        ms(snap_time),
        kib(snap_heap)
    );
    println!(
        "snapshot to JSON:                  {:>9.2} ms",
        ms(json_time)
    );
    println!(
        "collector's state between cycles:               {:>8.1} KiB",
        kib(kept)
    );
    println!(
        "ratio snapshot / baseline:         time x{:.1}, peak heap x{:.1}",
        ms(snap_time) / ms(base_time).max(f64::MIN_POSITIVE),
        snap_heap as f64 / (base_heap.max(1)) as f64
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn kib(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}
