//! Building and running the server: bind, open the store, serve.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::HOST;
use axum::http::uri::Authority;
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::agent_keys::AgentKeys;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::error::ApiError;
use crate::host_check::KnownHosts;
use crate::rate_limit::RateLimiter;
use crate::serve::{ConnectionLimits, Https};
use crate::sign_in_throttle::SignInThrottle;
use crate::store::accounts::SessionLifetime;
use crate::store::{AccountStore, Store};

/// Failed sign-ins allowed per user name and per client address within
/// [`SIGN_IN_WINDOW`].
pub const SIGN_IN_FAILURES: usize = 5;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(60);
use crate::tls::ServerTls;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Where snapshots are kept.
    pub store: Arc<dyn Store>,
    /// Users, sessions and sign-in links (the same database as `store`).
    pub accounts: Arc<dyn AccountStore>,
    /// Agents' keys and enrollment.
    pub agent_keys: AgentKeys,
    /// Reading needs no sign-in (the `no_login` setting; loopback only).
    pub no_login: bool,
    /// How long sessions last.
    pub session_lifetime: SessionLifetime,
    /// The names requests may be addressed to (DNS rebinding guard).
    pub known_hosts: Arc<KnownHosts>,
    /// Failed sign-ins per user name and per client address (kept in the
    /// database, shared with the other servers on it).
    pub sign_in_throttle: Arc<SignInThrottle>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Where "now" comes from (tests move it).
    pub clock: Arc<dyn Clock>,
    /// Longest gap while a request body arrives.
    pub body_timeout: Duration,
    /// Longest time to read and answer one request.
    pub request_timeout: Duration,
    /// Snapshots each client may send: a burst, then a steady rate (kept
    /// in the database, shared with the other servers on it).
    pub ingest_limiter: Arc<RateLimiter>,
    /// True when the server speaks HTTPS (`tls_cert`, `tls_key`): cookies
    /// it sets can then be marked `Secure`.
    pub tls: bool,
    /// Each host's latest snapshot and its stream of changes.
    pub live: Arc<crate::live::Live>,
    /// The host the embedded agent reports, once it has.
    pub embedded: Arc<crate::api::ingest::EmbeddedHost>,
    /// How long snapshots are kept: reads answered from memory show nothing
    /// older, as the store would not.
    pub raw_retention: chrono::TimeDelta,
    /// What `GET /metrics` answers.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The bearer token that reads `GET /metrics` (the `metrics_token`
    /// setting), if one is set; admins' sessions read them either way.
    pub metrics_token: Option<crate::metrics::access::MetricsToken>,
    /// Alert rules, evaluated against what this server stores.
    pub alerts: Arc<crate::alerts::Alerts>,
    /// Notification channels and the queue of deliveries to them.
    pub channels: Arc<dyn crate::store::ChannelStore>,
    /// Sends notifications (the queue's worker and the test button).
    pub notifier: Arc<crate::notify::Notifier>,
    /// Actions on processes: the audit log and the agents' queue.
    pub actions: Arc<dyn crate::store::ActionStore>,
    /// Signs actions with the database's key, whose public half agents pin.
    pub action_signer: Arc<crate::actions::ActionSigner>,
}

/// The whole HTTP surface: `/api/…` and the page at `/`.
pub fn app(state: AppState) -> Router {
    let (api, _document) = crate::api::router().split_for_parts();
    Router::new()
        .merge(api)
        .route("/api", axum::routing::any(crate::api::no_route))
        .route("/api/", axum::routing::any(crate::api::no_route))
        .route("/api/{*rest}", axum::routing::any(crate::api::no_route))
        .method_not_allowed_fallback(crate::api::method_not_allowed)
        .fallback(crate::web::serve)
        // The limit applies to the body as the handler reads it, after
        // decompression: a small zstd or gzip bomb is cut off at the limit
        // (413), never inflated whole.
        .layer(DefaultBodyLimit::max(state.body_limit))
        // Agents may send `Content-Encoding: zstd` (or gzip): a snapshot's
        // JSON is mostly repeated text.
        .layer(RequestDecompressionLayer::new())
        .layer(middleware::from_fn(known_encoding))
        // A body refused unread is read before the answer goes, so that the
        // connection closes cleanly and a proxy passes the answer on.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::drain::drain_unread,
        ))
        .layer(RequestBodyTimeoutLayer::new(state.body_timeout))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::host_check::check_host,
        ))
        // A process listing is ~0.5 kB per process, and the page fetches it
        // every few seconds: gzip makes that a tenth over a real network.
        .layer(CompressionLayer::new())
        // Outside the layers above, to count their refusals too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::layer::observe,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Refuses, with the API's JSON error, a body in an encoding the
/// decompression layer does not speak (it would answer a bare 415).
async fn known_encoding(request: Request, next: middleware::Next) -> axum::response::Response {
    let encoding = request
        .headers()
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity" | "gzip" | "zstd") => next.run(request).await,
        Some(other) => ApiError::UnsupportedEncoding(other.to_owned()).into_response(),
    }
}

/// What connections beyond the cap get: `/api/health` as usual, so that
/// monitoring still sees a live server, and a 503 for anything else.
fn full_house(state: AppState, max_connections: usize) -> Router {
    Router::new()
        .route("/api/health", get(crate::api::health::health))
        .fallback(move || async move {
            ApiError::TooManyConnections {
                max: max_connections,
            }
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::layer::observe,
        ))
        .with_state(state)
}

/// What a plain-HTTP request to the HTTPS port gets: a 400 naming the
/// https:// URL to use, with the host and port the client asked for (from
/// `Host`), else the ones in `local_url`.
fn https_required(local_url: &str, port: u16) -> Router {
    let fallback = local_url
        .strip_prefix("https://")
        .unwrap_or(local_url)
        .trim_end_matches('/')
        .to_owned();
    Router::new().fallback(move |headers: HeaderMap| async move {
        let asked = headers
            .get(HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| host.parse::<Authority>().ok())
            .map(|host| format!("{}:{}", host.host(), host.port_u16().unwrap_or(port)));
        ApiError::HttpsRequired(format!("https://{}/", asked.unwrap_or(fallback)))
    })
}

/// Answers 503 for a request not answered within `request_timeout`, the
/// bound on everything else (a body that trickles, a slow database).
async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(state.request_timeout).into_response(),
    }
}

/// A bound, ready server; [`Application::run_until_stopped`] serves.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
    settings: Settings,
    /// The enrollment secret made at this (first) start, to show once.
    new_enroll_secret: Option<SecretString>,
    first_signin_link: Option<SecretString>,
    tls: Option<ServerTls>,
}

impl Application {
    /// Reads the TLS certificate and key (if set), opens the database
    /// (running its migrations), binds the listen address (port 0: any free
    /// port), opens enrollment on the first start, and on a database with
    /// no user creates the admin and a one-time link that signs them in.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // First, so that a wrong file stops the server before it creates
        // anything.
        let tls = crate::tls::files(settings.tls_cert.as_deref(), settings.tls_key.as_deref())?
            .map(|(cert, key)| crate::tls::load(cert, key))
            .transpose()?;
        crate::private::create_dir(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        let backend = crate::store::open(&settings.database).await?;
        let agent_keys = AgentKeys::new(backend.keys.clone());
        // The first start opens enrollment: the secret is shown once, and
        // `procmon-server enroll-secret rotate` makes a new one. Once made,
        // none is made again by a start: revoked means closed.
        let new_enroll_secret = if agent_keys.store().enroll_secret_made().await? {
            None
        } else {
            Some(agent_keys.rotate_enroll_secret(chrono::Utc::now()).await?)
        };
        // The embedded agent hands its snapshots over in process and needs
        // no key; those that earlier versions made for it (in memory only,
        // a new one each start) are revoked.
        if settings.embedded_agent {
            agent_keys
                .store()
                .revoke_keys_of(
                    None,
                    Some(crate::agent_keys::EMBEDDED_LABEL),
                    "",
                    chrono::Utc::now(),
                )
                .await?;
        }
        let listener = TcpListener::bind(settings.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (is another procmon-server running? \
                     --listen picks another address)",
                settings.listen
            )
        })?;
        let address = listener.local_addr()?;
        let first_signin_link = crate::accounts::first_start(
            backend.accounts.as_ref(),
            Utc::now(),
            &local_url(address, if tls.is_some() { "https" } else { "http" }),
        )
        .await
        .context("cannot create the first admin")?;
        let alerts = Arc::new(crate::alerts::Alerts::new(
            backend.alerts.clone(),
            Arc::clone(&backend.store),
        ));
        alerts.set_page_url(&local_url(
            address,
            if tls.is_some() { "https" } else { "http" },
        ));
        alerts
            .reload(Utc::now())
            .await
            .context("cannot read the alert rules")?;
        let action_signer =
            crate::actions::ActionSigner::load(backend.actions.as_ref(), Utc::now())
                .await
                .context("cannot read or make the key that signs actions on processes")?;
        let state = AppState {
            store: backend.store,
            accounts: backend.accounts,
            agent_keys,
            no_login: settings.no_login,
            session_lifetime: settings.session(),
            known_hosts: Arc::new(KnownHosts::new(&settings.allowed_hosts)),
            sign_in_throttle: Arc::new(SignInThrottle::new(
                backend.limits.clone(),
                SIGN_IN_FAILURES,
                SIGN_IN_WINDOW,
            )),
            body_limit: settings.body_limit,
            clock: Arc::new(SystemClock),
            body_timeout: settings.body_timeout,
            request_timeout: settings.request_timeout,
            ingest_limiter: Arc::new(RateLimiter::new(
                backend.limits,
                settings.ingest_per_second,
                settings.ingest_burst,
            )),
            tls: tls.is_some(),
            live: Arc::new(crate::live::Live::new()),
            embedded: Arc::default(),
            raw_retention: chrono::TimeDelta::from_std(settings.retention)
                .unwrap_or(chrono::TimeDelta::MAX),
            metrics: Arc::default(),
            metrics_token: settings
                .metrics_token
                .as_ref()
                .map(crate::metrics::access::MetricsToken::new),
            alerts,
            channels: backend.channels,
            notifier: Arc::new(crate::notify::Notifier::new()?),
            actions: backend.actions,
            action_signer: Arc::new(action_signer),
        };
        Ok(Self {
            listener,
            address,
            new_enroll_secret,
            state,
            settings,
            first_signin_link,
            tls,
        })
    }

    /// The port actually bound (the chosen one when the settings said 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// "https" when the server speaks HTTPS, else "http".
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// A URL for reaching the server from this machine, ending in `/`. A
    /// wildcard listen address (0.0.0.0, ::) is reached through loopback.
    pub fn local_url(&self) -> String {
        local_url(self.address, self.scheme())
    }

    /// On the first start (no user in the database): the one-time link
    /// that signs the new admin in, to be shown once.
    pub fn first_signin_link(&self) -> Option<&SecretString> {
        self.first_signin_link.as_ref()
    }

    /// The enrollment secret made at this start (the first), if one was:
    /// it is not kept anywhere, so this is the one time to show it.
    pub fn new_enroll_secret(&self) -> Option<&SecretString> {
        self.new_enroll_secret.as_ref()
    }

    /// What the handlers share; tests use it to reach the store.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Makes the server take "now" from `clock` (tests move time with it).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.state.clock = clock;
    }

    /// Serves until Ctrl-C (or SIGTERM on Unix), then stops gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves, sweeps old snapshots and (if enabled) runs the embedded
    /// agent, until `shutdown` completes; then lets open requests finish,
    /// stops the agent and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = watch::channel(false);
        // The page's files gzipped before the first visitor asks, not while
        // it waits (about 20 ms of work, once).
        tokio::task::spawn_blocking(crate::web::compress_all);
        let retention = tokio::spawn(crate::retention::run(
            Arc::clone(&self.state.store),
            Arc::clone(&self.state.clock),
            self.settings.history_retention(),
            self.settings.maintenance_every,
            Arc::clone(&self.state.metrics),
        ));
        let alerts = tokio::spawn(
            Arc::clone(&self.state.alerts)
                .run(Arc::clone(&self.state.clock), self.state.raw_retention),
        );
        let sessions = tokio::spawn(crate::accounts::sweep_ended(
            Arc::clone(&self.state.accounts),
            Arc::clone(&self.state.clock),
            self.state.session_lifetime,
            self.settings.maintenance_every,
        ));
        let notifications = tokio::spawn(crate::notify::worker::run(
            Arc::clone(&self.state.channels),
            Arc::clone(&self.state.notifier),
            Arc::clone(&self.state.clock),
            Arc::clone(&self.state.metrics),
            self.state.alerts.queued(),
        ));
        // On a database other servers share, their snapshots reach this
        // server's viewers too.
        let relay = self
            .state
            .store
            .stored_elsewhere()
            .map(|heard| tokio::spawn(crate::relay::run(self.state.clone(), heard)));
        let agent = self.settings.embedded_agent.then(|| {
            let pace = procmon_agent::Pace {
                interval: self.settings.embedded_agent_interval,
                full_every: procmon_agent::DEFAULT_FULL_EVERY,
            };
            let outbox = crate::embedded::InProcess::new(self.state.clone());
            let actions = embedded_actions(&self.settings, outbox.action_key());
            let mut stopped = stopped.clone();
            tokio::spawn(procmon_agent::run_with_actions(
                outbox,
                pace,
                actions,
                async move {
                    let _ = stopped.wait_for(|&s| s).await;
                },
            ))
        });

        let store = Arc::clone(&self.state.store);
        let limits = ConnectionLimits {
            header_timeout: self.settings.header_timeout,
            max_connections: self.settings.max_connections,
            shutdown_grace: self.settings.shutdown_grace,
        };
        let https = self.tls.as_ref().map(|tls| Https {
            acceptor: tls.acceptor.clone(),
            plain_http: https_required(&self.local_url(), self.address.port()),
        });
        let live = Arc::clone(&self.state.live);
        crate::serve::serve(
            self.listener,
            app(self.state.clone()),
            full_house(self.state, limits.max_connections),
            https,
            limits,
            async move {
                shutdown.await;
                // Viewers' event streams never finish by themselves.
                live.stop_streams();
                let _ = stop.send(true);
            },
        )
        .await;

        retention.abort();
        alerts.abort();
        sessions.abort();
        notifications.abort();
        if let Some(relay) = relay {
            relay.abort();
        }
        if let Some(agent) = agent {
            match agent.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "the embedded agent failed"),
                Err(e) => tracing::warn!(error = %e, "the embedded agent panicked"),
            }
        }
        store.close().await;
        Ok(())
    }
}

/// A URL for reaching a server bound to `address` from this machine,
/// ending in `/`. A wildcard address (0.0.0.0, ::) is reached through
/// loopback.
pub fn local_url(address: SocketAddr, scheme: &str) -> String {
    let ip = match address.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}/", SocketAddr::new(ip, address.port()))
}

/// Ctrl-C, or SIGTERM (how service managers and `docker stop` ask).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// What the embedded agent may do to this machine's processes: the kinds
/// `embedded_agent_actions` lists (checked when the settings were), with
/// this database's own key pinned, as enrollment pins it for an agent.
fn embedded_actions(
    settings: &Settings,
    action_key: &str,
) -> procmon_agent::actions::ActionOptions {
    use procmon_agent::actions::{ActionOptions, ActionSettings, PinnedKey, ServerKey};
    let allow = settings.embedded_agent_kinds().unwrap_or_default();
    let pinned = match ServerKey::parse(action_key) {
        Ok(key) => PinnedKey::given(key),
        Err(e) => {
            // Without it every action is refused ("no pinned key"), saying so.
            tracing::error!("the embedded agent cannot pin this server's action key: {e}");
            PinnedKey::default()
        }
    };
    ActionOptions {
        settings: ActionSettings {
            enabled: !allow.is_empty(),
            allow,
        },
        pinned,
    }
}
