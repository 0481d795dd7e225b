//! The `procmon-agent` binary as people and scripts run it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use procmon_model::Snapshot;

/// The agent, run in an empty temp dir so no stray config file is read, and
/// with none of the caller's `PROCMON_AGENT_*` variables.
fn agent(dir: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_procmon-agent"));
    command.args(args).current_dir(dir.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("PROCMON_AGENT_") {
            command.env_remove(name);
        }
    }
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn once_print_writes_one_snapshot_as_json_with_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let output = agent(&dir, &["--once", "--print"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let snapshot: Snapshot = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a snapshot: {e}"));
    assert_eq!(snapshot.version, procmon_model::WIRE_VERSION);
    assert!(snapshot.processes.len() > 1);
    // The test that ran it is in it, as the agent's parent.
    let agent = snapshot
        .processes
        .iter()
        .find(|p| p.name.starts_with("procmon-agent"))
        .expect("the agent sees itself");
    assert_eq!(agent.parent_pid, Some(std::process::id()));
}

#[test]
fn once_print_takes_the_interval_from_the_environment_and_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("procmon-agent.toml"), "interval = \"7s\"\n").unwrap();
    let output = agent(&dir, &["--once", "--print"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let snapshot: Snapshot = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        snapshot.interval_ms, 7000,
        "the file in the working dir is read"
    );

    let output = agent(&dir, &["--once", "--print"])
        .env("PROCMON_AGENT_INTERVAL", "3s")
        .output()
        .unwrap();
    let snapshot: Snapshot = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(snapshot.interval_ms, 3000, "the environment beats the file");

    let output = agent(&dir, &["--once", "--print", "--interval", "4s"])
        .env("PROCMON_AGENT_INTERVAL", "3s")
        .output()
        .unwrap();
    let snapshot: Snapshot = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(snapshot.interval_ms, 4000, "the flag beats the environment");
}

#[test]
fn once_without_a_key_fails_saying_how_to_set_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = agent(&dir, &["--once"]).output().unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("no key is set"), "{message}");
    assert!(message.contains("PROCMON_AGENT_ENROLL_SECRET"), "{message}");
    assert!(message.contains("procmon-server keys create"), "{message}");
}

#[test]
fn a_ca_file_that_cannot_be_read_stops_the_agent_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garbage.pem"), "not PEM").unwrap();
    for (file, why) in [
        ("missing.pem", "cannot read it"),
        ("garbage.pem", "it holds no certificate"),
    ] {
        let output = agent(&dir, &["--once", "--ca-file", file])
            .env("PROCMON_AGENT_API_KEY", "some-key")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let message = stderr(&output);
        assert!(
            message.contains(&format!(
                "the CA file {file} (ca_file) cannot be used: {why}"
            )),
            "{message}"
        );
    }
}

#[test]
fn once_against_a_closed_port_fails_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let output = agent(&dir, &["--once", "--server-url", &url])
        .env("PROCMON_AGENT_API_KEY", "some-key")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("{url}/api/processes/")),
        "{message}"
    );
    assert!(message.contains("Is the server running"), "{message}");
    assert!(!message.contains("some-key"), "the key leaked: {message}");
}

#[test]
fn a_bad_config_file_stops_the_agent_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "intervall = \"2s\"\n").unwrap();
    let output = agent(
        &dir,
        &["--once", "--print", "--config", path.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("bad.toml") && message.contains("intervall"),
        "{message}"
    );

    let output = agent(&dir, &["--once", "--print", "--config", "missing.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("missing.toml"));
}

#[test]
fn print_without_once_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = agent(&dir, &["--print"]).output().unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--once"), "{}", stderr(&output));
}

/// A port nothing listens on: bound, read, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Run as an unprivileged user, the agent still lists root's processes with
/// what it may read (name, parent, user) where their details are denied.
#[cfg(target_os = "linux")]
#[test]
fn processes_of_other_users_are_listed_with_what_could_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap();
    let output = if is_root {
        if Command::new("setpriv").arg("--version").output().is_err() {
            let why = "running as root, and setpriv (util-linux) is missing to drop privileges";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipped: {why}");
            return;
        }
        // nobody (uid 65534) may not reach the build's target dir (a clone
        // under /root, say), so it runs a copy in a dir it can enter.
        make_world_accessible(dir.path());
        let copy = dir.path().join("procmon-agent");
        std::fs::copy(env!("CARGO_BIN_EXE_procmon-agent"), &copy).unwrap();
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy)
            .args(["--once", "--print"])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap()
    } else {
        agent(&dir, &["--once", "--print"]).output().unwrap()
    };
    assert!(output.status.success(), "{}", stderr(&output));
    let snapshot: Snapshot = serde_json::from_slice(&output.stdout).unwrap();
    let init = snapshot
        .processes
        .iter()
        .find(|p| p.pid == 1)
        .expect("pid 1 is listed although it belongs to root");
    assert!(!init.name.is_empty());
    assert_eq!(init.user.as_deref(), Some("root"));
    // Its executable link is root's alone.
    assert_eq!(init.exe, None);
}

#[cfg(target_os = "linux")]
fn make_world_accessible(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A one-connection HTTP server that reads one request, tells the test it
/// has it, waits for `answer_after` (for ever when `None`) and answers 201.
fn slow_server(answer_after: Option<Duration>) -> (u16, mpsc::Receiver<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_request, request_seen) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let _ = got_request.send(());
        let Some(delay) = answer_after else {
            // Hold the connection, unanswered, until the process ends.
            std::thread::sleep(Duration::from_secs(3600));
            return;
        };
        std::thread::sleep(delay);
        let body = format!(
            "{{\"snapshot_id\":\"{}\",\"stored\":true}}",
            uuid::Uuid::new_v4()
        );
        let _ = write!(
            stream,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    (port, request_seen)
}

/// Starts the agent against `port`, waits until its first send is in
/// flight, sends SIGTERM, and returns how it ended and its log.
#[cfg(unix)]
fn terminate_during_a_send(answer_after: Option<Duration>) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let (port, request_seen) = slow_server(answer_after);
    let mut agent = agent(
        &dir,
        &[
            "--server-url",
            &format!("http://127.0.0.1:{port}"),
            "--interval",
            "1h",
        ],
    )
    .env("PROCMON_AGENT_API_KEY", "some-key")
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    request_seen
        .recv_timeout(Duration::from_secs(60))
        .expect("the agent sent a snapshot");
    let killed = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = agent.kill();
            panic!("the agent did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    agent
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (status, log)
}

#[cfg(unix)]
#[test]
fn sigterm_during_a_send_lets_it_finish_then_exits_0() {
    let started = Instant::now();
    let (status, log) = terminate_during_a_send(Some(Duration::from_secs(1)));
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("stopping: SIGTERM"), "{log}");
    assert!(log.contains("finishing the snapshot in flight"), "{log}");
    assert!(log.contains("stored"), "the send was not finished: {log}");
    assert!(log.contains("procmon agent stopped"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[cfg(unix)]
#[test]
fn sigterm_during_a_send_that_hangs_abandons_it_within_the_grace() {
    let (status, log) = terminate_during_a_send(None);
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("abandoned after 5 s"), "{log}");
    assert!(log.contains("procmon agent stopped"), "{log}");
}
