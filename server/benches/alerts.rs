//! What alert rules cost at ingest: the simulated fleet (`SimHost` churn)
//! sent as agents send it (a whole snapshot, then change batches against
//! it) through the real server on SQLite, with no rule and with 1,000
//! rules of a realistic mix, in alternating runs of the same run. Each run
//! is timed from the first batch until every batch is stored and
//! evaluated; the figure is the batches per second with rules against
//! without (target: at most 10% slower), with the process's CPU per batch
//! beside it. Then the time from a process exit on this machine to the
//! webhook arriving, through the embedded agent (see `exit_latency`).
//!
//! Run with `cargo bench -p procmon-server --bench alerts`; `-- exits` runs
//! the second part alone, `-- ingest` the first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use procmon_model::alerts::AlertRuleSpec;
use procmon_model::fixtures::SimHost;
use procmon_server::clock::ManualClock;
use procmon_server::config::Settings;
use procmon_server::startup::Application;
use secrecy::ExposeSecret;
use serde_json::json;

// Shared with the other benches, which use more of it.
#[allow(dead_code)]
#[path = "support/report.rs"]
mod report;

#[path = "support/rules.rs"]
mod rules;

#[path = "support/exit_latency.rs"]
mod exit_latency;

use report::{ms, Report, Target};

const HOSTS: usize = 50;
const PROCESSES: usize = 300;
/// Change batches per host per run.
const ROUNDS: usize = 40;
/// Runs of each kind, alternating; the median is reported.
const RUNS: usize = 3;
const CLIENTS: usize = 5;
const RULES: usize = 1_000;
/// Process exits timed to their webhook.
const EXITS: usize = 30;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

/// One host's deliveries: its first snapshot whole, then its batches.
struct HostBodies {
    host_id: String,
    first: Bytes,
    batches: Vec<Bytes>,
}

fn fleet() -> Vec<HostBodies> {
    (0..HOSTS)
        .map(|h| {
            let host_id = format!("alert-host-{h:02}");
            let mut sim = SimHost::new(&host_id, PROCESSES, 500 + h as u64, start());
            let mut previous = sim.next();
            let first = Bytes::from(serde_json::to_vec(&previous).unwrap());
            let batches = (0..ROUNDS)
                .map(|_| {
                    let next = sim.next();
                    let batch = procmon_model::changes::diff(&previous, &next);
                    previous = next;
                    Bytes::from(serde_json::to_vec(&batch).unwrap())
                })
                .collect();
            HostBodies {
                host_id,
                first,
                batches,
            }
        })
        .collect()
}

/// 1,000 rules as a fleet might have them: most on exact process names
/// (services that must run, programs that must not, how many may), some on
/// command lines and regular expressions, some on CPU and host load; none
/// holding on the simulated fleet except by its churn.
fn rules() -> Vec<AlertRuleSpec> {
    let must_run = ["systemd", "sshd", "nginx", "postgres"];
    let programs = ["chrome", "python3", "bash", "java", "node"];
    (0..RULES)
        .map(|i| {
            let condition = match i % 20 {
                // 40%: a service that must run.
                0..=7 => json!({ "kind": "process_absent",
                    "process": { "name": { "equals": must_run[i % must_run.len()] } } }),
                // 20%: a program that must not.
                8..=11 => json!({ "kind": "process_present",
                    "process": { "name": { "equals": format!("miner-{i}") } } }),
                // 15%: how many of a program may run.
                12..=14 => json!({ "kind": "process_count",
                    "process": { "name": { "equals": programs[i % programs.len()] } },
                    "max": 10_000 }),
                // 10%: a command line flag.
                15 | 16 => json!({ "kind": "process_present",
                    "process": { "cmd": { "contains": format!("--evil-flag-{i}") } } }),
                // 5%: a regular expression.
                17 => json!({ "kind": "process_present",
                    "process": { "name": { "regex": format!("^backdoor-{i}-[0-9]+$") } } }),
                // 5%: a runaway process of a user.
                18 => json!({ "kind": "process_above",
                    "process": { "user": { "equals": "alice" } },
                    "metric": "cpu_percent", "above": 800.0 }),
                // 5%: the host's own load.
                _ => json!({ "kind": "host_above", "metric": "process_count",
                    "above": 100_000.0 }),
            };
            serde_json::from_value(json!({
                "name": format!("rule {i}"),
                "condition": condition,
                "for_seconds": 60,
            }))
            .expect("a valid rule")
        })
        .collect()
}

struct Run {
    batches: usize,
    elapsed: Duration,
    cpu: Duration,
    latency: Vec<Duration>,
    open_alerts: usize,
}

fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

async fn run(fleet: &Arc<Vec<HostBodies>>, with_rules: bool) -> Run {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut settings = Settings::with_data_dir(dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    settings.ingest_burst = 100_000;
    settings.ingest_per_second = 100_000;
    let mut application = Application::build(settings)
        .await
        .expect("the server builds");
    let now = start() + chrono::Duration::seconds(2 * (ROUNDS as i64 + 2));
    application.set_clock(Arc::new(ManualClock::new(now)));
    let state = application.state().clone();
    let mut keys = Vec::new();
    for host in fleet.iter() {
        let key = state
            .agent_keys
            .create(Some(&host.host_id), "bench", now)
            .await
            .expect("a key");
        keys.push(key.key.expose_secret().to_owned());
    }
    if with_rules {
        for (i, spec) in rules().into_iter().enumerate() {
            rules::store(&state, format!("rule-{i:04}"), spec, now).await;
        }
        state.alerts.reload(now).await.expect("the rules load");
        assert_eq!(state.alerts.rules().rules.len(), RULES);
    }
    let base = application.local_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    let keys = Arc::new(keys);
    let post = |client: &reqwest::Client, path: &str, key: &str, body: Bytes| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body)
    };
    let client = reqwest::Client::new();
    for (h, host) in fleet.iter().enumerate() {
        let response = post(&client, "api/processes/", &keys[h], host.first.clone())
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 201);
    }
    while state.alerts.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let cpu = cpu_time();
    let started = Instant::now();
    // Each client sends for its own hosts, each host's batches in order.
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (fleet, keys, base) = (Arc::clone(fleet), Arc::clone(&keys), base.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut latency = Vec::new();
                for round in 0..ROUNDS {
                    for h in (c..fleet.len()).step_by(CLIENTS) {
                        let t = Instant::now();
                        let response = client
                            .post(format!("{base}api/changes/"))
                            .bearer_auth(&keys[h])
                            .header("content-type", "application/json")
                            .body(fleet[h].batches[round].clone())
                            .send()
                            .await
                            .expect("sent");
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        assert_eq!(status, 201, "batch {round} of host {h}: {text}");
                        latency.push(t.elapsed());
                    }
                }
                latency
            })
        })
        .collect();
    let mut latency = Vec::new();
    for w in workers {
        latency.extend(w.await.expect("a client"));
    }
    while state.alerts.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu;
    let open_alerts = state
        .alerts
        .store()
        .open_alerts(None)
        .await
        .expect("the alerts")
        .len();
    let _ = stop.send(());
    server.await.expect("the server task").expect("it stops");
    Run {
        batches: latency.len(),
        elapsed,
        cpu,
        latency,
        open_alerts,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut report = Report::default();
        if !std::env::args().any(|a| a == "exits") {
            ingest_cost(&mut report).await;
        }
        if std::env::args().any(|a| a == "ingest") {
            report.print();
            return;
        }
        println!("procmon alerts bench, part 2: {EXITS} process exits on this machine timed to their webhook.");
        let (exits, starts) = exit_latency::measure(EXITS).await;
        let interval = ms(exit_latency::INTERVAL);
        report.add(
            "2. process exit to webhook, median".into(),
            ms(report::percentile(&exits, 50)),
            "ms",
            Target::None,
            format!("{EXITS} exits, agent interval {interval:.0} ms"),
        );
        report.add(
            "2. process exit to webhook, p99".into(),
            ms(report::percentile(&exits, 99)),
            "ms",
            Target::Under(interval + 1000.0),
            format!("slowest {:.0} ms", ms(*exits.iter().max().unwrap())),
        );
        report.add(
            "2. process start to webhook (resolve), p99".into(),
            ms(report::percentile(&starts, 99)),
            "ms",
            Target::Under(interval + 1000.0),
            format!("median {:.0} ms", ms(report::percentile(&starts, 50))),
        );
        println!();
        report.print();
    });
}

/// Part 1: ingest with 1,000 rules against none.
async fn ingest_cost(report: &mut Report) {
    println!("procmon alerts bench: {HOSTS} hosts x {PROCESSES} processes, {ROUNDS} change batches each per run, {CLIENTS} clients,");
    println!("  {RULES} rules (40% service must run, 20% program must not, 15% count, 10% command line contains,");
    println!("  5% regular expression, 5% process CPU, 5% host); {RUNS} runs of each, alternating; medians.");
    let fleet = Arc::new(fleet());
    let mut none = Vec::new();
    let mut with = Vec::new();
    for i in 0..RUNS {
        for rules in [false, true] {
            let r = run(&fleet, rules).await;
            println!(
                "run {i} {:>10}: {:>6.0} batches/s, {:.3} ms CPU per batch, p99 ingest {:.2} ms, {} alerts open",
                if rules { "1000 rules" } else { "no rules" },
                r.batches as f64 / r.elapsed.as_secs_f64(),
                ms(r.cpu) / r.batches as f64,
                ms(report::percentile(&r.latency, 99)),
                r.open_alerts,
            );
            if rules {
                with.push(r)
            } else {
                none.push(r)
            }
        }
    }
    let rate = |runs: &[Run]| {
        median(
            runs.iter()
                .map(|r| r.batches as f64 / r.elapsed.as_secs_f64())
                .collect(),
        )
    };
    let cpu = |runs: &[Run]| median(runs.iter().map(|r| ms(r.cpu) / r.batches as f64).collect());
    let p99 = |runs: &[Run]| {
        median(
            runs.iter()
                .map(|r| ms(report::percentile(&r.latency, 99)))
                .collect(),
        )
    };
    report.add(
        "1. ingest rate with 1,000 rules / without".into(),
        rate(&with) / rate(&none),
        "x",
        Target::AtLeast(0.9),
        format!("{:.0} vs {:.0} batches/s", rate(&with), rate(&none)),
    );
    report.add(
        "1. CPU per batch with 1,000 rules / without".into(),
        cpu(&with) / cpu(&none),
        "x",
        Target::AtMost(1.1),
        format!(
            "{:.3} vs {:.3} ms (server and clients, one process)",
            cpu(&with),
            cpu(&none)
        ),
    );
    report.add(
        "1. p99 ingest answer with 1,000 rules".into(),
        p99(&with),
        "ms",
        Target::None,
        format!("{:.2} ms without", p99(&none)),
    );
}
