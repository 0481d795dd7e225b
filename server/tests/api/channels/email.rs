//! E-mail through a real SMTP server (aiosmtpd, from the test venv that
//! scripts/install-test-deps makes), and an SMTP server that takes the
//! connection and never answers, which the send's timeout cuts off.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use procmon_model::channels::DeliveryStatus;
use serde_json::{json, Value};

use super::{closed_port, make_channel, queue, test_button, wait_for};
use crate::common::{installed_or_skip, spawn_app, KillOnDrop};

fn python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python");
    let has = python.is_file()
        && Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    installed_or_skip(has, "aiosmtpd (target/test-venv)").then_some(python)
}

/// aiosmtpd on a free port, keeping each message in the Maildir `dir`.
async fn smtp_server(python: &Path, dir: &Path) -> (KillOnDrop, u16) {
    let port = closed_port();
    let child = Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("aiosmtpd starts");
    let child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "aiosmtpd does not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, port)
}

/// The messages in the Maildir `dir`.
fn messages(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("new")) else {
        return Vec::new();
    };
    entries
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

fn email_spec(port: u16, security: &str) -> Value {
    json!({
        "name": "ops mail",
        "kind": {
            "type": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "security": security,
            "from": "procmon <procmon@example.com>",
            "to": ["ops@example.com", "Oncall <oncall@example.com>"],
        },
    })
}

#[tokio::test]
async fn an_email_channel_delivers_through_a_real_smtp_server() {
    let Some(python) = python() else { return };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("maildir");
    let (_server, port) = smtp_server(&python, &dir).await;
    let app = spawn_app().await;
    let mail = make_channel(&app, email_spec(port, "none")).await;

    let queued = queue(&app, "alert-m", &[("n-mail", &mail.id)]).await;
    wait_for(&app, "n-mail", Duration::from_secs(15), |d| {
        d.status == DeliveryStatus::Delivered
    })
    .await;
    let got = messages(&dir);
    assert_eq!(got.len(), 1, "{got:?}");
    let message = &got[0];
    assert!(
        message.contains("Subject: [FIRING] critical: nginx down"),
        "{message}"
    );
    assert!(
        message.contains("Message-ID: <n-mail@procmon>"),
        "{message}"
    );
    assert!(
        message.contains("From: procmon <procmon@example.com>"),
        "{message}"
    );
    assert!(message.contains("oncall@example.com"), "{message}");
    assert!(
        message.contains("X-RcptTo: ops@example.com, oncall@example.com"),
        "{message}"
    );
    assert!(message.contains(&queued[0].alert.summary), "{message}");

    let result = test_button(&app, &mail.id).await;
    assert!(result.ok, "{result:?}");
    let got = messages(&dir);
    assert_eq!(got.len(), 2);
    assert!(got
        .iter()
        .any(|m| m.contains(&format!("<{}@procmon>", result.notification_id))));
}

#[tokio::test]
async fn starttls_required_of_a_server_without_it_fails_with_its_reason() {
    let Some(python) = python() else { return };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("maildir");
    let (_server, port) = smtp_server(&python, &dir).await;
    let app = spawn_app().await;
    let mail = make_channel(&app, email_spec(port, "starttls")).await;
    let result = test_button(&app, &mail.id).await;
    assert!(!result.ok);
    let error = result.error.unwrap();
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(messages(&dir).is_empty());
}

#[tokio::test]
async fn an_smtp_server_that_never_answers_is_cut_off_by_the_timeout() {
    let app = spawn_app().await;
    // Takes connections and says nothing, ever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mail = make_channel(&app, email_spec(port, "none")).await;
    let started = Instant::now();
    let result = test_button(&app, &mail.id).await;
    let took = started.elapsed();
    assert!(!result.ok);
    let error = result.error.unwrap();
    assert!(
        error.contains(&format!("127.0.0.1:{port} did not answer within 10 s")),
        "{error}"
    );
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(14),
        "{took:?}"
    );

    // Through the queue too: the failure is recorded for a retry.
    queue(&app, "alert-h", &[("n-hang", &mail.id)]).await;
    let d = wait_for(&app, "n-hang", Duration::from_secs(20), |d| d.attempts == 1).await;
    assert_eq!(d.status, DeliveryStatus::Failing);
    assert!(d.last_error.unwrap().contains("did not answer within 10 s"));
}
