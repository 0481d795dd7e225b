//! Several real servers on one real PostgreSQL database: any server takes
//! any agent's next change batch, one server killed with SIGKILL under
//! load loses nothing it acknowledged, and the database restarted or cut
//! off under a running server gives 503s, never a 201 for what was not
//! committed, and recovers by itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use procmon_model::fixtures::SimHost;
use procmon_model::{IngestResponse, ProcessListing, Snapshot};

use crate::common::postgres::{fresh_database, Cluster};
use crate::process::{make_key, ServerProcess, Storage};
use crate::support::{post, shown_at, Answer};

/// Two servers on one new database (each with its own data directory), a
/// key for `host`, and the directories to keep.
async fn two_servers(host: &str) -> Option<([ServerProcess; 2], String, [tempfile::TempDir; 2])> {
    let url = fresh_database().await?;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let storage = |n: usize| Storage::postgres(dirs[n].path(), &url);
    let a = ServerProcess::start(&storage(0), &[]);
    let b = ServerProcess::start(&storage(1), &[]);
    let key = make_key(&storage(0), host);
    Some(([a, b], key, dirs))
}

/// A host whose snapshots are an hour old and on: taken when collected.
fn sim(host: &str, processes: usize) -> SimHost {
    let mut sim = SimHost::new(host, processes, 11, Utc::now() - chrono::Duration::hours(1));
    sim.churn.turnover = 0.02;
    sim
}

/// The listing `GET /api/processes/?host=` gives now.
async fn newest(client: &reqwest::Client, url: &str, host: &str) -> ProcessListing {
    let response = client
        .get(format!("{url}/api/processes/"))
        .query(&[("host", host)])
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

/// `POST /api/changes/` of the batch from `base` to `next`; its answer.
async fn post_changes(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    base: &Snapshot,
    next: &Snapshot,
) -> (u16, String) {
    let batch = procmon_model::changes::diff(base, next);
    let response = client
        .post(format!("{url}/api/changes/"))
        .bearer_auth(key)
        .json(&batch)
        .send()
        .await
        .expect("request sent");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_alternating_between_two_servers_sends_only_changes() {
    let host = "alternating-host";
    let Some((servers, key, _dirs)) = two_servers(host).await else {
        return;
    };
    let client = reqwest::Client::new();
    let mut sim = sim(host, 120);
    let mut base = sim.next();
    assert_eq!(
        post(&client, &servers[0].url, &key, &base).await.status,
        201
    );
    for i in 0..30 {
        let next = sim.next();
        let server = &servers[(i + 1) % 2];
        let (status, body) = post_changes(&client, &server.url, &key, &base, &next).await;
        assert_eq!(
            status, 201,
            "batch {i} to server {}: a server must apply a batch whose base the other stored: {body}",
            (i + 1) % 2
        );
        let answer: IngestResponse = serde_json::from_str(&body).unwrap();
        assert!(answer.stored, "batch {i} was new");
        base = next;
    }
    for server in &servers {
        let listing = newest(&client, &server.url, host).await;
        assert_eq!(
            listing.snapshot_id, base.id,
            "{} shows the newest",
            server.url
        );
        assert_eq!(listing.processes.len(), base.processes.len());
    }
}

/// What a client of the fleet did: the snapshots each server acknowledged.
struct Sent {
    host: String,
    key: String,
    acked: Vec<Snapshot>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_servers_killed_under_load_loses_nothing_acknowledged() {
    const CLIENTS: usize = 4;
    let Some(url) = fresh_database().await else {
        return;
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let storage = |n: usize| Storage::postgres(dirs[n].path(), &url);
    let mut a = ServerProcess::start(&storage(0), &[]);
    let b = ServerProcess::start(&storage(1), &[]);
    let urls = [a.url.clone(), b.url.clone()];

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let host = format!("killed-server-host-{n}");
            let key = make_key(&storage(0), &host);
            let (urls, stop) = (urls.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut sim = sim(&host, 150);
                let mut on = n % 2;
                let mut acked = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let snapshot = sim.next();
                    // As an agent does: the same snapshot to the other
                    // server at once when this one cannot be reached.
                    loop {
                        match try_post(&client, &urls[on], &key, &snapshot).await {
                            Some(201) => break acked.push(snapshot),
                            Some(status) => panic!("{}: {status}", urls[on]),
                            None => on = 1 - on,
                        }
                    }
                }
                Sent { host, key, acked }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    a.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut sent = Vec::new();
    for client in clients {
        sent.push(client.await.expect("a client"));
    }
    let total: usize = sent.iter().map(|s| s.acked.len()).sum();
    eprintln!("{total} snapshots acknowledged by two servers, one SIGKILLed midway");
    assert!(
        total >= 4 * CLIENTS,
        "too few snapshots were acknowledged to test anything"
    );

    let client = reqwest::Client::new();
    for s in &sent {
        for snapshot in &s.acked {
            assert_eq!(
                shown_at(&client, &b.url, &s.host, snapshot.collected_at).await,
                Some(snapshot.id),
                "{}: snapshot {} was acknowledged but the surviving server does not have it",
                s.host,
                snapshot.id
            );
            // Once: sent again, it is known (not stored a second time).
            let again = client
                .post(format!("{}/api/processes/", b.url))
                .bearer_auth(&s.key)
                .json(snapshot)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 201);
            let again: IngestResponse = again.json().await.unwrap();
            assert!(
                !again.stored,
                "{}: snapshot {} stored twice",
                s.host, snapshot.id
            );
        }
    }
}

/// The status of a snapshot sent to `url`, or `None` when the server
/// could not be reached (refused, or the connection cut).
async fn try_post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    snapshot: &Snapshot,
) -> Option<u16> {
    client
        .post(format!("{url}/api/processes/"))
        .bearer_auth(key)
        .json(snapshot)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Posts snapshots of `host` to `url` until `stop`; what was acknowledged
/// and what was refused with 503 `store_unavailable` (anything else
/// fails), counting refusals in `refusals` as they come.
async fn post_until(
    url: String,
    key: String,
    host: String,
    stop: Arc<AtomicBool>,
    refusals: Arc<AtomicUsize>,
) -> (Vec<Snapshot>, Vec<Snapshot>) {
    let client = crate::support::client();
    let mut sim = sim(&host, 100);
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::SeqCst) {
        let snapshot = sim.next();
        let answer: Answer = post(&client, &url, &key, &snapshot).await;
        if answer.created_or_unavailable(&[]) {
            acked.push(snapshot);
        } else {
            refused.push(snapshot);
            refusals.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (acked, refused)
}

/// Polls `GET /api/health` until it answers `status`, for up to `within`;
/// how long that took.
async fn health_becomes(url: &str, status: u16, within: Duration) -> Duration {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let answered = client
            .get(format!("{url}/api/health"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if answered.as_ref().is_ok_and(|s| *s == status) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "health did not become {status} within {within:?}: {answered:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The database going away under load (stopped, or frozen as behind a
/// partition) and coming back: 201 only for what was committed, 503
/// `store_unavailable` meanwhile, health 503 then 200, and ingest again
/// without a restart. `cut` takes it away, `mend` brings it back.
async fn database_lost_and_back(cut: fn(&mut Cluster), mend: fn(&mut Cluster)) {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::postgres(dir.path(), &cluster.url());
    // The store gives up on a database that does not answer sooner than
    // this: its 503 names the store, not the request's timeout.
    let server = ServerProcess::start(&storage, &["--request-timeout", "30s"]);
    let host = "database-lost-host";
    let key = make_key(&storage, host);

    let (stop, refusals) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let sender = tokio::spawn(post_until(
        server.url.clone(),
        key.clone(),
        host.to_owned(),
        Arc::clone(&stop),
        Arc::clone(&refusals),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    cut(&mut cluster);
    let down = health_becomes(&server.url, 503, Duration::from_secs(30)).await;
    eprintln!("health answered 503 {down:?} after the database went");
    // Away until a snapshot was refused (a write waits for the database
    // a while before it gives up), then a little more.
    let away = Instant::now();
    while refusals.load(Ordering::SeqCst) == 0 {
        assert!(
            away.elapsed() < Duration::from_secs(60),
            "no snapshot was refused within a minute of the database going"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "the first snapshot was refused {:?} after the database went",
        away.elapsed() + down
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    mend(&mut cluster);
    let up = health_becomes(&server.url, 200, Duration::from_secs(60)).await;
    eprintln!("health answered 200 {up:?} after the database came back");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (acked, refused) = sender.await.expect("the sender");
    eprintln!(
        "{} acknowledged, {} refused with 503",
        acked.len(),
        refused.len()
    );
    assert!(
        !refused.is_empty(),
        "nothing was refused while the database was away"
    );

    let client = reqwest::Client::new();
    let last = acked.last().expect("snapshots were acknowledged");
    assert!(
        last.collected_at > refused.last().unwrap().collected_at,
        "nothing was stored after the database came back"
    );
    for s in &acked {
        assert_eq!(
            shown_at(&client, &server.url, host, s.collected_at).await,
            Some(s.id),
            "snapshot {} was acknowledged with 201 but is not stored",
            s.id
        );
    }
    // A refused one may have been committed after all when the database
    // froze with its commit sent (the answer is what was lost): then its
    // retry, with the same id, must be known and not stored twice.
    for s in &refused {
        let again = post(&client, &server.url, &key, s).await;
        assert_eq!(again.status, 201, "{again:?}");
        assert_eq!(
            shown_at(&client, &server.url, host, s.collected_at).await,
            Some(s.id),
            "snapshot {} was sent again but is not stored",
            s.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_ingest_gives_503_then_recovers() {
    database_lost_and_back(Cluster::halt, Cluster::resume).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_under_ingest_gives_503_then_recovers() {
    database_lost_and_back(|c| c.freeze(), |c| c.thaw()).await;
}
