//! What one collection cycle costs, against the least any process monitor
//! must do. Run with `cargo bench -p procmon-agent --bench collect`.
//!
//! On Linux the bench first starts idle `sleep` children until the machine
//! has at least 1,000 processes (they are killed at the end), then
//! measures, interleaved over `CYCLES` cycles so that both see the same
//! machine:
//!
//! 1. the floor: list `/proc` and open, read and close every `<pid>/stat`
//!    once, as a plain C loop would;
//! 2. collection: [`Collector::snapshot`] in its steady state.
//!
//! Costs are the process's own CPU time per cycle (`getrusage`), not wall
//! time, so waiting and other work on the machine do not count. Every
//! section prints labelled lines, and "NOT MET" beside a target missed.
//! Further sections (the whole agent: encode, compress, send) are added as
//! functions called from `linux::main`, taking the same `Machine`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

/// Cycles measured for each step.
const CYCLES: usize = 60;
/// The agent's usual interval, to express a cycle's cost as a share of one
/// core.
const INTERVAL: Duration = Duration::from_secs(1);

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    {
        let mut collector = Collector::new();
        let started = std::time::Instant::now();
        for _ in 0..CYCLES {
            drop(collector.snapshot(INTERVAL));
        }
        println!(
            "collection, wall time per cycle:   {:>8.2} ms (the floor is measured on Linux only)",
            started.elapsed().as_secs_f64() * 1000.0 / CYCLES as f64
        );
    }
}

#[cfg(target_os = "linux")]
#[path = "support/machine.rs"]
mod machine;
#[cfg(target_os = "linux")]
#[path = "support/server.rs"]
mod server;

#[cfg(target_os = "linux")]
mod linux {
    use std::fs;
    use std::io::Read;
    use std::thread;
    use std::time::Duration;

    use super::machine::{is_pid, populate, Machine};
    use super::*;

    /// Collection may cost at most this many times the floor.
    const TARGET_RATIO: f64 = 1.5;
    /// Pause between cycles. `Collector::snapshot` waits out the rest of its
    /// minimum CPU span itself (without using CPU); the pause only keeps the
    /// machine from being hammered.
    const PAUSE: Duration = Duration::from_millis(100);

    /// CPU figures of one step, in milliseconds per cycle.
    struct CpuPerCycle {
        median: f64,
        mean: f64,
        max: f64,
    }

    impl CpuPerCycle {
        fn of(mut samples: Vec<f64>) -> Self {
            samples.sort_by(f64::total_cmp);
            CpuPerCycle {
                median: samples[samples.len() / 2],
                mean: samples.iter().sum::<f64>() / samples.len() as f64,
                max: samples[samples.len() - 1],
            }
        }
    }

    pub(super) fn main() {
        let (machine, _sleepers) = populate();
        println!("== machine");
        println!(
            "processes:                         {:>8} ({} idle sleepers started by the bench)",
            machine.processes, machine.started_here
        );
        println!("cycles measured per step:          {CYCLES:>8}");
        let floor = collection_against_the_floor(&machine);
        whole_agent(&machine, floor);
    }

    /// The floor: every pid of the process table and one read of its
    /// `stat`, opened and closed each time: `open`, one `read` into a
    /// buffer with room for the line, `close`.
    fn floor(buf: &mut [u8], path: &mut Vec<u8>) -> usize {
        use std::os::unix::ffi::OsStrExt;
        let mut read = 0;
        for entry in fs::read_dir("/proc").expect("/proc is readable").flatten() {
            let name = entry.file_name();
            if !is_pid(name.as_encoded_bytes()) {
                continue;
            }
            path.clear();
            path.extend_from_slice(b"/proc/");
            path.extend_from_slice(name.as_encoded_bytes());
            path.extend_from_slice(b"/stat");
            if fs::File::open(std::ffi::OsStr::from_bytes(path))
                .and_then(|mut f| f.read(buf))
                .is_ok_and(|n| n > 0)
            {
                read += 1;
            }
        }
        read
    }

    /// Returns the floor's median CPU ms per cycle, for the next section.
    fn collection_against_the_floor(machine: &Machine) -> f64 {
        let mut buf = vec![0; 4096];
        let mut path = Vec::with_capacity(64);
        let before = LIVE.load(Ordering::Relaxed);
        let mut collector = Collector::new();
        drop(collector.snapshot(INTERVAL));
        let kept = LIVE.load(Ordering::Relaxed).saturating_sub(before);
        reset_peak_rss();

        let mut floor_ms = Vec::with_capacity(CYCLES);
        let mut collect_ms = Vec::with_capacity(CYCLES);
        let mut heap_peaks = Vec::with_capacity(CYCLES);
        let mut listed = 0;
        for _ in 0..CYCLES {
            thread::sleep(PAUSE);
            let cpu = cpu_time();
            std::hint::black_box(floor(&mut buf, &mut path));
            floor_ms.push(ms(cpu_time() - cpu));

            thread::sleep(PAUSE);
            let heap_before = LIVE.load(Ordering::Relaxed);
            PEAK.store(heap_before, Ordering::Relaxed);
            let cpu = cpu_time();
            let snapshot = collector.snapshot(INTERVAL);
            collect_ms.push(ms(cpu_time() - cpu));
            heap_peaks.push(PEAK.load(Ordering::Relaxed) - heap_before);
            listed = snapshot.processes.len();
        }
        let floor = CpuPerCycle::of(floor_ms);
        let collect = CpuPerCycle::of(collect_ms);
        heap_peaks.sort_unstable();
        let ratio = collect.median / floor.median.max(f64::MIN_POSITIVE);

        println!("== floor: list /proc, open+read+close each <pid>/stat");
        print_cpu(&floor);
        println!("== collection: Collector::snapshot, steady state");
        println!("processes per snapshot:            {listed:>8}");
        print_cpu(&collect);
        println!(
            "ratio to the floor (medians):      {ratio:>8.2} x   target <= {TARGET_RATIO} x{}",
            if ratio <= TARGET_RATIO {
                ""
            } else {
                "   NOT MET"
            }
        );
        println!(
            "one core at a {} s interval:        {:>8.2} %",
            INTERVAL.as_secs(),
            collect.median / ms(INTERVAL) * 100.0
        );
        println!(
            "CPU per process per cycle:         {:>8.2} us (floor {:.2} us)",
            collect.median * 1000.0 / machine.processes as f64,
            floor.median * 1000.0 / machine.processes as f64
        );
        println!(
            "peak heap during a cycle (median): {:>8.1} KiB",
            heap_peaks[heap_peaks.len() / 2] as f64 / 1024.0
        );
        println!(
            "collector's state between cycles:  {:>8.1} KiB",
            kept as f64 / 1024.0
        );
        println!(
            "peak RSS of the bench (VmHWM):     {:>8.1} MiB",
            peak_rss_kib() as f64 / 1024.0
        );
        floor.median
    }

    /// The whole agent: the release `procmon-agent`, as users run it,
    /// sending to a real server (in this process, on threads of its own)
    /// every second; its own CPU time per cycle over [`CYCLES`] cycles
    /// (from `/proc/<pid>/stat`, after a warm-up that includes the first,
    /// whole snapshot), against the floor, and its peak RSS.
    fn whole_agent(machine: &Machine, floor_ms: f64) {
        use secrecy::ExposeSecret;
        use std::process::{Command, Stdio};

        const WARM_UP: Duration = Duration::from_secs(5);
        const TARGET_RSS_MIB: f64 = 10.0;

        let server = super::server::start("collect bench");
        let agent_dir = tempfile::tempdir().expect("a temporary directory");
        let mut agent = Command::new(env!("CARGO_BIN_EXE_procmon-agent"))
            .args(["--server-url", &server.url, "--interval", "1s"])
            .arg("--spool-dir")
            .arg(agent_dir.path().join("spool"))
            .env("PROCMON_AGENT_API_KEY", server.key.expose_secret())
            .env("RUST_LOG", "warn")
            .current_dir(agent_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start procmon-agent");
        thread::sleep(WARM_UP);
        let before = process_cpu(agent.id());
        thread::sleep(INTERVAL * CYCLES as u32);
        let after = process_cpu(agent.id());
        let rss = peak_rss_kib_of(agent.id()) as f64 / 1024.0;
        let _ = agent.kill();
        let _ = agent.wait();

        let (Some(before), Some(after)) = (before, after) else {
            println!("== whole agent: procmon-agent exited early; no figures");
            return;
        };
        let per_cycle = ms(after - before) / CYCLES as f64;
        let ratio = per_cycle / floor_ms.max(f64::MIN_POSITIVE);
        println!(
            "== whole agent: procmon-agent (collect, diff, JSON, zstd, send) to a local server, {CYCLES} cycles at {} s",
            INTERVAL.as_secs()
        );
        println!(
            "CPU per cycle:                     {per_cycle:>8.3} ms (its own CPU time over {CYCLES} s; {} processes)",
            machine.processes
        );
        println!(
            "ratio to the floor:                {ratio:>8.2} x   target <= {TARGET_RATIO} x{}",
            if ratio <= TARGET_RATIO {
                ""
            } else {
                "   NOT MET"
            }
        );
        println!(
            "one core:                          {:>8.2} %",
            per_cycle / ms(INTERVAL) * 100.0
        );
        println!(
            "peak RSS (VmHWM):                  {rss:>8.1} MiB   target < {TARGET_RSS_MIB} MiB{}",
            if rss < TARGET_RSS_MIB {
                ""
            } else {
                "   NOT MET"
            }
        );
    }

    /// A process's CPU time, user and system, from `/proc/<pid>/stat`.
    fn process_cpu(pid: u32) -> Option<Duration> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // After the name: state is field 3, utime 14 and stime 15.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf only reads a constant of the system.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Some(Duration::from_secs_f64(ticks as f64 / hz))
    }

    fn peak_rss_kib_of(pid: u32) -> u64 {
        vm_hwm(&format!("/proc/{pid}/status"))
    }

    fn print_cpu(cpu: &CpuPerCycle) {
        println!(
            "CPU per cycle:                     {:>8.3} ms median, {:.3} mean, {:.3} max",
            cpu.median, cpu.mean, cpu.max
        );
    }

    /// This process's CPU time, user and system, all threads.
    fn cpu_time() -> Duration {
        // SAFETY: `usage` is a valid rusage for getrusage to fill in.
        let usage = unsafe {
            let mut usage = std::mem::zeroed::<libc::rusage>();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        time(usage.ru_utime) + time(usage.ru_stime)
    }

    /// Resets VmHWM to the current RSS (Linux 4.0 and later), so the peak
    /// read later is this section's.
    fn reset_peak_rss() {
        let _ = fs::write("/proc/self/clear_refs", "5");
    }

    fn peak_rss_kib() -> u64 {
        vm_hwm("/proc/self/status")
    }

    fn vm_hwm(status: &str) -> u64 {
        fs::read_to_string(status)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn ms(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }
}
