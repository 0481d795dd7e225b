//! A real HTTP receiver on a free local port: it records every request
//! (path, headers, body) and answers with the status it is set to.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("a UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<Mutex<u16>>,
}

/// The receiver; it stops with the test's runtime.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Shared,
}

impl Receiver {
    /// Listens on a free port, answering 200.
    pub async fn start() -> Self {
        let shared = Shared::default();
        *shared.status.lock().unwrap() = 200;
        let app = Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, shared }
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Answers `status` from now on.
    pub fn answer(&self, status: u16) {
        *self.shared.status.lock().unwrap() = status;
    }

    /// Waits up to `within` for `count` requests, and returns them all.
    pub async fn wait_for(&self, count: usize, within: std::time::Duration) -> Vec<Received> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || std::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

async fn record(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    shared.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let status = *shared.status.lock().unwrap();
    (
        StatusCode::from_u16(status).unwrap(),
        if status == 200 {
            "ok"
        } else {
            "the receiver is down for maintenance"
        },
    )
}
