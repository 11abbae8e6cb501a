//! `--trusted-proxies`: the client address of a request that came through a trusted
//! reverse proxy, from `Forwarded` (RFC 7239) or `X-Forwarded-For`.
//!
//! Only a peer inside one of the ranges is believed; from anyone else both headers are
//! ignored (anyone can send them). The chain is read from the right: each hop a trusted
//! proxy appended is skipped while it is itself a trusted proxy, and the first address that
//! is not is the client. An address that cannot be read (`unknown`, an obfuscated name)
//! ends the walk at the proxy that reported it.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        TrustedProxies(ranges)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_addr(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let hops = forwarded_for(headers).unwrap_or_else(|| x_forwarded_for(headers));
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(addr) = hop else { break };
            client = *addr;
            if !self.trusts(addr.ip()) {
                break;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for=` values of every `Forwarded` header, in order; `None` without the header.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<SocketAddr>>> {
    let mut hops = Vec::new();
    let mut any = false;
    for value in headers.get_all(axum::http::header::FORWARDED) {
        any = true;
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            });
            if let Some(node) = node {
                hops.push(parse_node(node.trim_matches('"')));
            }
        }
    }
    any.then_some(hops)
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<SocketAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| {
            v.to_str()
                .map(|s| s.split(',').map(|h| parse_node(h.trim())).collect())
                .unwrap_or_else(|_| vec![None])
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<SocketAddr> {
    if let Ok(a) = node.parse::<SocketAddr>() {
        return Some(SocketAddr::new(canonical(a.ip()), a.port()));
    }
    let bare = node.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(canonical(ip), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec![
            crate::config::parse_cidr("10.0.0.0/8").unwrap(),
            crate::config::parse_cidr("127.0.0.1").unwrap(),
        ])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(proxies().client_addr(peer, &h), peer);
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let peer: SocketAddr = "10.1.1.1:5000".parse().unwrap();
        let p = proxies();
        // A client-supplied "1.1.1.1" on the left is not believed: 198.51.100.7 reached
        // the trusted proxy 10.2.2.2 first.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.2.2.2")]);
        assert_eq!(p.client_addr(peer, &h).ip(), ip("198.51.100.7"));
        let h = headers(&[
            ("forwarded", "for=1.1.1.1"),
            (
                "forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.3.3.3",
            ),
        ]);
        assert_eq!(p.client_addr(peer, &h).ip(), ip("2001:db8::7"));
        // Forwarded wins over X-Forwarded-For when both are there.
        let h = headers(&[
            ("forwarded", "for=192.0.2.5"),
            ("x-forwarded-for", "192.0.2.6"),
        ]);
        assert_eq!(p.client_addr(peer, &h).ip(), ip("192.0.2.5"));
        // Unreadable: the proxy that reported it.
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(p.client_addr(peer, &h), peer);
        let h = headers(&[("x-forwarded-for", "_hidden, 10.4.4.4")]);
        assert_eq!(p.client_addr(peer, &h).ip(), ip("10.4.4.4"));
        // No header: the peer itself.
        assert_eq!(p.client_addr(peer, &HeaderMap::new()), peer);
        // An IPv4-mapped peer is its IPv4 address.
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:80".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "192.0.2.9")]);
        assert_eq!(p.client_addr(mapped, &h).ip(), ip("192.0.2.9"));
    }

    #[test]
    fn ranges_and_single_addresses_parse() {
        assert!(crate::config::parse_cidr("192.168.0.0/16").is_ok());
        assert!(crate::config::parse_cidr("::1").is_ok());
        assert!(crate::config::parse_cidr("fd00::/8").is_ok());
        assert!(crate::config::parse_cidr("10.0.0.0/33").is_err());
        assert!(crate::config::parse_cidr("proxy.local").is_err());
    }
}
