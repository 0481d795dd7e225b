//! The `Host` header must name this server. A page on another site can
//! make its own name resolve to 127.0.0.1 (DNS rebinding) and then read
//! from a server on this machine as if it were its own site; the one thing
//! it cannot change is the name the browser puts in `Host`. So a request
//! addressed to a name the server does not know is refused.
//!
//! Known names: any IP address (a rebinding attack needs a name), the
//! listen address, `localhost`, this machine's hostname, and the names in
//! the `allowed_hosts` setting (a reverse proxy's). The port is not
//! compared: behind a proxy it is the proxy's.

use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::startup::AppState;

/// The names requests may be addressed to, lower case.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    names: Vec<String>,
}

impl KnownHosts {
    /// `localhost`, this machine's hostname and `allowed`.
    pub fn new(allowed: &[String]) -> Self {
        let mut names = vec!["localhost".to_owned()];
        if let Ok(name) = sysinfo::System::host_name() {
            names.push(name.trim().to_lowercase());
        }
        names.extend(
            allowed
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_lowercase()),
        );
        names.retain(|n| !n.is_empty());
        Self { names }
    }

    /// Whether a `Host` header value names this server.
    pub fn allows(&self, host: &str) -> bool {
        let name = name_of(host);
        if name.parse::<std::net::IpAddr>().is_ok() {
            return true;
        }
        let name = name.trim_end_matches('.').to_lowercase();
        self.names.contains(&name)
    }
}

/// The host part of `Host` (without the port; an IPv6 address without its
/// brackets).
fn name_of(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Refuses requests whose `Host` names another server, except what agents
/// and monitors call: they authenticate with a key or the enrollment
/// secret, or read nothing, and are often pointed at a name the server was
/// never told about.
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let exempt = (request.method() == Method::POST
        && (path == "/api/processes/" || path == "/api/enroll/"))
        || path == "/api/health";
    if !exempt {
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()))
            .unwrap_or("");
        if !state.known_hosts.allows(host) {
            return ApiError::ForeignHost(host.to_owned()).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_localhost_and_allowed_names_pass_others_do_not() {
        let known = KnownHosts::new(&["procmon.example.org".to_owned()]);
        for good in [
            "127.0.0.1:8000",
            "[::1]:8000",
            "192.168.1.20",
            "localhost:8000",
            "LOCALHOST",
            "procmon.example.org",
            "Procmon.Example.Org.:443",
        ] {
            assert!(known.allows(good), "{good}");
        }
        for bad in [
            "evil.example:8000",
            "",
            "localhost.evil.example",
            "example.org",
        ] {
            assert!(!known.allows(bad), "{bad}");
        }
    }
}
