//! The spool against a real server (started in this process, as the
//! server's own tests start it): what the agent could not send while the
//! server was down arrives afterwards, each snapshot once and in order,
//! and so does what a killed agent had spooled.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use procmon_model::{Series, SeriesPoint};
use secrecy::ExposeSecret;

mod support;

use support::{serve, Server};

impl Server {
    async fn get(&self, path: &str) -> serde_json::Value {
        reqwest::get(format!("{}{path}", self.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The one host that sent, once it has.
    async fn host(&self) -> Option<String> {
        let hosts = self.get("/api/hosts/").await;
        hosts[0]["host"]["id"].as_str().map(str::to_owned)
    }

    /// Waits until a host has sent, and names it.
    async fn wait_for_host(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(host) = self.host().await {
                return host;
            }
            assert!(Instant::now() < deadline, "nothing arrived");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// When the host's newest stored snapshot was taken.
    async fn newest(&self, host: &str) -> Option<DateTime<Utc>> {
        let listing = self.get(&format!("/api/processes/?host={host}")).await;
        serde_json::from_value(listing["collected_at"].clone()).ok()
    }

    /// Waits until a snapshot taken after `after` is stored: everything
    /// spooled before it has gone (the spool is sent oldest first).
    async fn wait_for_one_after(&self, host: &str, after: DateTime<Utc>, within: Duration) {
        let deadline = Instant::now() + within;
        while self.newest(host).await.is_none_or(|t| t <= after) {
            assert!(
                Instant::now() < deadline,
                "nothing after {after} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every stored snapshot of `host` (time, count), oldest first.
    async fn stored(&self, host: &str, from: DateTime<Utc>) -> Vec<SeriesPoint> {
        let answer = self
            .get(&format!(
                "/api/history/host/?host={host}&from={}&points=10000",
                from.format("%Y-%m-%dT%H:%M:%SZ")
            ))
            .await;
        let series: Series =
            serde_json::from_value(answer.clone()).unwrap_or_else(|e| panic!("{e}: {answer}"));
        series.points
    }
}

/// A port nothing listens on now.
/// The agent, in this process, sending to `url` every `interval` and
/// spooling in `spool`; it stops when the sender is sent to.
fn run_agent(
    url: &str,
    key: secrecy::SecretString,
    interval: Duration,
    spool: &Path,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut config = procmon_agent::AgentConfig::new(url.to_owned(), key);
    config.interval = interval;
    config.spool_dir = spool.to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(procmon_agent::run(config, async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Each snapshot stored once, none missing: one sample per point, and no
/// gap longer than `interval` allows between one and the next.
fn assert_every_snapshot_once(points: &[SeriesPoint], interval: Duration) {
    assert!(points.len() > 3, "{points:?}");
    let most = chrono::Duration::from_std(interval).unwrap() * 19 / 10;
    for pair in points.windows(2) {
        assert_eq!(pair[1].samples, 1, "two snapshots at one time: {pair:?}");
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap > chrono::Duration::zero() && gap <= most,
            "a gap of {gap} between {} and {}",
            pair[0].at,
            pair[1].at
        );
    }
}

/// The agent runs at 1 s; the server is down for a minute of it, long
/// enough for the backoff to reach its 60 s ceiling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_for_a_while_gets_every_snapshot_after_once_and_in_order() {
    const INTERVAL: Duration = Duration::from_secs(1);
    const DOWN: Duration = Duration::from_secs(60);
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let server = serve(data.path(), 0).await;
    let port = server.port;
    let key = server
        .state
        .agent_keys
        .create(None, "test", Utc::now())
        .await
        .unwrap()
        .key;
    let started = Utc::now();
    let (stop_agent, agent) = run_agent(&server.url(), key, INTERVAL, spool.path());

    tokio::time::sleep(Duration::from_secs(4)).await;
    let host = server.host().await.expect("the agent reported");
    server.stop().await;
    tokio::time::sleep(DOWN).await;
    let back = Utc::now();
    let server = serve(data.path(), port).await;
    // The backoff may wait up to 60 s by now, then the spool goes.
    server
        .wait_for_one_after(
            &host,
            back + chrono::Duration::seconds(1),
            Duration::from_secs(120),
        )
        .await;
    stop_agent.send(()).unwrap();
    agent.await.unwrap().unwrap();
    // The server heard of the backlog from the agent: the first delivery
    // out of the spool said a minute of snapshots waited behind it.
    let metrics = server.state.metrics.encode(0);
    let reported = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert!(
        reported("procmon_agent_spool_waiting_sum") >= (DOWN.as_secs() - 2) as f64,
        "{metrics}"
    );
    assert!(reported("procmon_agent_spool_bytes_sum") > 0.0, "{metrics}");

    let points = server.stored(&host, started).await;
    assert_every_snapshot_once(&points, INTERVAL);
    let during: Vec<_> = points
        .iter()
        .filter(|p| p.at > back - chrono::Duration::from_std(DOWN).unwrap() && p.at < back)
        .collect();
    assert!(
        during.len() as u64 >= DOWN.as_secs() - 2,
        "only {} snapshots from the {DOWN:?} down",
        during.len()
    );
    server.stop().await;
}

/// The agent, with no server to send to, spools; killed with SIGKILL
/// (while it writes its spool or between two writes), it starts again
/// and sends what it had spooled, then goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_while_spooling_sends_the_rest_when_started_again() {
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let port = free_port();
    // A key in the database, then no server.
    let server = serve(data.path(), port).await;
    let key = server
        .state
        .agent_keys
        .create(None, "test", Utc::now())
        .await
        .unwrap()
        .key;
    server.stop().await;

    let agent = |spool: &Path| {
        Command::new(env!("CARGO_BIN_EXE_procmon-agent"))
            .args(["--server-url", &format!("http://127.0.0.1:{port}")])
            .args(["--interval", "250ms"])
            .arg("--spool-dir")
            .arg(spool)
            .env("PROCMON_AGENT_API_KEY", key.expose_secret())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the agent starts")
    };
    let started = Utc::now();
    let mut first = agent(spool.path());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    first.kill().unwrap(); // SIGKILL
    let killed = Utc::now();
    let output = first.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    let spooled = log.lines().filter(|l| l.contains("spooled")).count();
    assert!(spooled >= 5, "{log}");

    // Far enough apart that no point of the history (a second or more
    // wide) holds snapshots of both runs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = serve(data.path(), port).await;
    let mut second = agent(spool.path());
    let host = server.wait_for_host(Duration::from_secs(60)).await;
    server
        .wait_for_one_after(&host, Utc::now(), Duration::from_secs(60))
        .await;
    second.kill().unwrap();
    let _ = second.wait();

    // Points are at least a second wide: four snapshots each here.
    let points = server.stored(&host, started).await;
    let before_kill: u64 = points
        .iter()
        .filter(|p| p.at <= killed)
        .map(|p| p.samples)
        .sum();
    let spooled = spooled as u64;
    // The record being written when it was killed may be cut short and
    // dropped, and one written may not have been logged yet; every other
    // one arrives, once.
    assert!(
        (spooled - 1..=spooled + 1).contains(&before_kill),
        "{before_kill} stored of {spooled} spooled before the kill"
    );
    assert!(
        points.iter().all(|p| p.samples <= 5),
        "more snapshots than were taken: {points:?}"
    );
    server.stop().await;
}

/// A key revoked while the agent runs: the server refuses it (401), and the
/// agent keeps what it collects in the spool rather than dropping it. Given
/// a new key, it sends all of it: no gap where the key was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_holds_the_snapshots_until_a_new_key_sends_them() {
    // Points of the history are a second wide: at 2 s, a collection slowed
    // by a loaded machine cannot put two snapshots in one of them.
    const INTERVAL: Duration = Duration::from_secs(2);
    const REFUSED: Duration = Duration::from_secs(12);
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let server = serve(data.path(), 0).await;
    let keys = server.state.agent_keys.clone();
    let old = keys.create(None, "test", Utc::now()).await.unwrap();
    let agent = |key| run_agent(&server.url(), key, INTERVAL, spool.path());
    let started = Utc::now();
    let (stop, task) = agent(old.key);
    let host = server.wait_for_host(Duration::from_secs(30)).await;
    assert!(keys
        .store()
        .revoke_key(&old.record.id, Utc::now())
        .await
        .unwrap());
    let revoked = Utc::now();
    tokio::time::sleep(REFUSED).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    // Over a second apart, so that no point holds snapshots of both runs;
    // under one interval more, so that the gap check still holds.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        server.newest(&host).await.unwrap() < revoked + chrono::Duration::seconds(2),
        "nothing is stored with the revoked key"
    );

    // The operator makes a new key for the host; the agent restarts with it.
    let new = keys.create(Some(&host), "test", Utc::now()).await.unwrap();
    let back = Utc::now();
    let (stop, task) = agent(new.key);
    server
        .wait_for_one_after(
            &host,
            back + chrono::Duration::seconds(1),
            Duration::from_secs(60),
        )
        .await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    let points = server.stored(&host, started).await;
    assert_every_snapshot_once(&points, INTERVAL);
    let refused: u64 = points
        .iter()
        .filter(|p| p.at > revoked + chrono::Duration::seconds(1) && p.at < back)
        .map(|p| p.samples)
        .sum();
    assert!(
        refused >= 5,
        "only {refused} snapshots from the {REFUSED:?} the key was refused"
    );
    server.stop().await;
}
