//! The `procmon-server` binary as a user runs it: the line with the URL,
//! the enrollment secret shown once, the key commands,
//! key files (never keys) on the console, the first start's one-time
//! sign-in link, the account commands, config mistakes named, and a clean
//! stop on Ctrl-C.

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
    // The first start prints the enrollment secret, once; it gets an agent
    // its host key. Nothing else secret is printed or kept in plain.
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
    assert!(!rest.contains(&enrolled.key));

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

/// Starts the binary in `dir` and reads its stdout until the "Ctrl-C"
/// line: the URL and everything printed.
fn start_in(dir: &std::path::Path) -> (crate::common::KillOnDrop, String, String) {
    let mut server = crate::common::KillOnDrop(
        Command::new(BINARY)
            .args(["--listen", "127.0.0.1:0", "--no-agent", "--data-dir"])
            .arg(dir)
            .stderr(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start procmon-server"),
    );
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("Ctrl-C") {
        assert!(stdout.read_line(&mut printed).unwrap() > 0, "{printed}");
    }
    let url = printed
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("procmon is running at "))
        .unwrap()
        .to_owned();
    (server, url, printed)
}

fn sign_in_body(link: &str) -> serde_json::Value {
    let token = link.split_once("#signin=").unwrap().1;
    serde_json::json!({ "link_token": token })
}

/// The first start prints a link that signs the admin in exactly once;
/// the admin then sets a password, and a restart prints no link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_prints_a_sign_in_link_that_works_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, printed) = start_in(dir.path());
    let link = printed
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{url}#signin=")))
        .unwrap_or_else(|| panic!("no sign-in link in {printed}"))
        .to_owned();
    assert!(printed.contains("users passwd admin"), "{printed}");

    let client = crate::common::browser_like_client();
    let signed_in = client
        .post(format!("{url}api/session/"))
        .json(&sign_in_body(&link))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 201);
    let who: serde_json::Value = signed_in.json().await.unwrap();
    assert_eq!(who["name"], "admin");
    assert_eq!(who["role"], "admin");
    assert_eq!(who["has_password"], false);
    assert_eq!(
        client
            .get(format!("{url}api/hosts/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let again = crate::common::browser_like_client()
        .post(format!("{url}api/session/"))
        .json(&sign_in_body(&link))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401, "the link works once");
    let error: procmon_model::ErrorBody = again.json().await.unwrap();
    assert!(error.message.contains("signin-link"), "{}", error.message);

    // Signed in by the link, the admin sets a password without an old one.
    let set = client
        .put(format!("{url}api/users/admin/password"))
        .json(&serde_json::json!({ "password": "first-password-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
    let by_password = crate::common::browser_like_client()
        .post(format!("{url}api/session/"))
        .json(&serde_json::json!({ "name": "admin", "password": "first-password-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_password.status(), 201);
    drop(server);

    let (_server, _url, printed) = start_in(dir.path());
    assert!(!printed.contains("#signin="), "a link again: {printed}");
}

/// `users add/list/passwd/remove` and `signin-link` act on the server's
/// database, while the server runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_commands_work_on_a_running_servers_database() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (_server, url, _) = start_in(dir.path());
    let port = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(BINARY)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };

    let (ok, text) = cli(
        &[
            "users",
            "add",
            "ops",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("ops-password-1\n"),
    );
    assert!(ok, "{text}");
    let (ok, text) = cli(
        &["users", "add", "ops", "--password-stdin"],
        Some("ops-password-1\n"),
    );
    assert!(!ok && text.contains("already exists"), "{text}");
    let (ok, text) = cli(
        &["users", "add", "shorty", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!ok && text.contains("8 to 1024 bytes"), "{text}");
    let (ok, text) = cli(&["users", "list"], None);
    assert!(ok, "{text}");
    assert!(
        text.contains("admin\tadmin  (no password yet)") && text.contains("ops\tviewer"),
        "{text}"
    );

    let client = crate::common::browser_like_client();
    let sign_in = |password: &'static str| {
        client
            .post(format!("{url}api/session/"))
            .json(&serde_json::json!({ "name": "ops", "password": password }))
            .send()
    };
    assert_eq!(sign_in("ops-password-1").await.unwrap().status(), 201);
    let (ok, text) = cli(
        &["users", "passwd", "ops", "--password-stdin"],
        Some("ops-password-2\n"),
    );
    assert!(ok, "{text}");
    assert_eq!(
        client
            .get(format!("{url}api/hosts/"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "a new password ends the sessions"
    );
    assert_eq!(sign_in("ops-password-2").await.unwrap().status(), 201);

    let (ok, text) = cli(&["signin-link", "ops"], None);
    assert!(ok, "{text}");
    let link = text.lines().next().unwrap().trim().to_owned();
    assert!(link.starts_with(&format!("{url}#signin=")), "{link}");
    let by_link = crate::common::browser_like_client()
        .post(format!("{url}api/session/"))
        .json(&sign_in_body(&link))
        .send()
        .await
        .unwrap();
    assert_eq!(by_link.status(), 201);

    let (ok, text) = cli(&["users", "remove", "admin"], None);
    assert!(!ok && text.contains("only admin"), "{text}");
    let (ok, text) = cli(&["users", "remove", "ops"], None);
    assert!(ok, "{text}");
    assert_eq!(
        client
            .get(format!("{url}api/hosts/"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
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
