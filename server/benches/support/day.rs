//! The scale bench's history: a simulated day of one host written through
//! the store directly with simulated time (as the history bench does), and
//! a fleet's newest snapshots beside it for searches, the same data into
//! each store given.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use procmon_model::fixtures::SimHost;
use procmon_server::store::{Retention, Store};

/// Snapshots between two maintenance passes: a simulated minute at 5 s, as
/// the server's background task runs.
const MAINTAIN_EVERY: usize = 12;

/// When the simulated day starts.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
}

/// What was written.
pub struct Day {
    pub host: String,
    pub samples: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub pid1_start: DateTime<Utc>,
    /// Time each store took per snapshot, in the stores' order.
    pub ingest: Vec<Vec<Duration>>,
}

/// Writes `snapshots` snapshots of a `processes`-process host at
/// `interval` into every store, each received 40 ms after it was taken,
/// with `Store::maintain` every simulated minute.
pub async fn write_day(
    stores: &[&dyn Store],
    processes: usize,
    snapshots: usize,
    interval: Duration,
) -> Day {
    let host = format!("day-host-{processes}");
    let mut sim = SimHost::new(&host, processes, 1, start());
    sim.interval = chrono::Duration::from_std(interval).expect("a short interval");
    let pid1_start = sim.processes[0].start_time;
    let mut day = Day {
        host,
        samples: 0,
        first: start() + sim.interval,
        last: start(),
        pid1_start,
        ingest: vec![Vec::with_capacity(snapshots); stores.len()],
    };
    let began = Instant::now();
    for i in 0..snapshots {
        let s = Arc::new(sim.next());
        let received = s.collected_at + chrono::Duration::milliseconds(40);
        day.samples += s.processes.len() as u64;
        day.last = s.collected_at;
        for (store, times) in stores.iter().zip(&mut day.ingest) {
            let t = Instant::now();
            store
                .ingest(s.clone(), received)
                .await
                .expect("the store ingests");
            times.push(t.elapsed());
            if (i + 1) % MAINTAIN_EVERY == 0 {
                store
                    .maintain(received, Retention::default())
                    .await
                    .expect("maintenance runs");
            }
        }
        if (i + 1) % (snapshots / 6).max(1) == 0 {
            println!(
                "  {:>6}/{snapshots} snapshots, {:.0} s",
                i + 1,
                began.elapsed().as_secs_f64()
            );
        }
    }
    day
}

/// One snapshot of each of `hosts` hosts of `processes` processes, taken
/// at `at`, into every store: what a fleet search looks through.
pub async fn write_fleet(stores: &[&dyn Store], hosts: usize, processes: usize, at: DateTime<Utc>) {
    for h in 0..hosts {
        let sim = SimHost::new(
            &format!("fleet-host-{h:05}"),
            processes,
            1_000 + h as u64,
            at,
        );
        let s = Arc::new(sim.snapshot());
        for store in stores {
            store
                .ingest(s.clone(), at)
                .await
                .expect("the store ingests");
        }
    }
}
