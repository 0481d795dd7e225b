//! The accept loop. No client can hold the server: a connection has a
//! bounded time to send its request head (which also bounds how long an
//! idle keep-alive connection stays open), the number of connections is
//! capped, and stopping waits a bounded time for requests in flight.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Connections taken beyond the cap, each only long enough to answer one
/// request: `/api/health`, so that monitoring still sees a live server, or
/// a 503 saying the server is full. Past these, connections are closed at
/// once.
pub const FULL_HOUSE_SLOTS: usize = 32;

/// How long a connection beyond the cap may take to send its request head,
/// and then to be answered.
const FULL_HOUSE_HEAD_TIMEOUT: Duration = Duration::from_secs(1);
const FULL_HOUSE_DEADLINE: Duration = Duration::from_secs(5);

/// How the loop bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest time to receive a request head; a connection waiting for its
    /// next request counts as receiving one.
    pub header_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long stopping waits for requests in flight before closing them.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes. Connections beyond
/// the cap are served by `full_house`, one request each.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    full_house: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let spare = Arc::new(Semaphore::new(FULL_HOUSE_SLOTS));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut busy_http = http1::Builder::new();
    busy_http
        .timer(TokioTimer::new())
        .header_read_timeout(FULL_HOUSE_HEAD_TIMEOUT)
        .keep_alive(false);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut last_full_warning: Option<Instant> = None;

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: wait for connections to end
                    // instead of spinning on the same error.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        if let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
            // The client's address, for handlers that count per client
            // (failed sign-ins), as axum's `ConnectInfo`.
            let app = app
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
            let connection = graceful.watch(serve_connection(&http, stream, &app));
            connections.spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended");
                }
                drop(permit);
            });
        } else {
            if last_full_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                last_full_warning = Some(Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached: new connections get 503 until some end"
                );
            }
            let Ok(permit) = Arc::clone(&spare).try_acquire_owned() else {
                continue;
            };
            let connection = serve_connection(&busy_http, stream, &full_house);
            connections.spawn(async move {
                let _ = tokio::time::timeout(FULL_HOUSE_DEADLINE, connection).await;
                drop(permit);
            });
        }
    }

    drop(listener);
    tracing::info!(
        "stopping: finishing open requests (at most {})",
        humantime::format_duration(limits.shutdown_grace)
    );
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still open after {}: closing them",
            humantime::format_duration(limits.shutdown_grace)
        );
    }
    connections.shutdown().await;
}

fn serve_connection(
    http: &http1::Builder,
    stream: TcpStream,
    app: &Router,
) -> http1::Connection<TokioIo<TcpStream>, TowerToHyperService<Router>> {
    http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()))
}
