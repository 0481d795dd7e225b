//! The real `procmon-server` binary killed with SIGKILL in the middle of
//! ingest from several clients: started again on the same data directory
//! it opens cleanly, every snapshot it acknowledged with 201 is there, and
//! it ingests again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::process::{make_key, ServerProcess, Storage};
use crate::support::{post, shown_at};

const CLIENTS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_acknowledged_before_sigkill_is_there_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::sqlite(dir.path());
    let mut server = ServerProcess::start(&storage, &[]);
    let url = server.url.clone();
    let keys: Vec<String> = (0..CLIENTS)
        .map(|n| make_key(&storage, &format!("sigkill-host-{n}")))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (url, key, stop) = (url.clone(), keys[n].clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let host = format!("sigkill-host-{n}");
                let mut acked: Vec<(Uuid, DateTime<Utc>)> = Vec::new();
                let mut tried = 0;
                while !stop.load(Ordering::SeqCst) {
                    let s = procmon_model::fixtures::snapshot(&host, 200);
                    tried += 1;
                    let sent = client
                        .post(format!("{url}/api/processes/"))
                        .bearer_auth(&key)
                        .json(&s)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => acked.push((s.id, s.collected_at)),
                        Ok(r) => panic!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                        // Killed: the connection is refused or cut.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                (host, acked, tried)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for client in clients {
        results.push(client.await.expect("client"));
    }
    let total: usize = results.iter().map(|(_, a, _)| a.len()).sum();
    eprintln!(
        "{total} snapshots acknowledged before SIGKILL ({} sent)",
        results.iter().map(|(_, _, t)| t).sum::<usize>()
    );
    assert!(
        total >= CLIENTS,
        "too few snapshots were acknowledged to test anything"
    );

    let server = ServerProcess::start(&storage, &[]);
    let url = server.url.clone();
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{url}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for (host, acked, _) in &results {
        for (id, at) in acked {
            assert_eq!(
                shown_at(&client, &url, host, *at).await,
                Some(*id),
                "{host}: snapshot {id} was acknowledged with 201 before SIGKILL but is not stored"
            );
        }
    }
    let again = post(
        &client,
        &url,
        &keys[0],
        &procmon_model::fixtures::snapshot("sigkill-host-0", 200),
    )
    .await;
    assert_eq!(again.status, 201, "{again:?}");
}

/// The log deleted while the server runs, then SIGKILL: what it held, and
/// what was committed after, must be in the database file by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_wal_then_sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::sqlite(dir.path());
    let mut server = ServerProcess::start(&storage, &[]);
    let url = server.url.clone();
    let host = "wal-deleted-host";
    let key = make_key(&storage, host);
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    for n in 0..6 {
        if n == 3 {
            std::fs::remove_file(dir.path().join("procmon.db-wal")).expect("delete the -wal");
        }
        let s = procmon_model::fixtures::snapshot(host, 50);
        let answer = post(&client, &url, &key, &s).await;
        if answer.created_or_unavailable(&[]) {
            acked.push(s);
        }
    }
    assert!(
        acked.len() > 3,
        "nothing was stored after the -wal was deleted"
    );
    server.kill();

    let server = ServerProcess::start(&storage, &[]);
    let url = server.url.clone();
    for s in &acked {
        assert_eq!(
            shown_at(&client, &url, host, s.collected_at).await,
            Some(s.id),
            "snapshot {} was acknowledged with 201 but is lost",
            s.id
        );
    }
}
