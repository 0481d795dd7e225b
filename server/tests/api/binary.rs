//! The `procmon-server` binary as a user runs it: the line with the URL,
//! key files (never keys) on the console, config mistakes named, a clean
//! stop on Ctrl-C, and the key commands.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_procmon-server");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_prints_its_url_serves_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--no-agent", "--data-dir"])
        .arg(dir.path())
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start procmon-server");
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("procmon is running at ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    let mut rest = String::new();
    while !rest.contains("Ctrl-C stops it") {
        assert!(stdout.read_line(&mut rest).unwrap() > 0, "{rest}");
    }
    let viewer_key_file = dir.path().join("viewer.key");
    assert!(
        rest.contains(&viewer_key_file.display().to_string()),
        "{rest}"
    );
    let key = std::fs::read_to_string(&viewer_key_file).unwrap();
    assert!(
        !rest.contains(key.trim()),
        "the viewer key itself must never be printed"
    );
    // The first start prints the enrollment secret, once; it gets an agent
    // its host key.
    let secret = rest
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("pme_"))
        .unwrap_or_else(|| panic!("no enrollment secret in {rest}"))
        .to_owned();
    let enrolled: procmon_model::EnrollResponse = reqwest::Client::new()
        .post(format!("{url}api/enroll/"))
        .json(&serde_json::json!({"enroll_secret": secret, "host_id": "host-a", "hostname": "a"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = reqwest::Client::new()
        .post(format!("{url}api/processes/"))
        .bearer_auth(&enrolled.key)
        .json(&procmon_model::fixtures::snapshot("host-a", 3))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);

    let health = reqwest::get(format!("{url}api/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    let stopped = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("procmon-server did not stop within 15 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn an_unknown_key_in_the_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("procmon-server.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nretension = \"1h\"\n").unwrap();
    let output = Command::new(BINARY)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("retension"), "{stderr}");
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
}

#[test]
fn a_bad_environment_value_is_named() {
    let output = Command::new(BINARY)
        .env("PROCMON_RETENTION", "forever")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("forever") && stderr.contains("retention"),
        "{stderr}"
    );
}

/// Started under a umask that takes the owner's own bits away, the data
/// directory is still 0700 and the keys 0600: the modes are set, not only
/// asked for.
#[cfg(unix)]
#[test]
fn the_data_dir_and_keys_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let mut server = crate::common::KillOnDrop(
        Command::new("sh")
            .args(["-c", "umask 0277 && exec \"$0\" \"$@\"", BINARY])
            .args(["--listen", "127.0.0.1:0", "--no-agent", "--data-dir"])
            .arg(&dir)
            .stderr(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start procmon-server"),
    );
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("procmon is running at"), "{first:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("viewer.key")), 0o600);
    assert_eq!(mode(&dir.join("procmon.db")), 0o600);
}

#[test]
fn a_listen_address_without_an_ip_says_the_form_expected() {
    for given in ["8001", "example:8001"] {
        let output = Command::new(BINARY)
            .args(["--listen", given])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("give IP:PORT, e.g. 127.0.0.1:8000") && stderr.contains("0.0.0.0:8000"),
            "{stderr}"
        );
    }
}

/// On every network, the server also says how other machines reach it:
/// the loopback URL alone would not work from there.
#[test]
fn listening_on_every_network_prints_an_address_for_other_machines() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = crate::common::KillOnDrop(
        Command::new(BINARY)
            .args(["--listen", "0.0.0.0:0", "--no-agent", "--data-dir"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start procmon-server"),
    );
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    let port = first
        .trim()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap();
    let others = second
        .trim()
        .strip_prefix("from other machines: ")
        .unwrap_or_else(|| panic!("no address for other machines: {second:?}"));
    assert!(others.contains(&format!(":{port}/")), "{others}");
    assert!(!others.contains("127.0.0.1"), "{others}");
}

/// `procmon-server keys ...` and `enroll-secret ...` on the server's own
/// database, as an admin runs them (while the server is stopped here; the
/// store allows it while running too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_commands_make_list_and_revoke_keys() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(BINARY)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let key = run(&["keys", "create", "--host", "web-1", "--label", "for web-1"]);
    let key = key.trim();
    assert!(key.starts_with("pmk_"), "{key}");
    let id = key.trim_start_matches("pmk_").split('_').next().unwrap();
    let list = run(&["keys", "list"]);
    assert!(
        list.contains(id) && list.contains("web-1") && list.contains("for web-1"),
        "{list}"
    );
    assert!(!list.contains(key), "a listing never shows a key");
    // Nothing on disk holds the key itself: only its hash is stored.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let secret = key.rsplit('_').next().unwrap().as_bytes();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret));
    }
    let revoked = run(&["keys", "revoke", id]);
    assert!(revoked.contains("revoked"), "{revoked}");
    assert!(run(&["keys", "list"]).contains("REVOKED"));
    let again = Command::new(BINARY)
        .args(["keys", "revoke", id, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no key"));

    let first = run(&["enroll-secret", "rotate"]);
    let second = run(&["enroll-secret", "rotate"]);
    assert!(first.trim().starts_with("pme_") && first != second);
    assert!(run(&["enroll-secret", "revoke"]).contains("1 enrollment secret"));
}
