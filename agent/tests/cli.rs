//! The `procmon-agent` binary as people and scripts run it.

use std::process::{Command, Output};

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
    assert!(message.contains("no API key"), "{message}");
    assert!(message.contains("PROCMON_AGENT_API_KEY"), "{message}");
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
