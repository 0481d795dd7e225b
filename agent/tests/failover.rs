//! An agent given two real servers (started in this process, each with its
//! own database, so that which one stored a snapshot tells where it went):
//! with the first stopped, snapshots go to the second, none lost and none
//! stored twice; with the first started again, the agent is back on it
//! after the return interval. Enrollment goes to the first server that
//! answers.

use std::time::{Duration, Instant};

use chrono::Utc;
use procmon_agent::enroll::Credentials;
use procmon_agent::{AgentKey, Collector, HttpOutbox, Link, ServerTrust};
use procmon_model::Snapshot;

mod support;

use support::{serve, Server};

impl Server {
    /// Whether this server stored `snapshot` (by its id).
    async fn has(&self, snapshot: &Snapshot) -> bool {
        let stored = self
            .state
            .store
            .snapshot(&snapshot.host.id, Some(snapshot.collected_at))
            .await
            .unwrap();
        stored.is_some_and(|stored| stored.id == snapshot.id)
    }
}

/// Takes a snapshot and delivers it through `link` and `outbox`; the
/// snapshot as made.
async fn send_one(collector: &mut Collector, link: &mut Link, outbox: &mut HttpOutbox) -> Snapshot {
    // Apart enough that each snapshot has its own time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snapshot = collector.snapshot(Duration::from_millis(300));
    let sent = link
        .send(outbox, snapshot.clone())
        .await
        .unwrap_or_else(|e| panic!("not delivered: {e}"));
    assert_eq!(sent.answer.snapshot_id, snapshot.id);
    snapshot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_first_server_sends_to_the_second_then_the_agent_comes_back() {
    const RETURN_AFTER: Duration = Duration::from_secs(3);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = serve(dir_a.path(), 0).await;
    let b = serve(dir_b.path(), 0).await;
    let (url_a, url_b, port_a) = (a.url(), b.url(), a.port);
    // One key valid on both, as it is on servers sharing a database.
    let made = a
        .state
        .agent_keys
        .create(None, "test", Utc::now())
        .await
        .unwrap();
    let (record, hash) = a
        .state
        .agent_keys
        .store()
        .key(&made.record.id)
        .await
        .unwrap()
        .unwrap();
    b.state
        .agent_keys
        .store()
        .create_key(&record, hash)
        .await
        .unwrap();

    let credentials = Credentials::new(
        &[url_a.clone(), url_b.clone()],
        AgentKey::Given(made.key),
        ServerTrust::default(),
    )
    .unwrap();
    let mut outbox = HttpOutbox::new(credentials, RETURN_AFTER);
    let mut link = Link::new(Duration::from_secs(600));
    let mut collector = Collector::new();

    let mut on_a = Vec::new();
    for _ in 0..3 {
        on_a.push(send_one(&mut collector, &mut link, &mut outbox).await);
    }
    assert_eq!(outbox.current_server(), url_a);

    a.stop().await;
    let mut on_b = Vec::new();
    for _ in 0..3 {
        on_b.push(send_one(&mut collector, &mut link, &mut outbox).await);
        assert_eq!(outbox.current_server(), url_b);
    }

    let a = serve(dir_a.path(), port_a).await;
    let back_at = Instant::now();
    let mut before_return = Vec::new();
    while outbox.current_server() != url_a {
        assert!(
            back_at.elapsed() < RETURN_AFTER * 4,
            "not back on the first server after {:?}",
            back_at.elapsed()
        );
        before_return.push(send_one(&mut collector, &mut link, &mut outbox).await);
    }
    // The snapshot that found it up went there.
    let returned = before_return.pop().expect("a snapshot went back to A");
    on_b.extend(before_return);
    on_a.push(returned);
    for _ in 0..2 {
        on_a.push(send_one(&mut collector, &mut link, &mut outbox).await);
        assert_eq!(outbox.current_server(), url_a);
    }

    // Every snapshot made is stored, on exactly the server it went to.
    for snapshot in &on_a {
        assert!(a.has(snapshot).await, "{} missing on A", snapshot.id);
        assert!(!b.has(snapshot).await, "{} also on B", snapshot.id);
    }
    for snapshot in &on_b {
        assert!(b.has(snapshot).await, "{} missing on B", snapshot.id);
        assert!(!a.has(snapshot).await, "{} also on A", snapshot.id);
    }
    a.stop().await;
    b.stop().await;
}

/// The first server is down at enrollment: the agent enrolls with the
/// second, keeps the key it gave, and sends there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_goes_to_the_first_server_that_answers() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let keys = tempfile::tempdir().unwrap();
    let a = serve(dir_a.path(), 0).await;
    let url_a = a.url();
    a.stop().await;
    let b = serve(dir_b.path(), 0).await;
    let secret = b
        .state
        .agent_keys
        .rotate_enroll_secret(Utc::now())
        .await
        .unwrap();
    let key_file = keys.path().join("procmon-agent.key");
    let credentials = Credentials::new(
        &[url_a, b.url()],
        AgentKey::Enroll {
            secret,
            key_file: key_file.clone(),
        },
        ServerTrust::default(),
    )
    .unwrap();
    let mut outbox = HttpOutbox::new(credentials, Duration::from_secs(60));
    let mut link = Link::new(Duration::from_secs(600));
    let mut collector = Collector::new();
    let snapshot = send_one(&mut collector, &mut link, &mut outbox).await;
    assert!(key_file.is_file(), "the key was kept");
    assert_eq!(outbox.current_server(), b.url());
    assert!(b.has(&snapshot).await);
    b.stop().await;
}

/// Both servers down: the agent spools; when the second comes back, it gets
/// everything taken meanwhile, each snapshot once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_server_down_the_spool_keeps_all_for_the_one_that_comes_back() {
    const INTERVAL: Duration = Duration::from_secs(1);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let spool = tempfile::tempdir().unwrap();
    let a = serve(dir_a.path(), 0).await;
    let b = serve(dir_b.path(), 0).await;
    let (url_a, url_b, port_b) = (a.url(), b.url(), b.port);
    let made = b
        .state
        .agent_keys
        .create(None, "test", Utc::now())
        .await
        .unwrap();
    a.stop().await;
    b.stop().await;

    let mut config = procmon_agent::AgentConfig::new(url_a, made.key);
    config.server_urls.push(url_b);
    config.interval = INTERVAL;
    config.spool_dir = spool.path().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Utc::now();
    let agent = tokio::spawn(procmon_agent::run(config, async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let back = Utc::now();
    let b = serve(dir_b.path(), port_b).await;
    // The backoff has reached a few seconds by now; then the spool goes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let host = loop {
        let hosts: serde_json::Value = reqwest::get(format!("{}/api/hosts/", b.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(host) = hosts[0]["host"]["id"].as_str() {
            let newest = b.state.store.snapshot(host, None).await.unwrap();
            if newest.is_some_and(|s| s.collected_at > back + chrono::Duration::seconds(1)) {
                break host.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "the spool did not reach B");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    let answer: serde_json::Value = reqwest::get(format!(
        "{}/api/history/host/?host={host}&from={}&points=10000",
        b.url(),
        started.format("%Y-%m-%dT%H:%M:%SZ")
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let points: procmon_model::Series = serde_json::from_value(answer).unwrap();
    let during: Vec<_> = points.points.iter().filter(|p| p.at < back).collect();
    assert!(
        during.len() >= 4,
        "only {} snapshots from the 6 s no server answered: {during:?}",
        during.len()
    );
    for pair in points.points.windows(2) {
        assert_eq!(pair[1].samples, 1, "two snapshots at one time: {pair:?}");
        assert!(
            pair[1].at - pair[0].at <= chrono::Duration::milliseconds(1900),
            "a gap between {} and {}",
            pair[0].at,
            pair[1].at
        );
    }
    b.stop().await;
}
