//! The `Host` check against DNS rebinding: a web page that makes its own name resolve
//! to 127.0.0.1 could otherwise drive a router listening on loopback from the victim's
//! browser (spending the quota, reading the dashboard). A request naming a host the
//! router does not answer for is refused before anything else is read.

use axum::http::{HeaderMap, header};
use std::net::{IpAddr, SocketAddr};

/// Which `Host` values are accepted.
#[derive(Clone, Debug)]
pub struct HostCheck {
    /// Host names accepted besides IP addresses, lowercase; `*.example.com` matches subdomains.
    allowed: Vec<String>,
    /// Whether any name is accepted (no list, not listening on loopback).
    any: bool,
}

impl HostCheck {
    /// The check for a server on `listen` with the configured `allowed` names: with
    /// none, a loopback server accepts IP addresses and `localhost` only, any other
    /// server any name (it is reached through a real name).
    pub fn new(listen: SocketAddr, allowed: &[String]) -> Self {
        let mut names: Vec<String> = allowed.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        if listen.ip().is_loopback() || !names.is_empty() {
            names.extend(["localhost".to_owned(), "*.localhost".to_owned()]);
        }
        HostCheck { any: allowed.is_empty() && !listen.ip().is_loopback(), allowed: names }
    }

    /// Whether a request with these headers may be served. No `Host` (HTTP/1.0) passes.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        if self.any {
            return true;
        }
        let Some(host) = headers.get(header::HOST) else { return true };
        let Ok(host) = host.to_str() else { return false };
        let name = strip_port(host.trim());
        if name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok() {
            return true;
        }
        // Compared without case and without a copy: this runs on every request.
        let name = name.trim_end_matches('.');
        self.allowed.iter().any(|a| match a.strip_prefix("*.") {
            Some(parent) => {
                // `get`, not indexing: a cut inside a character is no match, never a panic.
                let cut = name.len().saturating_sub(parent.len());
                let (sub, tail) = (name.get(..cut).unwrap_or(""), name.get(cut..).unwrap_or(""));
                sub.len() > 1 && sub.ends_with('.') && tail.eq_ignore_ascii_case(parent)
            }
            None => a.eq_ignore_ascii_case(name),
        })
    }
}

impl Default for HostCheck {
    /// The check of a server on the default (loopback) address with no list.
    fn default() -> Self {
        HostCheck::new(router_settings::DEFAULT_LISTEN, &[])
    }
}

/// `name:port` or `[v6]:port` without the port.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::HostCheck;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn check(listen: &str, allowed: &[&str], host: &str, expected: bool) {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let c = HostCheck::new(listen.parse().expect("addr"), &allowed);
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).expect("header"));
        assert_eq!(c.accepts(&headers), expected, "{listen} {allowed:?} {host}");
    }

    #[test]
    fn loopback_servers_refuse_other_names() {
        check("127.0.0.1:8080", &[], "127.0.0.1:8080", true);
        check("127.0.0.1:8080", &[], "[::1]:8080", true);
        check("127.0.0.1:8080", &[], "localhost:8080", true);
        check("127.0.0.1:8080", &[], "LOCALHOST.", true);
        check("127.0.0.1:8080", &[], "app.localhost", true);
        check("127.0.0.1:8080", &[], "attacker.example:8080", false);
        check("127.0.0.1:8080", &[], "localhost.attacker.example", false);
        check("127.0.0.1:8080", &["router.lan"], "router.lan:8080", true);
        check("127.0.0.1:8080", &["*.lan"], "a.router.lan", true);
        check("127.0.0.1:8080", &["*.lan"], "lan", false);
    }

    #[test]
    fn other_servers_accept_any_name_unless_listed() {
        check("0.0.0.0:8080", &[], "router.example.com", true);
        check("0.0.0.0:8080", &["router.example.com"], "router.example.com:443", true);
        check("0.0.0.0:8080", &["router.example.com"], "evil.example", false);
        check("0.0.0.0:8080", &["router.example.com"], "10.0.0.2:8080", true);
        assert!(HostCheck::default().accepts(&HeaderMap::new()), "HTTP/1.0 without Host");
    }
}
