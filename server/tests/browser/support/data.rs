//! The data the tests send: a snapshot with every tree trap in it, one
//! process as the tests write it, the snapshot after another, and posting
//! a snapshot to the server.

use super::*;

pub const XSS_NAME: &str = "<img src=x onerror=\"window.__procmonInjected=true\">";
pub const XSS_USER: &str = "<b>root</b>";
pub const CHAIN_START: u32 = 1000;
pub const CHAIN_LEN: u32 = 300;

/// A snapshot no sane OS would send, with every tree trap in it.
pub fn hostile_snapshot() -> Snapshot {
    let base: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let at = |seconds: i64| base + chrono::Duration::seconds(seconds);
    let mut processes = vec![
        sample(1, None, "init", at(0)),
        // Two processes each other's parent, and one its own.
        sample(10, Some(11), "cycle-a", at(5)),
        sample(11, Some(10), "cycle-b", at(6)),
        sample(12, Some(12), "own-parent", at(7)),
        // The parent pid 21 now belongs to a process younger than 20.
        sample(20, Some(21), "orphan-of-reused-pid", at(8)),
        sample(21, Some(1), "pid-reuser", at(100)),
        // The parent is gone.
        sample(30, Some(999), "orphan", at(9)),
    ];
    let mut hostile = sample(4, Some(1), XSS_NAME, at(3));
    hostile.user = Some(XSS_USER.into());
    hostile.cmd = vec![
        "<script>window.__procmonInjected=true</script>".into(),
        "--name=<img src=x onerror=\"window.__procmonInjected=true\">".into(),
    ];
    hostile.exe = Some("<iframe src=javascript:alert(1)>".into());
    processes.push(hostile);
    // A long chain that loops back on itself at the end.
    for i in 0..CHAIN_LEN {
        let pid = CHAIN_START + i;
        let parent = if i == 0 {
            CHAIN_START + CHAIN_LEN - 1
        } else {
            pid - 1
        };
        processes.push(sample(pid, Some(parent), &format!("chain-{i}"), at(10)));
    }
    Snapshot {
        version: WIRE_VERSION,
        id: Uuid::new_v4(),
        collected_at: Utc::now(),
        // Sent once: after three of these intervals the host is offline.
        interval_ms: 1000,
        host: HostInfo {
            id: format!("browser-test-{}", Uuid::new_v4()),
            hostname: "<svg onload=\"window.__procmonInjected=true\">".into(),
            os_name: "TestOS".into(),
            os_version: "1".into(),
            kernel: "1.0".into(),
            arch: "x86_64".into(),
            cpu_count: 4,
            memory_total_bytes: 8 << 30,
            boot_time: base,
            agent_version: "test".into(),
            labels: Vec::new(),
        },
        load: None,
        processes,
    }
}

pub fn sample(
    pid: u32,
    parent_pid: Option<u32>,
    name: &str,
    start_time: DateTime<Utc>,
) -> ProcessSample {
    ProcessSample {
        pid,
        parent_pid,
        name: name.into(),
        exe: Some(format!("/usr/bin/{name}")),
        cmd: vec![name.into(), "--flag".into()],
        user: Some("root".into()),
        start_time,
        status: ProcessStatus::Sleeping,
        cpu_percent: (pid % 7) as f32 * 3.5,
        memory_rss_bytes: u64::from(pid) * 123_456,
        memory_virtual_bytes: u64::from(pid) * 1_234_567,
        memory_private_bytes: None,
        threads: Some(pid % 5 + 1),
        handles: None,
        disk_read_bytes: 0,
        disk_written_bytes: 0,
    }
}

pub async fn post_snapshot(app: &TestApp, snapshot: &Snapshot) {
    let response = app.post_snapshot(snapshot).await;
    let status = response.status();
    assert_eq!(
        status.as_u16(),
        201,
        "snapshot refused: {}",
        response.text().await.unwrap_or_default()
    );
}

pub fn process_named(snapshot: &Snapshot, pid: u32) -> &ProcessSample {
    snapshot
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("the agent's snapshot has no process {pid}"))
}

/// The snapshot after `snapshot`: a new id, two seconds later, the same processes.
pub fn later(snapshot: &Snapshot) -> Snapshot {
    let mut next = snapshot.clone();
    next.id = Uuid::new_v4();
    next.collected_at = snapshot.collected_at + chrono::Duration::seconds(2);
    next
}
