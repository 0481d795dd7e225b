//! What the agent puts on the wire, against a real local server: the bytes
//! of one whole snapshot and of the change batches after it (zstd bodies,
//! as sent), over 60 cycles at 1 s of this machine's real processes (on
//! Linux made at least 1,000 with idle sleepers first), and
//! the CPU time per cycle of making and sending a batch. Prints the target
//! "steady-state batch under 2 KB" and whether it is met.
//!
//! Run with `cargo bench -p procmon-agent --bench wire`. The server runs
//! in this process on threads of its own; the agent's side runs on this
//! thread alone, so this thread's CPU time is the agent's cost.

use std::time::{Duration, Instant};

use procmon_agent::send::compressed_json;
use procmon_agent::{Collector, Sender};
use procmon_model::changes::diff;

#[cfg(target_os = "linux")]
#[path = "support/machine.rs"]
mod machine;
#[path = "support/server.rs"]
mod server;

const CYCLES: usize = 60;
const INTERVAL: Duration = Duration::from_secs(1);
/// The target: a steady-state batch (median) under this many bytes.
const TARGET_BATCH_BYTES: usize = 2048;

/// CPU time this thread has used.
#[cfg(unix)]
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec, and a clock every Linux has.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(ok, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Elsewhere, wall time: an upper bound.
#[cfg(not(unix))]
fn thread_cpu() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median<T: Copy + Ord>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

fn percentile<T: Copy + Ord>(values: &[T], p: usize) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn main() {
    // At least 1,000 processes, mostly idle, as on a busy server.
    #[cfg(target_os = "linux")]
    let (machine, _sleepers) = machine::populate();

    // The server: its own runtime and threads, a temporary database, port 0.
    let server = server::start("wire bench");
    let (url, key) = (server.url.clone(), server.key.clone());

    // The agent: this thread only.
    let agent = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sender = Sender::new(&url, key).expect("a sender");
    let mut collector = Collector::new();
    std::thread::sleep(INTERVAL);
    let mut acked = collector.snapshot(INTERVAL);
    let whole_json = serde_json::to_vec(&acked).unwrap().len();
    let whole_body = compressed_json(&acked).unwrap();
    let whole_bytes = whole_body.len();
    let answer = agent
        .block_on(sender.post(sender.ingest_url(), whole_body))
        .expect("the whole snapshot is stored");
    assert!(answer.stored);

    let mut bodies = Vec::with_capacity(CYCLES);
    let mut jsons = Vec::with_capacity(CYCLES);
    let mut encode = Vec::with_capacity(CYCLES);
    let mut send = Vec::with_capacity(CYCLES);
    let mut quiet = 0;
    let mut next_tick = Instant::now() + INTERVAL;
    for _ in 0..CYCLES {
        std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
        next_tick += INTERVAL;
        let snapshot = collector.snapshot(INTERVAL);

        let started = thread_cpu();
        let batch = diff(&acked, &snapshot);
        let body = compressed_json(&batch).unwrap();
        let encoded = thread_cpu();
        let answer = agent
            .block_on(sender.post(sender.changes_url(), body.clone()))
            .expect("the batch is stored");
        let sent = thread_cpu();

        assert_eq!(answer.snapshot_id, snapshot.id);
        quiet += usize::from(batch.is_quiet());
        jsons.push(serde_json::to_vec(&batch).unwrap().len());
        bodies.push(body.len());
        encode.push(encoded - started);
        send.push(sent - encoded);
        acked = snapshot;
    }

    let steady = median(&bodies);
    let total: Vec<Duration> = encode.iter().zip(&send).map(|(e, s)| *e + *s).collect();
    println!(
        "wire: {CYCLES} cycles at {} s of this machine's {} processes, to a local server",
        INTERVAL.as_secs(),
        acked.processes.len()
    );
    #[cfg(target_os = "linux")]
    println!(
        "  ({} idle sleepers started by the bench, {} processes then)",
        machine.started_here, machine.processes
    );
    println!(
        "  whole snapshot:  {whole_bytes} B zstd body ({whole_json} B of JSON, {:.0}x)",
        whole_json as f64 / whole_bytes as f64
    );
    println!(
        "  change batches:  median {steady} B, p95 {} B, max {} B zstd body \
         (median {} B of JSON); {quiet} of {CYCLES} had no process change",
        percentile(&bodies, 95),
        bodies.iter().max().unwrap(),
        median(&jsons),
    );
    println!(
        "  batch / whole:   {:.1}% of the bytes",
        100.0 * steady as f64 / whole_bytes as f64
    );
    println!(
        "  agent CPU/cycle: diff+encode+compress {:.2} ms, send {:.2} ms, total {:.2} ms \
         (medians; p95 total {:.2} ms)",
        ms(median(&encode)),
        ms(median(&send)),
        ms(median(&total)),
        ms(percentile(&total, 95)),
    );
    println!(
        "  target: steady-state batch under {} KB: {} (median {steady} B)",
        TARGET_BATCH_BYTES / 1024,
        if steady < TARGET_BATCH_BYTES {
            "met"
        } else {
            "NOT MET"
        }
    );
}
