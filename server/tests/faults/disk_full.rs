//! A full disk: the database on a 2 MB tmpfs, filled by snapshots that do
//! not compress. Every answer is 201 or a 503 that names the full disk,
//! health says 503 while it lasts, and once there is room again ingest and
//! health recover by themselves; after a restart every acknowledged
//! snapshot is there and no refused one is.

use crate::support::{bulky_snapshot, can_mount, check_stored, count_stored, Server, Tmpfs};

const HOST: &str = "full-disk-host";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_recovers_by_itself() {
    if !can_mount() {
        return;
    }
    let tmpfs = Tmpfs::mount("size=2m");
    let server = Server::start(tmpfs.path()).await;
    assert_eq!(server.health().await, 200);

    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    let mut refused_in_a_row = 0;
    for _ in 0..200 {
        let snapshot = bulky_snapshot(HOST, 2000);
        let answer = server.post(&snapshot).await;
        if answer.created_or_unavailable(&["full"]) {
            acked.push(snapshot);
            refused_in_a_row = 0;
        } else {
            refused.push(snapshot);
            refused_in_a_row += 1;
            if refused_in_a_row == 3 {
                break;
            }
        }
    }
    assert_eq!(refused_in_a_row, 3, "2 MB never filled up");
    assert!(!acked.is_empty(), "nothing fit before the disk was full");
    eprintln!(
        "disk full after {} snapshots, {} refused",
        acked.len(),
        refused.len()
    );

    // Health says so while it lasts; reads still answer.
    assert_eq!(server.health().await, 503);
    let hosts = server
        .client
        .get(format!("{}/api/hosts/", server.address))
        .send()
        .await
        .unwrap();
    assert!(
        [200, 503].contains(&hosts.status().as_u16()),
        "{}",
        hosts.status()
    );

    // Room again: the very next snapshot is stored, without a restart.
    tmpfs.remount("size=64m").expect("grow the tmpfs");
    let snapshot = bulky_snapshot(HOST, 2000);
    let answer = server.post(&snapshot).await;
    assert_eq!(answer.status, 201, "after freeing space: {answer:?}");
    acked.push(snapshot);
    assert_eq!(server.health().await, 200);

    server.stop().await;
    let server = Server::start(tmpfs.path()).await;
    check_stored(&server, HOST, &acked, &refused).await;
    assert_eq!(
        count_stored(&tmpfs.path().join("procmon.db")),
        acked.len() as i64
    );
    // And it goes on.
    let answer = server.post(&bulky_snapshot(HOST, 100)).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    server.stop().await;
}
