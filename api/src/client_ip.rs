//! The client's IP: the socket peer, or the right-most untrusted `X-Forwarded-For` hop when
//! the peer is one of `TRUSTED_PROXIES`. Rate limits and security logs key on it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::state::AppState;

/// The resolved client address, put in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Walks `X-Forwarded-For` from the right while hops are trusted proxies; the first hop that
/// is not is the client. A forged left part of the header is therefore never reached.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    // An IPv4 client reaching a dual-stack socket shows up as `::ffff:a.b.c.d`.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            // Garbage in the chain: trust nothing to its left.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// Resolves the client IP once per request and records it on the request span.
pub async fn resolve_client(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let ip = resolve(peer, request.headers(), &state.security.trusted_proxies);
    tracing::Span::current().record("client_ip", tracing::field::display(ip));
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", xff.parse().expect("header"));
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        assert_eq!(
            resolve(ip("203.0.113.7"), &headers("1.2.3.4"), &trusted),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let forged_then_real = headers("6.6.6.6, 198.51.100.9, 10.0.0.2");
        assert_eq!(
            resolve(ip("10.0.0.1"), &forged_then_real, &trusted),
            ip("198.51.100.9")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), &headers("6.6.6.6, not-an-ip"), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            resolve(
                ip("::ffff:10.0.0.1"),
                &headers("::ffff:198.51.100.9"),
                &trusted
            ),
            ip("198.51.100.9"),
            "IPv4-mapped addresses are IPv4"
        );
    }
}
