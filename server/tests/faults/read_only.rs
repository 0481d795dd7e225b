//! The data directory read-only.
//!
//! `mount -o remount,ro` is refused by the kernel while the server runs:
//! SQLite keeps the database open for writing, and Linux does not make a
//! filesystem read-only under a file open for writing (EBUSY). The test
//! below checks that refusal changes nothing. What can happen to a running
//! server is the directory turning read-only under it with its files gone
//! (here: the tmpfs it wrote to lazily unmounted, uncovering a read-only
//! one): every write is then a 503 that says read-only, health is 503, and
//! once the directory is writable again the server writes the database
//! anew from its open connection, without a restart, losing nothing.

use crate::support::{can_mount, check_stored, mount, umount, Server, Tmpfs};

const HOST: &str = "read-only-host";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_dir_answers_503_and_recovers_by_itself() {
    if !can_mount() {
        return;
    }
    // A read-only, empty tmpfs, and the one the server writes on top of it.
    let lower = Tmpfs::mount("size=16m");
    lower.remount("ro").expect("make the lower tmpfs read-only");
    mount(&["-t", "tmpfs", "-o", "size=16m", "tmpfs"], lower.path()).expect("stack a tmpfs");
    let dir = lower.path();

    let server = Server::start(dir).await;
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let s = procmon_model::fixtures::snapshot(HOST, 50);
        assert_eq!(server.post(&s).await.status, 201);
        acked.push(s);
    }

    assert!(umount(dir), "cannot unmount the upper tmpfs");
    for _ in 0..3 {
        let s = procmon_model::fixtures::snapshot(HOST, 50);
        let answer = server.post(&s).await;
        assert!(
            !answer.created_or_unavailable(&["read-only"]),
            "201 while the directory is read-only: {answer:?}"
        );
        refused.push(s);
    }
    assert_eq!(server.health().await, 503);

    lower.remount("rw").expect("make the lower tmpfs writable");
    let s = procmon_model::fixtures::snapshot(HOST, 50);
    let answer = server.post(&s).await;
    assert_eq!(answer.status, 201, "once writable again: {answer:?}");
    acked.push(s);
    assert_eq!(server.health().await, 200);

    server.stop().await;
    let server = Server::start(dir).await;
    check_stored(&server, HOST, &acked, &refused).await;
    server.stop().await;
}

/// Asking for a read-only remount under the running server is refused by
/// the kernel (the database is open for writing), and leaves it working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_remount_under_the_server_is_refused_and_changes_nothing() {
    if !can_mount() {
        return;
    }
    let tmpfs = Tmpfs::mount("size=16m");
    let server = Server::start(tmpfs.path()).await;
    let first = procmon_model::fixtures::snapshot(HOST, 50);
    assert_eq!(server.post(&first).await.status, 201);
    match tmpfs.remount("ro") {
        Err(why) => assert!(why.contains("busy"), "{why}"),
        Ok(()) => {
            // A kernel that allows it: then the server must say so.
            let answer = server
                .post(&procmon_model::fixtures::snapshot(HOST, 50))
                .await;
            assert!(!answer.created_or_unavailable(&["read-only"]));
            assert_eq!(server.health().await, 503);
            tmpfs.remount("rw").unwrap();
        }
    }
    let second = procmon_model::fixtures::snapshot(HOST, 50);
    assert_eq!(server.post(&second).await.status, 201);
    assert_eq!(server.health().await, 200);
    server.stop().await;
}
