//! Where other machines can reach the server, to tell people when it
//! listens on every network (0.0.0.0 or ::): the loopback URL it prints
//! first works only on this machine.

use std::net::{IpAddr, SocketAddr, UdpSocket};

/// URLs for other machines (`scheme` is "http" or "https"): this machine's
/// address on its default route and its hostname. Empty unless `listen` is
/// a wildcard address.
pub fn for_other_machines(listen: SocketAddr, scheme: &str) -> Vec<String> {
    if !listen.ip().is_unspecified() {
        return Vec::new();
    }
    let port = listen.port();
    let mut urls = Vec::new();
    if let Some(ip) = outward_ip(listen.ip()) {
        urls.push(format!("{scheme}://{}/", SocketAddr::new(ip, port)));
    }
    if let Some(name) = sysinfo::System::host_name()
        .ok()
        .filter(|n| !n.trim().is_empty())
    {
        urls.push(format!("{scheme}://{}:{port}/", name.trim()));
    }
    urls
}

/// The address this machine sends from towards other networks. Connecting
/// a UDP socket sends nothing: it only picks the route (to a documentation
/// address, RFC 5737 / RFC 3849). A `::` listener takes IPv4 too, so IPv4
/// is tried when IPv6 has no route.
fn outward_ip(wildcard: IpAddr) -> Option<IpAddr> {
    let v4 = || route_from("0.0.0.0:0", "192.0.2.1:9");
    let found = if wildcard.is_ipv4() {
        v4()
    } else {
        route_from("[::]:0", "[2001:db8::1]:9").or_else(v4)
    };
    found.filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

fn route_from(bind: &str, target: &str) -> Option<IpAddr> {
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}
