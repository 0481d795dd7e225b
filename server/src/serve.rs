//! The accept loop. No client can hold the server: a connection has a
//! bounded time to finish its TLS handshake (when HTTPS is on) and to send
//! its request head (which also bounds how long an idle keep-alive
//! connection stays open), the number of connections is capped, and
//! stopping waits a bounded time for requests in flight.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Connections taken beyond the cap, each only long enough to answer one
/// request: `/api/health`, so that monitoring still sees a live server, or
/// a 503 saying the server is full. Past these, connections are closed at
/// once.
pub const FULL_HOUSE_SLOTS: usize = 32;

/// How long a connection beyond the cap may take to send its request head,
/// and then to be answered.
const FULL_HOUSE_HEAD_TIMEOUT: Duration = Duration::from_secs(1);
const FULL_HOUSE_DEADLINE: Duration = Duration::from_secs(5);

/// How long a plain-HTTP client on the HTTPS port may take to be told so.
const WRONG_SCHEME_DEADLINE: Duration = Duration::from_secs(5);

/// HTTPS on the loop's port.
#[derive(Clone)]
pub struct Https {
    /// Does the handshakes.
    pub acceptor: TlsAcceptor,
    /// Answers a plain-HTTP request that came to the HTTPS port (one per
    /// connection), saying to use https.
    pub plain_http: Router,
}

/// How the loop bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest time to receive a request head; a connection waiting for its
    /// next request counts as receiving one. With HTTPS the handshake gets
    /// as long again, before the head.
    pub header_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long stopping waits for requests in flight before closing them.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, over TLS when
/// `https` is given. Connections beyond the cap are served by `full_house`,
/// one request each.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    full_house: Router,
    https: Option<Https>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let spare = Arc::new(Semaphore::new(FULL_HOUSE_SLOTS));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let http = Arc::new(http);
    let mut busy_http = http1::Builder::new();
    busy_http
        .timer(TokioTimer::new())
        .header_read_timeout(FULL_HOUSE_HEAD_TIMEOUT)
        .keep_alive(false);
    let busy_http = Arc::new(busy_http);
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
            let (http, busy_http, app, https) = (
                Arc::clone(&http),
                Arc::clone(&busy_http),
                app,
                https.clone(),
            );
            // Taken now: a connection still in its handshake when stopping
            // begins is told to close as soon as it is served.
            let watcher = graceful.watcher();
            connections.spawn(async move {
                match open(stream, https.as_ref(), limits.header_timeout).await {
                    Opened::Ready(stream) => {
                        let connection = watcher.watch(serve_connection(&http, stream, &app));
                        if let Err(e) = connection.await {
                            tracing::debug!(error = %e, "connection ended");
                        }
                    }
                    Opened::PlainHttpOnHttps(stream, plain_http) => {
                        // One short answer, then closed, as beyond the cap.
                        let connection = serve_connection(&busy_http, stream, &plain_http);
                        let _ = tokio::time::timeout(WRONG_SCHEME_DEADLINE, connection).await;
                    }
                    Opened::Gone => {}
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
            let (busy_http, full_house, https) =
                (Arc::clone(&busy_http), full_house.clone(), https.clone());
            connections.spawn(async move {
                let answer = async {
                    match open(stream, https.as_ref(), FULL_HOUSE_HEAD_TIMEOUT).await {
                        Opened::Ready(stream) => {
                            let _ = serve_connection(&busy_http, stream, &full_house).await;
                        }
                        Opened::PlainHttpOnHttps(stream, plain_http) => {
                            let _ = serve_connection(&busy_http, stream, &plain_http).await;
                        }
                        Opened::Gone => {}
                    }
                };
                let _ = tokio::time::timeout(FULL_HOUSE_DEADLINE, answer).await;
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

fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    http: &http1::Builder,
    stream: S,
    app: &Router,
) -> http1::Connection<TokioIo<S>, TowerToHyperService<Router>> {
    http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()))
}

/// What a new connection turned out to be.
enum Opened {
    /// Ready for HTTP: plain, or TLS after its handshake.
    Ready(Stream),
    /// Plain HTTP sent to the HTTPS port, and the router that says so.
    PlainHttpOnHttps(TcpStream, Router),
    /// Closed, failed its handshake, or sent nothing in time.
    Gone,
}

/// Without `https`, the stream as it is. With it, the TLS handshake, which
/// must be done within `within` of the accept: a client that opens a
/// connection and sends nothing is dropped then. A first byte that cannot start a TLS
/// record is plain HTTP: it gets an answer it can read instead of a reset.
async fn open(stream: TcpStream, https: Option<&Https>, within: Duration) -> Opened {
    let Some(https) = https else {
        return Opened::Ready(Stream::Plain(stream));
    };
    let handshake = async move {
        let mut first = [0u8; 1];
        if !matches!(stream.peek(&mut first).await, Ok(1)) {
            return Opened::Gone;
        }
        if first[0] != crate::tls::HANDSHAKE_RECORD {
            return Opened::PlainHttpOnHttps(stream, https.plain_http.clone());
        }
        match https.acceptor.accept(stream).await {
            Ok(stream) => Opened::Ready(Stream::Tls(Box::new(stream))),
            Err(e) => {
                // Usually a client that does not trust the certificate: it
                // says so on its side.
                tracing::debug!(error = %e, "TLS handshake failed");
                Opened::Gone
            }
        }
    };
    match tokio::time::timeout(within, handshake).await {
        Ok(opened) => opened,
        Err(_) => {
            tracing::debug!("no TLS handshake within {within:?}: connection closed");
            Opened::Gone
        }
    }
}

/// A connection, plain or TLS, as one type for hyper.
enum Stream {
    Plain(TcpStream),
    // Boxed: the TLS state is a few kB, the plain stream a few words.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
