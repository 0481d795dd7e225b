//! The whole path: the real agent code collects this machine's processes
//! and sends them over HTTP to a real server with a fresh database; the API
//! then shows this test process, with its real parent, and a child it
//! spawned beneath it, and the host online.

use std::process::Command;
use std::time::Duration;

use procmon_agent::{Collector, Sender};
use procmon_model::{HostSummary, ProcessListing, Snapshot};

use crate::common::{spawn_app, spawn_app_with, KillOnDrop};

fn spawn_sleep() -> KillOnDrop {
    KillOnDrop(
        Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn `sleep 30`"),
    )
}

/// This test binary's file name; the process name is this, or (Linux keeps
/// 15 characters of it) its start.
fn own_exe_name() -> String {
    std::env::current_exe()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// One snapshot by the real collector, taken off the async workers.
async fn snapshot_of_this_machine() -> Snapshot {
    tokio::task::spawn_blocking(|| Collector::new().snapshot(Duration::from_secs(2)))
        .await
        .unwrap()
}

fn check_listing(listing: &ProcessListing, child_pid: u32) {
    let own_pid = std::process::id();
    let me = listing
        .processes
        .iter()
        .find(|p| p.pid == own_pid)
        .unwrap_or_else(|| panic!("this test process (pid {own_pid}) is not in the listing"));
    assert!(
        !me.name.is_empty() && own_exe_name().starts_with(&me.name),
        "name {:?}",
        me.name
    );
    #[cfg(unix)]
    assert_eq!(
        me.parent_pid,
        Some(std::os::unix::process::parent_id()),
        "parent of this test process"
    );
    assert!(me.memory_rss_bytes > 0);

    let child = listing
        .processes
        .iter()
        .find(|p| p.pid == child_pid)
        .unwrap_or_else(|| panic!("the spawned child (pid {child_pid}) is not in the listing"));
    assert_eq!(
        child.parent_pid,
        Some(own_pid),
        "the child hangs under this process"
    );
    assert_eq!(child.name, "sleep");
    assert_eq!(child.cmd, ["sleep", "30"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_agent_reports_this_process_and_its_child() {
    let app = spawn_app().await;
    let child = spawn_sleep();
    let child_pid = child.0.id();

    let snapshot = snapshot_of_this_machine().await;
    let sender = Sender::new(&app.address, app.unbound_key().await.into()).unwrap();
    let answer = sender
        .send(&snapshot)
        .await
        .expect("the server accepts the agent's snapshot");
    assert_eq!(answer.snapshot_id, snapshot.id);
    assert!(answer.stored);
    // A retry of the same snapshot is accepted and not stored twice.
    assert!(!sender.send(&snapshot).await.unwrap().stored);

    let response = app.get_processes(&snapshot.host.id).await;
    assert_eq!(response.status(), 200);
    let listing: ProcessListing = response.json().await.unwrap();
    assert_eq!(listing.snapshot_id, snapshot.id);
    assert_eq!(listing.processes.len(), snapshot.processes.len());
    check_listing(&listing, child_pid);

    let hosts: Vec<HostSummary> = app.get_hosts().await.json().await.unwrap();
    let host = hosts
        .iter()
        .find(|h| h.host.id == snapshot.host.id)
        .expect("the host is listed");
    assert!(host.online);
    assert_eq!(host.process_count as usize, snapshot.processes.len());
}

/// One process with a command line over the server's limit (Linux allows
/// about 2 MiB) must not get the host's snapshots refused: the real agent
/// cuts it, and the real server takes the snapshot.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_with_a_huge_command_line_does_not_get_the_snapshot_refused() {
    use procmon_model::limits::{cmd_bytes, MAX_CMD_BYTES};

    let app = spawn_app().await;
    // `sleep` adds up its arguments; each of these reads as 0 seconds.
    let zeros = "0".repeat(100 * 1024);
    let child = KillOnDrop(
        Command::new("sleep")
            .arg("30")
            .args(std::iter::repeat_n(&zeros, 12))
            .spawn()
            .expect("spawn `sleep 30 0000…` with 1.2 MB of arguments"),
    );
    let child_pid = child.0.id();
    std::thread::sleep(Duration::from_millis(100)); // let exec finish

    let snapshot = snapshot_of_this_machine().await;
    let sender = Sender::new(&app.address, app.unbound_key().await.into()).unwrap();
    let answer = sender
        .send(&snapshot)
        .await
        .expect("the server accepts the snapshot");
    assert!(answer.stored);
    let sent = snapshot.processes.iter().find(|p| p.pid == child_pid);
    let sent = sent.expect("the child is in the snapshot");
    assert_eq!(cmd_bytes(&sent.cmd), MAX_CMD_BYTES);
    let response = app.get_processes(&snapshot.host.id).await;
    let listing: ProcessListing = response.json().await.unwrap();
    let child = listing.processes.iter().find(|p| p.pid == child_pid);
    let child = child.expect("the child is listed");
    assert_eq!(&child.cmd[..3], ["sleep", "30", zeros.as_str()]);
    assert_eq!(cmd_bytes(&child.cmd), MAX_CMD_BYTES);
}

/// Every limit at once: a snapshot the server refuses is accepted once the
/// agent has fitted it, so the agent's idea of the limits is the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_fitted_by_the_agent_passes_every_check_of_the_server() {
    let app = spawn_app().await;
    let mut snapshot = crate::common::sample_snapshot("host-odd", 4);
    // What sysinfo once gave as start times under Wine.
    let far_future = chrono::NaiveDate::from_ymd_opt(21086, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    snapshot.interval_ms = 7 * 86_400_000;
    snapshot.host.hostname = "h".repeat(300);
    snapshot.host.boot_time = far_future;
    let p = &mut snapshot.processes;
    p[0].name = "名".repeat(500);
    p[0].start_time = far_future;
    p[1].user = Some("u".repeat(2000));
    p[1].exe = Some("/x".repeat(3000));
    p[2].cmd = vec!["prog".into(), "é".repeat(200_000)];
    p[3].pid = p[2].pid;
    let refused = app.post_snapshot(&snapshot).await;
    assert_eq!(refused.status(), 422);

    let cuts = procmon_agent::collect::fit::fit(&mut snapshot);
    assert!(!cuts.is_empty());
    let response = app.post_snapshot(&snapshot).await;
    assert!(
        response.status().is_success(),
        "{}: {}",
        response.status(),
        response.text().await.unwrap()
    );
    assert_eq!(app.stored_snapshots().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_reported_by_the_agent_as_refused() {
    let app = spawn_app().await;
    let snapshot = crate::common::sample_snapshot("host-a", 1);
    let sender = Sender::new(&app.address, "wrong".to_owned().into()).unwrap();
    let error = sender.send(&snapshot).await.unwrap_err().to_string();
    assert!(error.to_lowercase().contains("key"), "{error}");
    assert_eq!(app.stored_snapshots().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_agent_sends_this_machine_to_its_own_server() {
    let app = spawn_app_with(|s| {
        s.embedded_agent = true;
        s.embedded_agent_interval = Duration::from_millis(500);
    })
    .await;
    let child = spawn_sleep();
    let child_pid = child.0.id();

    // Wait for a snapshot taken after the child started.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the embedded agent never reported the child"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let hosts: Vec<HostSummary> = app.get_hosts().await.json().await.unwrap();
        let Some(host) = hosts.first() else { continue };
        assert!(host.online);
        let listing: ProcessListing = app.get_processes(&host.host.id).await.json().await.unwrap();
        if listing.processes.iter().any(|p| p.pid == child_pid) {
            check_listing(&listing, child_pid);
            break;
        }
    }
}

/// The real agent loop given only the enrollment secret: it enrolls, keeps
/// its key in a private file, sends with it; when that key is revoked, it
/// enrolls again by itself and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_the_enrollment_secret_gets_its_own_key_and_recovers_from_revocation() {
    use secrecy::ExposeSecret;

    let app = spawn_app().await;
    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("procmon-agent.key");
    let mut config = procmon_agent::AgentConfig::new(&app.address, "unused");
    config.key = procmon_agent::AgentKey::Enroll {
        secret: secret.expose_secret().to_owned().into(),
        key_file: key_file.clone(),
    };
    config.interval = Duration::from_millis(300);
    config.spool_dir = dir.path().join("spool");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(procmon_agent::run(config, async {
        let _ = stopped.await;
    }));

    let wait_for = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
        for _ in 0..100 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    };
    let file = key_file.clone();
    wait_for("the key file", Box::new(move || file.is_file())).await;
    let first = std::fs::read_to_string(&key_file).unwrap();
    assert!(first.trim().starts_with("pmk_"), "{first}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let store = app.state.store.clone();
    let has_host = || async { !store.hosts().await.unwrap().is_empty() };
    for _ in 0..100 {
        if has_host().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(has_host().await, "the enrolled agent's snapshots arrive");

    let id = first
        .trim()
        .trim_start_matches("pmk_")
        .split('_')
        .next()
        .unwrap();
    assert!(app
        .state
        .agent_keys
        .store()
        .revoke_key(id, chrono::Utc::now())
        .await
        .unwrap());
    let (file, old) = (key_file.clone(), first.clone());
    wait_for(
        "a new key after revocation",
        Box::new(move || std::fs::read_to_string(&file).is_ok_and(|k| k != old)),
    )
    .await;
    let before = app.stored_snapshots().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        app.stored_snapshots().await > before,
        "it goes on sending with its new key"
    );

    let _ = stop.send(());
    agent.await.unwrap().unwrap();
}
