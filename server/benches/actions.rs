//! How soon an operator's action reaches the host's agent and is reported:
//! the bar is "within the agent interval + 1 s", p99. A real server on
//! SQLite and a real HTTP agent for this machine in this process (see
//! `action_path`); the operator asks over HTTP as the page does and polls
//! `GET /api/actions/{id}` every 20 ms until it has a result code.
//!
//! 1. Suspend and resume, alternately, on one long-lived `sleep 600`: every
//!    sample names the same process, so none waits for a new process to
//!    show up in a snapshot and the machine's process table does not churn;
//!    the agent's path (ingest answer, fetch, checks, signal, report) is the
//!    same for every kind.
//! 2. Terminate, a new `sleep 600` each: the action the issue names, fewer
//!    samples, since each waits for its process to appear in a snapshot.
//!
//! Before each ask a pause of a different length, so the ask falls anywhere
//! in the agent's interval rather than always just after its last send.
//! Beside them, the ingest round trip on the same server (one whole
//! snapshot of this machine, and `GET /api/health`), to read the figures
//! against this machine's speed.
//!
//! Run with `cargo bench -p procmon-server --bench actions`;
//! `ACTIONS_BENCH_SAMPLES` (default 40) and
//! `ACTIONS_BENCH_TERMINATE_SAMPLES` (default 10) set the counts.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chrono::Utc;
use procmon_model::actions::{ActionEntry, ActionKind, ActionResultCode};
use secrecy::ExposeSecret;

// Shared with the other benches, which use more of it.
#[allow(dead_code)]
#[path = "support/report.rs"]
mod report;

#[path = "support/action_path.rs"]
mod action_path;

use action_path::{ActionPath, INTERVAL};
use report::{ms, percentile, Report, Target};

/// How often the operator's client reads the entry.
const POLL: Duration = Duration::from_millis(20);
/// Round trips timed for each baseline.
const BASELINE_SAMPLES: usize = 20;

fn count(variable: &str, default: usize) -> usize {
    match std::env::var(variable) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{variable}={text:?} is not a count of samples")),
        Err(_) => default,
    }
}

/// A `sleep 600` this bench started, killed and reaped when dropped
/// (SIGKILL ends it suspended too).
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Self {
        Self(
            Command::new("sleep")
                .arg("600")
                .spawn()
                .expect("sleep starts"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits for it to end; the signal that ended it.
    async fn ended_by(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.0.try_wait().expect("the child's status") {
                return status.signal();
            }
            assert!(Instant::now() < deadline, "pid {} did not end", self.pid());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the kernel shows it stopped (`T`) or not.
    async fn wait_stopped(&self, stopped: bool) {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
                .expect("the sleeper's stat");
            let state = stat
                .rsplit_once(") ")
                .map(|(_, rest)| rest.starts_with('T'));
            if state == Some(stopped) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pid {} reported done but is not {}",
                self.pid(),
                if stopped { "stopped" } else { "running" }
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One action's times.
#[derive(Default)]
struct Samples {
    /// Just before the POST until the GET that shows a result code.
    asked_to_reported: Vec<Duration>,
    /// `finished_at - requested_at`, the server's clock.
    requested_to_finished: Vec<Duration>,
    /// `delivered_at - requested_at`: the agent fetched it.
    requested_to_delivered: Vec<Duration>,
}

impl Samples {
    fn push(&mut self, asked_to_reported: Duration, entry: &ActionEntry) {
        let since_requested = |at: Option<chrono::DateTime<Utc>>| {
            (at.expect("the entry is finished") - entry.requested_at)
                .to_std()
                .unwrap_or_default()
        };
        self.asked_to_reported.push(asked_to_reported);
        self.requested_to_finished
            .push(since_requested(entry.finished_at));
        self.requested_to_delivered
            .push(since_requested(entry.delivered_at));
    }
}

/// A different pause before each ask (379 and the interval share no
/// factor, so the pauses spread over the whole interval).
async fn pause(i: usize) {
    let interval = INTERVAL.as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(50 + (i as u64 * 379) % interval)).await;
}

/// Asks for `kind` on `sleeper` and polls until it is reported done; the
/// time from just before the ask, and the entry.
async fn time_action(
    path: &ActionPath,
    sleeper: &Sleeper,
    started_at: chrono::DateTime<Utc>,
    kind: ActionKind,
) -> (Duration, ActionEntry) {
    let asked = Instant::now();
    let entry = path.ask(sleeper.pid(), started_at, kind).await;
    let deadline = asked + Duration::from_secs(30);
    loop {
        let now = path.entry(&entry).await;
        if now.code.is_some() {
            let took = asked.elapsed();
            assert_eq!(now.code, Some(ActionResultCode::Done), "{now:?}");
            return (took, now);
        }
        assert!(
            Instant::now() < deadline,
            "{kind} on pid {} not reported within 30 s: {now:?}",
            sleeper.pid()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Part 1: suspend and resume, alternately, on one process.
async fn suspend_resume(path: &ActionPath, samples: usize) -> Samples {
    let sleeper = Sleeper::start();
    let started_at = path.seen(sleeper.pid()).await;
    // A pair first, not counted: the first action's statements and
    // connections are made then.
    for kind in [ActionKind::Suspend, ActionKind::Resume] {
        time_action(path, &sleeper, started_at, kind).await;
    }
    let mut times = Samples::default();
    for i in 0..samples {
        pause(i).await;
        let kind = if i % 2 == 0 {
            ActionKind::Suspend
        } else {
            ActionKind::Resume
        };
        let (took, entry) = time_action(path, &sleeper, started_at, kind).await;
        sleeper.wait_stopped(kind == ActionKind::Suspend).await;
        times.push(took, &entry);
    }
    times
}

/// Part 2: terminate, a new process each.
async fn terminate(path: &ActionPath, samples: usize) -> Samples {
    let mut times = Samples::default();
    for i in 0..samples {
        let mut sleeper = Sleeper::start();
        let started_at = path.seen(sleeper.pid()).await;
        pause(i).await;
        let (took, entry) = time_action(path, &sleeper, started_at, ActionKind::Terminate).await;
        assert_eq!(sleeper.ended_by().await, Some(libc::SIGTERM));
        times.push(took, &entry);
    }
    times
}

/// The baselines: median round trip of one whole snapshot of this machine
/// (for a host of its own) and of `GET /api/health`, on the same server.
async fn baselines(path: &ActionPath) -> (Duration, Duration) {
    let key = path
        .state
        .agent_keys
        .create(Some("procmon-bench-baseline"), "bench baseline", Utc::now())
        .await
        .expect("a key");
    let client = reqwest::Client::new();
    let mut snapshot = path.snapshot.clone();
    snapshot.host.id = "procmon-bench-baseline".to_owned();
    let mut ingest = Vec::new();
    // One more than timed: the first opens the connection.
    for i in 0..=BASELINE_SAMPLES {
        snapshot.id = uuid::Uuid::new_v4();
        snapshot.collected_at = Utc::now();
        let body = serde_json::to_vec(&snapshot).expect("the snapshot as JSON");
        let sent = Instant::now();
        let response = client
            .post(format!("{}/api/processes/", path.url))
            .bearer_auth(key.key.expose_secret())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the snapshot is sent");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 201, "the baseline snapshot: {text}");
        if i > 0 {
            ingest.push(sent.elapsed());
        }
    }
    let mut health = Vec::new();
    for i in 0..=BASELINE_SAMPLES {
        let sent = Instant::now();
        let response = client
            .get(format!("{}/api/health", path.url))
            .send()
            .await
            .expect("the health check is sent");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("the health answer");
        if i > 0 {
            health.push(sent.elapsed());
        }
    }
    (percentile(&ingest, 50), percentile(&health, 50))
}

/// The median, p99 and slowest of `times`, the p99 held to `target`.
fn rows(report: &mut Report, what: &str, times: &[Duration], target: Target, baseline: &str) {
    report.add(
        format!("{what}, median"),
        ms(percentile(times, 50)),
        "ms",
        Target::None,
        format!("{} actions; {baseline}", times.len()),
    );
    report.add(
        format!("{what}, p99"),
        ms(percentile(times, 99)),
        "ms",
        target,
        // Of 100 samples or fewer, the p99 is the slowest.
        format!("median {:.0} ms", ms(percentile(times, 50))),
    );
    report.add(
        format!("{what}, max"),
        ms(report::max(times)),
        "ms",
        Target::None,
        String::new(),
    );
}

fn main() {
    let samples = count("ACTIONS_BENCH_SAMPLES", 40);
    let terminations = count("ACTIONS_BENCH_TERMINATE_SAMPLES", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let path = ActionPath::start().await;
        let interval = ms(INTERVAL);
        let bar = Target::Under(interval + 1000.0);
        println!(
            "procmon actions bench: a real server on SQLite and a real HTTP agent for this machine \
             every {interval:.0} ms;"
        );
        println!(
            "  {samples} suspend/resume alternately on one process, then {terminations} terminate \
             on a new process each;"
        );
        println!(
            "  a pause of 50 to {:.0} ms before each ask; the entry polled every {} ms.",
            interval + 49.0,
            POLL.as_millis()
        );
        let (ingest, health) = baselines(&path).await;
        let speed = format!(
            "ingest round trip {:.1} ms, health {:.1} ms",
            ms(ingest),
            ms(health)
        );
        let mut report = Report::default();
        report.add(
            "0. ingest round trip (one whole snapshot), median".into(),
            ms(ingest),
            "ms",
            Target::None,
            format!(
                "{BASELINE_SAMPLES} snapshots of {} processes",
                path.snapshot.processes.len()
            ),
        );
        report.add(
            "0. GET /api/health round trip, median".into(),
            ms(health),
            "ms",
            Target::None,
            format!("{BASELINE_SAMPLES} requests"),
        );

        let started = Instant::now();
        let times = suspend_resume(&path, samples).await;
        println!(
            "part 1: {samples} actions in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        rows(
            &mut report,
            "1. suspend/resume: asked to reported (operator)",
            &times.asked_to_reported,
            bar,
            &speed,
        );
        rows(
            &mut report,
            "1. suspend/resume: requested to finished (server)",
            &times.requested_to_finished,
            bar,
            "finished_at - requested_at",
        );
        rows(
            &mut report,
            "1. suspend/resume: requested to reached the agent",
            &times.requested_to_delivered,
            Target::None,
            "delivered_at - requested_at",
        );

        let started = Instant::now();
        let times = terminate(&path, terminations).await;
        println!(
            "part 2: {terminations} actions in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        rows(
            &mut report,
            "2. terminate: asked to reported (operator)",
            &times.asked_to_reported,
            bar,
            &speed,
        );
        rows(
            &mut report,
            "2. terminate: requested to finished (server)",
            &times.requested_to_finished,
            bar,
            "finished_at - requested_at",
        );
        rows(
            &mut report,
            "2. terminate: requested to reached the agent",
            &times.requested_to_delivered,
            Target::None,
            "delivered_at - requested_at",
        );
        path.stop().await;
        println!();
        report.print();
    });
}
