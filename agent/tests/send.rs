//! Sending, and the loop around it, when the server is not there. (Sending to
//! a real server, including a refused key, is tested with the server.)

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use procmon_agent::{AgentConfig, Collector, SendError, Sender};
use secrecy::SecretString;

/// A local port nothing listens on: bound, read, then released.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_the_url_tried() {
    let url = closed_port_url();
    let sender = Sender::new(&url, SecretString::from("key")).unwrap();
    let snapshot =
        tokio::task::spawn_blocking(|| Collector::new().snapshot(Duration::from_secs(2)))
            .await
            .unwrap();
    let error = sender.send(&snapshot).await.unwrap_err();
    assert!(matches!(error, SendError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot reach the procmon server at {url}/api/processes/"
        )),
        "{message}"
    );
    assert!(message.contains("refused"), "the cause is kept: {message}");
    assert!(message.contains("is server_url right?"), "{message}");
}

#[test]
fn the_ingest_url_keeps_a_path_prefix_and_bad_urls_are_refused() {
    let key = || SecretString::from("key");
    let sender = Sender::new("http://127.0.0.1:8000", key()).unwrap();
    assert_eq!(
        sender.ingest_url().as_str(),
        "http://127.0.0.1:8000/api/processes/"
    );
    let behind_proxy = Sender::new("https://example.org/procmon/", key()).unwrap();
    assert_eq!(
        behind_proxy.ingest_url().as_str(),
        "https://example.org/procmon/api/processes/"
    );
    for bad in ["", "127.0.0.1:8000", "ftp://example.org", "http://"] {
        let error = Sender::new(bad, key()).unwrap_err();
        assert!(
            matches!(error, SendError::BadUrl { .. }),
            "{bad:?}: {error:?}"
        );
    }
}

/// Collects what the agent logs, to count its lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_loop_goes_on_after_failed_sends_logs_one_line_each_and_stops_on_shutdown() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let url = closed_port_url();
    let mut config = AgentConfig::new(url.clone(), "key");
    config.interval = Duration::from_millis(400);
    let stopped = tokio::time::timeout(
        Duration::from_secs(30),
        procmon_agent::run(config, tokio::time::sleep(Duration::from_millis(2500))),
    )
    .await
    .expect("the loop stops when shutdown completes");
    stopped.expect("failed sends do not end the loop");

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let failures: Vec<&str> = text.lines().filter(|l| l.contains("not sent")).collect();
    assert!(
        failures.len() >= 3,
        "expected a line per failed send every 400 ms:\n{text}"
    );
    for line in &failures {
        assert!(line.contains(&url), "the line names the server: {line}");
        assert!(
            line.contains("processes="),
            "the line counts processes: {line}"
        );
        assert!(
            line.contains("snapshot="),
            "the line names the snapshot: {line}"
        );
        assert!(line.contains("send_ms="), "the line times the send: {line}");
    }
    assert!(text.contains("procmon agent stopped"), "{text}");
}
