//! Sending, and the loop around it, when the server is not there. (Sending to
//! a real server, including a refused key, is tested with the server.)

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use procmon_agent::send::MAX_ANSWER_BYTES;
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

/// What a person who types the URL a little wrong is told: what to write.
#[test]
fn a_url_without_its_scheme_or_with_api_is_refused_saying_what_to_write() {
    let said = |url: &str| {
        Sender::new(url, SecretString::from("key"))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        said("127.0.0.1:8000"),
        "\"127.0.0.1:8000\" is not a usable server URL: add http:// (e.g. http://127.0.0.1:8000)"
    );
    assert!(said("localhost:8000").contains("add http:// (e.g. http://localhost:8000)"));
    for url in ["http://127.0.0.1:8000/api", "http://127.0.0.1:8000/api/"] {
        assert_eq!(
            said(url),
            format!(
                "{url:?} is not a usable server URL: leave out /api: server_url is the \
                 server's own address, e.g. http://127.0.0.1:8000"
            )
        );
    }
    assert!(said("https://example.org/procmon/api").contains("e.g. https://example.org/procmon"));
    // A path that only ends in "api" is a proxy's prefix like any other.
    assert!(Sender::new("http://example.org/myapi", SecretString::from("k")).is_ok());
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
    let spool = tempfile::tempdir().unwrap();
    let mut config = AgentConfig::new(url.clone(), "key");
    config.interval = Duration::from_millis(400);
    config.spool_dir = spool.path().to_owned();
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

/// What a server receives from the agent: the snapshot as JSON, compressed
/// with zstd and said so (`Content-Encoding: zstd`), and smaller than the
/// JSON. How much smaller depends on the machine's processes (3.7x on a
/// bare CI machine, far more on a busy desktop), so only halving is asked.
/// Reads one HTTP/1.1 request: its head, then as many body bytes as it
/// announces.
async fn read_request(stream: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    use tokio::io::AsyncReadExt;

    let mut received = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the agent closed before sending its request");
        received.extend_from_slice(&buf[..n]);
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(received[..end].to_vec()).unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("a content-length");
            while received.len() < end + 4 + length {
                let n = stream.read(&mut buf).await.unwrap();
                received.extend_from_slice(&buf[..n]);
            }
            return (head, received[end + 4..end + 4 + length].to_vec());
        }
    }
}

/// A server that answers every snapshot with 64 MiB of JSON, said in its
/// `Content-Length` or (`announced` false) chunked without one: the agent
/// reads no more than its limit, and says so.
#[tokio::test]
async fn an_answer_larger_than_the_limit_is_an_error_naming_it() {
    use tokio::io::AsyncWriteExt;

    for announced in [true, false] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            read_request(&mut stream).await;
            let chunk = vec![b' '; 64 * 1024];
            let head = if announced {
                format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n\r\n",
                    1024 * chunk.len()
                )
            } else {
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\
                 transfer-encoding: chunked\r\n\r\n"
                    .to_owned()
            };
            stream.write_all(head.as_bytes()).await.unwrap();
            // Until the agent hangs up, or 64 MiB.
            let mut sent = 0;
            for _ in 0..1024 {
                let written = if announced {
                    stream.write_all(&chunk).await
                } else {
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(&chunk);
                    framed.extend_from_slice(b"\r\n");
                    stream.write_all(&framed).await
                };
                if written.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            sent
        });
        let sender = Sender::new(&url, SecretString::from("key")).unwrap();
        let snapshot = procmon_model::fixtures::snapshot("host-a", 3);
        let error = sender.send(&snapshot).await.unwrap_err();
        assert!(
            matches!(error, SendError::AnswerTooLarge { limit, .. } if limit == MAX_ANSWER_BYTES),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("1048576 bytes"), "{message}");
        assert!(message.contains(&url), "{message}");
        drop(sender);
        let sent = server.await.unwrap();
        eprintln!("announced {announced}: refused after the server sent {sent} bytes: {message}");
        assert!(sent < 64 << 20, "the agent read the whole answer");
    }
}

#[tokio::test]
async fn a_snapshot_goes_as_zstd_compressed_json() {
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let (head, body) = read_request(&mut stream).await;
        let answer = br#"{"snapshot_id":"00000000-0000-0000-0000-000000000000","stored":true}"#;
        let reply = format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        stream.write_all(reply.as_bytes()).await.unwrap();
        stream.write_all(answer).await.unwrap();
        (head, body)
    });

    let snapshot =
        tokio::task::spawn_blocking(|| Collector::new().snapshot(Duration::from_secs(2)))
            .await
            .unwrap();
    let sender = Sender::new(&url, SecretString::from("key")).unwrap();
    sender
        .send(&snapshot)
        .await
        .expect("the stand-in server answers 201");
    let (head, body) = server.await.unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-encoding: zstd"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let json = zstd::bulk::decompress(&body, 64 << 20).expect("the body is zstd");
    let sent: procmon_model::Snapshot = serde_json::from_slice(&json).unwrap();
    assert_eq!(sent, snapshot);
    assert!(
        body.len() * 2 < json.len(),
        "compressed {} of {} bytes",
        body.len(),
        json.len()
    );
}
