//! The real `procmon-server` binary killed with SIGKILL in the middle of
//! ingest from several clients: started again on the same data directory
//! it opens cleanly, every snapshot it acknowledged with 201 is there, and
//! it ingests again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::common::KillOnDrop;
use crate::support::{post, shown_at};

const BINARY: &str = env!("CARGO_BIN_EXE_procmon-server");
const CLIENTS: usize = 4;

/// Starts the binary on `dir`; the process and its URL (no trailing `/`).
fn start(dir: &Path) -> (KillOnDrop, String) {
    let mut server = KillOnDrop(
        Command::new(BINARY)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--no-agent",
                // About the store, not signing in: reads need no session.
                "--no-login",
                "--ingest-burst",
                "100000",
            ])
            .arg("--data-dir")
            .arg(dir)
            .stderr(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start procmon-server"),
    );
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("procmon is running at ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .trim_end_matches('/')
        .to_owned();
    // Keep reading, so that the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (server, url)
}

/// A key for `host`, made by `procmon-server keys create` on the server's
/// database (the store lets a second process in while the server runs).
fn make_key(dir: &std::path::Path, host: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_procmon-server"))
        .args(["keys", "create", "--host", host, "--data-dir"])
        .arg(dir)
        .output()
        .expect("procmon-server keys create");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_acknowledged_before_sigkill_is_there_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = start(dir.path());
    let keys: Vec<String> = (0..CLIENTS)
        .map(|n| make_key(dir.path(), &format!("sigkill-host-{n}")))
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
    server.0.kill().expect("SIGKILL the server");
    server.0.wait().unwrap();
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

    let (_server, url) = start(dir.path());
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
    let (mut server, url) = start(dir.path());
    let host = "wal-deleted-host";
    let key = make_key(dir.path(), host);
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
    server.0.kill().expect("SIGKILL the server");
    server.0.wait().unwrap();

    let (_server, url) = start(dir.path());
    for s in &acked {
        assert_eq!(
            shown_at(&client, &url, host, s.collected_at).await,
            Some(s.id),
            "snapshot {} was acknowledged with 201 but is lost",
            s.id
        );
    }
}
