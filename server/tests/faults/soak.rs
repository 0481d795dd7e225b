//! Ingest from several hosts, every kind of read and retention running
//! together: no error status at all, and no snapshot waits on the writer
//! for more than a second. `PROCMON_SOAK_SECS` sets how long (60 s).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use procmon_model::fixtures::SimHost;
use procmon_server::clock::SystemClock;
use procmon_server::store::Retention;

use crate::support::{rfc3339, Server};

const LIVE_HOSTS: usize = 3;
const LIMIT: Duration = Duration::from_secs(1);

/// What every task writes down.
#[derive(Default)]
struct Log {
    errors: Vec<String>,
    /// Ingest answers: how many, and the slowest.
    ingested: usize,
    /// Live hosts with a first snapshot stored.
    live_hosts_stored: usize,
    slowest_ingest: Duration,
    over_limit: usize,
    reads: usize,
    slowest_read: Duration,
    sweeps: usize,
    maintained: procmon_server::store::Maintenance,
    slowest_sweep: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reads_and_retention_together_never_fail_or_wait_long() {
    let secs = std::env::var("PROCMON_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path()).await);
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();

    // Live hosts, one snapshot every 100 ms each (an agent's fastest), and
    // one host sending a backlog of five hours, one a minute, which
    // retention rolls up (the last two hours) and drops (the rest) while
    // the others write.
    for n in 0..=LIVE_HOSTS {
        let (server, log, stop) = (Arc::clone(&server), Arc::clone(&log), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let backlog = n == LIVE_HOSTS;
            let start = if backlog {
                Utc::now() - chrono::Duration::hours(5)
            } else {
                Utc::now()
            };
            let mut sim = SimHost::new(&format!("soak-host-{n}"), 300, n as u64 + 1, start);
            sim.interval = chrono::Duration::milliseconds(if backlog { 60_000 } else { 100 });
            let mut first = !backlog;
            while !stop.load(Ordering::SeqCst) {
                let mut snapshot = sim.next();
                if !backlog {
                    snapshot.collected_at = Utc::now();
                } else if snapshot.collected_at > Utc::now() {
                    break;
                }
                let answer = server.post(&snapshot).await;
                {
                    let mut log = log.lock().unwrap();
                    log.ingested += 1;
                    log.slowest_ingest = log.slowest_ingest.max(answer.elapsed);
                    log.over_limit += usize::from(answer.elapsed > LIMIT);
                    if answer.status != 201 {
                        log.errors.push(format!("ingest: {answer:?}"));
                    } else if first {
                        first = false;
                        log.live_hosts_stored += 1;
                    }
                }
                if !backlog {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }

    // Readers: every read the page and the API offer, once every live
    // host has a snapshot a second old.
    while log.lock().unwrap().live_hosts_stored < LIVE_HOSTS {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for r in 0..2 {
        let (server, log, stop) = (Arc::clone(&server), Arc::clone(&log), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut i = r;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let host = format!("soak-host-{}", i % LIVE_HOSTS);
                let recent = rfc3339(Utc::now() - chrono::Duration::seconds(1));
                let path_and_query: (&str, Vec<(&str, String)>) = match i % 7 {
                    0 => ("/api/hosts/", vec![]),
                    1 => ("/api/processes/", vec![("host", host.clone())]),
                    2 => (
                        "/api/processes/",
                        vec![("host", host.clone()), ("at", recent)],
                    ),
                    3 => ("/api/history/host/", vec![("host", host.clone())]),
                    4 => ("/api/history/changes/", vec![("host", host.clone())]),
                    5 => ("/api/search/", vec![("q", "python".into())]),
                    _ => {
                        // One process's series: the first process shown.
                        let listing = server
                            .client
                            .get(format!("{}/api/processes/", server.address))
                            .query(&[("host", &host)])
                            .send()
                            .await
                            .unwrap();
                        if listing.status() != 200 {
                            log.lock()
                                .unwrap()
                                .errors
                                .push(format!("listing {host}: {}", listing.status()));
                            continue;
                        }
                        let listing: procmon_model::ProcessListing = listing.json().await.unwrap();
                        let p = &listing.processes[0];
                        (
                            "/api/history/process/",
                            vec![
                                ("host", host.clone()),
                                ("pid", p.pid.to_string()),
                                ("start_time", rfc3339(p.start_time)),
                            ],
                        )
                    }
                };
                let (path, query) = path_and_query;
                let started = Instant::now();
                let response = server
                    .client
                    .get(format!("{}{path}", server.address))
                    .query(&query)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let body = response.bytes().await.unwrap();
                let mut log = log.lock().unwrap();
                log.reads += 1;
                log.slowest_read = log.slowest_read.max(started.elapsed());
                if status != 200 {
                    log.errors.push(format!(
                        "{path} {query:?}: {status} {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
        }));
    }

    // Retention: raw history kept two hours, roll-ups three, swept again
    // and again.
    {
        let (server, log, stop) = (Arc::clone(&server), Arc::clone(&log), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let retention = Retention {
                raw: Duration::from_secs(2 * 3600),
                minute: Duration::from_secs(3 * 3600),
                hour: Duration::from_secs(4 * 3600),
            };
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let swept = procmon_server::retention::sweep(
                    server.state.store.as_ref(),
                    &SystemClock,
                    retention,
                )
                .await;
                {
                    let mut log = log.lock().unwrap();
                    log.sweeps += 1;
                    log.slowest_sweep = log.slowest_sweep.max(started.elapsed());
                    match swept {
                        Ok(done) => {
                            log.maintained.minute_rollups += done.minute_rollups;
                            log.maintained.hour_rollups += done.hour_rollups;
                            log.maintained.blocks_dropped += done.blocks_dropped;
                        }
                        Err(e) => log.errors.push(format!("sweep: {e:#}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("a task panicked");
    }
    let log = log.lock().unwrap();
    eprintln!(
        "{secs} s: {} snapshots (slowest {:?}, {} over {LIMIT:?}), {} reads (slowest {:?}), \
         {} sweeps (slowest {:?}: {:?}), {} errors",
        log.ingested,
        log.slowest_ingest,
        log.over_limit,
        log.reads,
        log.slowest_read,
        log.sweeps,
        log.slowest_sweep,
        log.maintained,
        log.errors.len()
    );
    assert!(
        log.errors.is_empty(),
        "errors: {:#?}",
        &log.errors[..log.errors.len().min(20)]
    );
    assert!(
        log.maintained.minute_rollups > 0 && log.maintained.blocks_dropped > 0,
        "retention had nothing to do: {:?}",
        log.maintained
    );
    assert!(
        log.slowest_ingest <= LIMIT,
        "a snapshot waited {:?} ({} over {LIMIT:?} of {})",
        log.slowest_ingest,
        log.over_limit,
        log.ingested
    );
}
