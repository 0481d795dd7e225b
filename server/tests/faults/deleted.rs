//! The database files deleted while the server runs (a cleaner, a mistaken
//! `rm`): the next snapshot is not lost (201 into a file written anew, or
//! 503), and after a restart every acknowledged snapshot, from before and
//! after the deletion, is there.

use crate::support::{check_stored, database_files, Server};

const HOST: &str = "deleted-host";

/// Posts `snapshot`; true for 201, false for a 503 (anything else fails).
async fn post(server: &Server, snapshot: &procmon_model::Snapshot) -> bool {
    server.post(snapshot).await.created_or_unavailable(&[])
}

async fn deleted_files_lose_nothing(which: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let files = database_files(dir.path());
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let s = procmon_model::fixtures::snapshot(HOST, 50);
        assert!(post(&server, &s).await);
        acked.push(s);
    }

    for &i in which {
        match std::fs::remove_file(&files[i]) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot delete {}: {e}", files[i].display()),
        }
    }

    for _ in 0..5 {
        let s = procmon_model::fixtures::snapshot(HOST, 50);
        if post(&server, &s).await {
            acked.push(s);
        } else {
            refused.push(s);
        }
    }
    assert!(
        refused.len() < 5,
        "the server never stored anything after the deletion"
    );
    assert_eq!(server.health().await, 200);
    assert!(files[0].exists(), "the database file was not written anew");
    // Reads see every acknowledged snapshot before a restart too.
    check_stored(&server, HOST, &acked, &refused).await;

    server.stop().await;
    let server = Server::start(dir.path()).await;
    check_stored(&server, HOST, &acked, &refused).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_database_and_its_wal_and_shm_loses_nothing_acknowledged() {
    deleted_files_lose_nothing(&[0, 1, 2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_only_the_database_file_loses_nothing_acknowledged() {
    deleted_files_lose_nothing(&[0]).await;
}

/// The log alone deleted: what the open connection appends to it after
/// that is in a file no one will find again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_only_the_wal_loses_nothing_acknowledged() {
    deleted_files_lose_nothing(&[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_only_the_shm_loses_nothing_acknowledged() {
    deleted_files_lose_nothing(&[2]).await;
}
