//! Time from a process exit on the agent's host to the webhook arriving:
//! a real server on SQLite with its embedded agent for this machine
//! (sampling every second), a `process_absent` rule on a command line that
//! tells a webhook, and a local receiver. Each sample starts the process
//! (the alert resolves), kills it, and times the kill to the firing
//! notification's arrival at the receiver.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use chrono::Utc;
use procmon_model::alerts::{AlertNotification, AlertState};
use procmon_model::channels::ChannelKind;
use procmon_server::config::Settings;
use procmon_server::startup::Application;
use procmon_server::store::channels::ChannelRecord;
use serde_json::json;

/// The agent's interval: the target is p99 under it plus 1 s.
pub const INTERVAL: Duration = Duration::from_secs(1);

type Arrivals = Arc<Mutex<Vec<(Instant, AlertState)>>>;

async fn record(State(arrivals): State<Arrivals>, body: axum::body::Bytes) {
    let at = Instant::now();
    if let Ok(notification) = serde_json::from_slice::<AlertNotification>(&body) {
        arrivals.lock().unwrap().push((at, notification.state));
    }
}

/// Waits for the `n`th notification (counting from 1); when it came, and
/// in which state.
async fn nth(arrivals: &Arrivals, n: usize) -> (Instant, AlertState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(&got) = arrivals.lock().unwrap().get(n - 1) {
            return got;
        }
        assert!(Instant::now() < deadline, "notification {n} never came");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A process of this machine's with `token` on its command line, in a
/// process group of its own so that killing the group leaves nothing.
fn spawn(token: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    std::process::Command::new("sh")
        .args(["-c", &format!("sleep 600; echo {token}")])
        .process_group(0)
        .spawn()
        .expect("sh starts")
}

fn kill(child: &mut std::process::Child) {
    // SAFETY: kill(2) on the child's own process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
}

/// `samples` exit-to-webhook times, and as many start-to-webhook ones.
pub async fn measure(samples: usize) -> (Vec<Duration>, Vec<Duration>) {
    let arrivals: Arrivals = Arc::default();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", receiver.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", post(record))
        .with_state(Arc::clone(&arrivals));
    let receiving = tokio::spawn(async move { axum::serve(receiver, app).await });

    let dir = tempfile::tempdir().expect("a temp dir");
    let mut settings = Settings::with_data_dir(dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = true;
    settings.embedded_agent_interval = INTERVAL;
    let application = Application::build(settings)
        .await
        .expect("the server builds");
    let state = application.state().clone();
    let now = Utc::now();
    state
        .channels
        .create_channel(&ChannelRecord {
            id: "hook".into(),
            name: "bench hook".into(),
            kind: ChannelKind::Webhook { url: hook },
            secret: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("a channel");
    let token = format!("procmon-latency-{}", uuid::Uuid::new_v4().simple());
    let spec = serde_json::from_value(json!({
        "name": "bench process runs",
        "condition": { "kind": "process_absent", "process": { "cmd": { "contains": token } } },
        "channels": ["hook"],
    }))
    .expect("a valid rule");
    super::rules::store(&state, "latency".into(), spec, now).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));

    // Nothing runs with the token yet: the rule fires first.
    let mut told = 1;
    assert_eq!(nth(&arrivals, told).await.1, AlertState::Firing);
    let mut exits = Vec::with_capacity(samples);
    let mut starts = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let mut child = spawn(&token);
        told += 1;
        let (at, what) = nth(&arrivals, told).await;
        assert_eq!(what, AlertState::Resolved);
        starts.push(at - started);
        // A second's pause, so the kill falls anywhere in the agent's interval.
        tokio::time::sleep(Duration::from_millis(
            300 + (told as u64 * 137) % INTERVAL.as_millis() as u64,
        ))
        .await;
        let killed = Instant::now();
        kill(&mut child);
        told += 1;
        let (at, what) = nth(&arrivals, told).await;
        assert_eq!(what, AlertState::Firing);
        exits.push(at - killed);
    }
    let _ = stop.send(());
    server.await.expect("the server task").expect("it stops");
    receiving.abort();
    (exits, starts)
}
