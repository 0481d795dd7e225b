//! The database locked by another program (a backup tool, `sqlite3` left
//! in a transaction): ingest answers a 503 that names the lock within about
//! a second, health is 503, and once the lock is released ingest goes on
//! by itself.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{require, KillOnDrop};
use crate::support::{check_stored, Server};

const HOST: &str = "locked-host";

const HOLD_LOCK: &str = "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute('BEGIN EXCLUSIVE')
print('locked', flush=True)
sys.stdin.readline()
db.execute('COMMIT')
db.close()
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_answers_503_then_recovers() {
    if !require("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut acked = vec![procmon_model::fixtures::snapshot(HOST, 50)];
    assert_eq!(server.post(&acked[0]).await.status, 201);

    let mut holder = KillOnDrop(
        Command::new("python3")
            .args(["-c", HOLD_LOCK])
            .arg(dir.path().join("procmon.db"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3"),
    );
    let mut line = String::new();
    BufReader::new(holder.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    let mut refused = Vec::new();
    for _ in 0..2 {
        let s = procmon_model::fixtures::snapshot(HOST, 50);
        let answer = server.post(&s).await;
        assert!(
            !answer.created_or_unavailable(&["locked"]),
            "201 while another process holds an exclusive lock"
        );
        assert!(
            answer.elapsed < Duration::from_millis(1500),
            "the 503 took {:?}",
            answer.elapsed
        );
        refused.push(s);
    }
    assert_eq!(server.health().await, 503);

    let mut stdin = holder.0.stdin.take().unwrap();
    stdin.write_all(b"\n").unwrap();
    drop(stdin);
    assert!(holder.0.wait().unwrap().success());

    let s = procmon_model::fixtures::snapshot(HOST, 50);
    let answer = server.post(&s).await;
    assert_eq!(
        answer.status, 201,
        "after the lock was released: {answer:?}"
    );
    acked.push(s);
    assert_eq!(server.health().await, 200);

    server.stop().await;
    let server = Server::start(dir.path()).await;
    check_stored(&server, HOST, &acked, &refused).await;
    server.stop().await;
}
