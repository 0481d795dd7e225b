//! Clients that try to hold the server: slow heads, idle connections,
//! stalled bodies, floods of connections, a stop during an upload, a host
//! that sends too often. Each is bounded, and the server goes on answering.

use std::time::{Duration, Instant};

use procmon_model::ErrorBody;
use procmon_server::config::Settings;
use procmon_server::startup::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{sample_snapshot, spawn_app_with, TestApp};

/// Reads until the server closes the connection, for at most `limit`;
/// what was read, and whether the server closed it within the limit.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&text).into(), true),
            Ok(Ok(n)) => text.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&text).into(), false),
        }
    }
}

/// The status and `ErrorBody` of a raw HTTP/1.1 response.
fn parse_error(response: &str) -> (u16, ErrorBody) {
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    let body: ErrorBody =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response:?}"));
    (status, body)
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", app.port)).await.unwrap()
}

fn ingest_head(app: &TestApp, length: usize) -> String {
    format!(
        "POST /api/processes/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
        app.agent_key
    )
}

#[tokio::test]
async fn a_head_sent_one_byte_at_a_time_is_cut_off() {
    let app = spawn_app_with(|s| s.header_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    let head = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    if !closed {
        closed = read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .1;
    }
    assert!(closed, "a slow head kept its connection");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed only after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(|s| s.header_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive for a next request, but not for ever.
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(6)).await;
    assert!(closed, "an idle connection stayed open");
}

#[tokio::test]
async fn a_stalled_body_gets_a_408() {
    let app = spawn_app_with(|s| s.body_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(ingest_head(&app, 1000).as_bytes())
        .await
        .unwrap();
    stream.write_all(b"{\"version\": 1,").await.unwrap();
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert!(closed, "{response}");
    let (status, error) = parse_error(&response);
    assert_eq!(status, 408, "{response}");
    assert_eq!(error.error, "body_timeout");
    assert!(error.message.contains("body_timeout"), "{}", error.message);
}

#[tokio::test]
async fn a_body_that_trickles_past_the_request_timeout_gets_a_503() {
    let app = spawn_app_with(|s| {
        s.body_timeout = Duration::from_secs(5);
        s.request_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(ingest_head(&app, 1000).as_bytes())
        .await
        .unwrap();
    // A byte every 200 ms: never a gap the body timeout would see.
    let trickle = async {
        for _ in 0..50 {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let started = Instant::now();
    let _ = tokio::time::timeout(Duration::from_millis(1600), trickle).await;
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let (status, error) = parse_error(&response);
    assert_eq!(status, 503, "{response}");
    assert_eq!(error.error, "request_timeout");
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn health_answers_while_a_thousand_idle_connections_are_held() {
    // The default cap (512), and heads allowed 30 s: the flood is held.
    let app = spawn_app_with(|s| s.header_timeout = Duration::from_secs(30)).await;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(connect(&app).await);
    }
    // Connections beyond the cap that send nothing are closed within a
    // second, so the spare slots are free again for a probe.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let started = Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(2), app.get("/api/health"))
        .await
        .expect("health answered within 2 s");
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Anything else over the cap is a quick 503 in the usual shape. (A
    // new client: the test app's own keeps the connection it signed in on,
    // which is within the cap.)
    let over_cap = app
        .anonymous()
        .get(format!("{}/api/hosts/", app.address))
        .send();
    let response = tokio::time::timeout(Duration::from_secs(2), over_cap)
        .await
        .expect("an answer within 2 s")
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "too_many_connections");
    assert!(error.message.contains("512"), "{}", error.message);

    // The first connections are still served: they were held, not dropped.
    let mut first = idle.swap_remove(0);
    first
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (response, _) = read_until_closed(&mut first, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // Once the flood ends, everything is served again.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get_hosts().await;
        if response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused after the flood");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn stopping_ends_within_the_grace_despite_a_slow_upload() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::with_data_dir(dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    settings.body_timeout = Duration::from_secs(60);
    settings.request_timeout = Duration::from_secs(600);
    settings.shutdown_grace = Duration::from_secs(1);
    let application = Application::build(settings).await.unwrap();
    let port = application.port();
    let key = application
        .state()
        .agent_keys
        .create(Some("host-a"), "test", chrono::Utc::now())
        .await
        .unwrap()
        .key;
    let key = secrecy::ExposeSecret::expose_secret(&key).to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));

    let mut upload = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    upload
        .write_all(
            format!(
                "POST /api/processes/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(8), server)
        .await
        .expect("the server stopped within 8 s")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let (_, closed) = read_until_closed(&mut upload, Duration::from_secs(2)).await;
    assert!(closed, "the upload's connection was left open");
}

#[tokio::test]
async fn a_host_over_its_rate_gets_429_and_others_do_not() {
    let app = spawn_app_with(|s| {
        s.ingest_burst = 3;
        s.ingest_per_second = 1;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            app.post_snapshot(&sample_snapshot("busy", 1))
                .await
                .status(),
            201
        );
    }
    let response = app.post_snapshot(&sample_snapshot("busy", 1)).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let error: ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "rate_limited");
    assert!(error.message.contains("\"busy\""), "{}", error.message);

    assert_eq!(
        app.post_snapshot(&sample_snapshot("calm", 1))
            .await
            .status(),
        201
    );
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        app.post_snapshot(&sample_snapshot("busy", 1))
            .await
            .status(),
        201
    );
}
