//! Who may use the admin surface (docs/protocol.md §14 decision 24). Every `/_emu/` request passes four checks, in
//! this order, and a refusal names the one that failed: the TCP peer is loopback; the `Host`
//! header (and the authority of an absolute request target) names this server by a loopback
//! name or address, so a web page on a DNS name pointed at 127.0.0.1 (DNS rebinding) gets
//! nothing; an `Origin` header, when present, is this server's own origin; and
//! `Sec-Fetch-Site` is not `cross-site`. Browsers send `Origin` on every cross-site POST, so
//! the last two stop cross-site request forgery, while curl and scripts (no `Origin`) pass.
//!
//! Loopback names are `localhost` and `*.localhost` (RFC 6761: they never leave the machine),
//! and loopback addresses are 127.0.0.0/8, `[::1]` and `[::ffff:127.x.x.x]`. A port, when
//! given, must be this server's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::uri::{Authority, Uri};
use http::{HeaderMap, HeaderValue};

/// Which check refused a request, and why, in a sentence for the 403 body and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub check: &'static str,
    pub message: String,
}

fn refuse(check: &'static str, message: String) -> Result<(), Refusal> {
    Err(Refusal { check, message })
}

/// Whether `peer` is a loopback address (IPv4-mapped IPv6 included).
pub fn loopback_ip(peer: IpAddr) -> bool {
    match peer {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether a URI host (`localhost`, `a.localhost`, `127.0.0.1`, `[::1]`; a trailing dot allowed)
/// is a loopback name or address.
pub fn loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<Ipv6Addr>()
            .is_ok_and(|ip| loopback_ip(IpAddr::V6(ip)));
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return v4.is_loopback();
    }
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host
            .strip_suffix(".localhost")
            .is_some_and(|label| !label.is_empty() && !label.ends_with('.'))
}

/// The names this server answers to, for messages.
fn own_names(port: Option<u16>) -> String {
    match port {
        Some(port) => format!(
            "localhost:{port}, 127.0.0.1:{port} or [::1]:{port} (any *.localhost name or \
             127.x.x.x address, port {port} or none)"
        ),
        None => {
            "localhost, 127.0.0.1 or [::1] (or any *.localhost name or 127.x.x.x address)".into()
        }
    }
}

/// A header that must not repeat came more than once; holds the header's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request has more than one {0} header")]
struct RepeatedHeader(&'static str);

/// The one value of a header that must not repeat; `Err` names the problem.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a HeaderValue>, RepeatedHeader> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(RepeatedHeader(name));
    }
    Ok(first)
}

/// The `Host` check: one `Host` naming this server; an absolute request target likewise.
fn check_host(headers: &HeaderMap, uri: &Uri, port: Option<u16>) -> Result<(), Refusal> {
    let names = own_names(port);
    let host = match single(headers, "host") {
        Err(e) => return refuse("Host", format!("{e}; it must name this server as {names}")),
        Ok(None) => {
            return refuse(
                "Host",
                format!("the request has no Host header; it must name this server as {names}"),
            );
        }
        Ok(Some(value)) => value.to_str().unwrap_or("").to_owned(),
    };
    let why = "so that a web page on a DNS name pointed at this machine (DNS rebinding) \
               cannot read or change the emulator's state";
    let authorities = std::iter::once(host.as_str()).chain(uri.authority().map(Authority::as_str));
    for text in authorities {
        let parsed = text
            .parse::<Authority>()
            .ok()
            .filter(|a| !a.as_str().contains('@'));
        let Some(authority) = parsed.filter(|a| loopback_host(a.host())) else {
            return refuse(
                "Host",
                format!(
                    "Host `{text}` does not name this server by a loopback name or address \
                     ({names}); refused {why}"
                ),
            );
        };
        if let (Some(given), Some(own)) = (authority.port_u16(), port)
            && given != own
        {
            return refuse(
                "Host",
                format!("Host `{text}` names port {given}, but this server listens on {own}"),
            );
        }
    }
    Ok(())
}

/// Whether `origin` (`http://host[:port]`) is this server's own origin.
fn own_origin(origin: &str, port: Option<u16>) -> bool {
    let Ok(uri) = origin.parse::<Uri>() else {
        return false;
    };
    let Some(authority) = uri.authority() else {
        return false;
    };
    uri.scheme_str() == Some("http")
        && matches!(uri.path(), "" | "/")
        && uri.query().is_none()
        && !authority.as_str().contains('@')
        && loopback_host(authority.host())
        && port.is_none_or(|own| authority.port_u16().unwrap_or(80) == own)
}

/// The `Origin` and `Sec-Fetch-Site` checks: no cross-origin browser requests.
fn check_browser(headers: &HeaderMap, port: Option<u16>) -> Result<(), Refusal> {
    let origin = match single(headers, "origin") {
        Err(e) => return refuse("Origin", e.to_string()),
        Ok(origin) => origin.map(|v| v.to_str().unwrap_or("<not text>").to_owned()),
    };
    if let Some(origin) = origin
        && !own_origin(&origin, port)
    {
        let own = match port {
            Some(p) => format!("http://localhost:{p}, http://127.0.0.1:{p} or http://[::1]:{p}"),
            None => "http://localhost, http://127.0.0.1 or http://[::1]".into(),
        };
        return refuse(
            "Origin",
            format!(
                "Origin `{origin}` is not this server's own origin ({own}); the admin surface \
                 refuses requests a web page on another site makes a browser send (cross-site \
                 request forgery). curl and scripts send no Origin and are not affected"
            ),
        );
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return refuse(
            "Sec-Fetch-Site",
            "Sec-Fetch-Site is `cross-site`: a web page on another site made the browser send \
             this request, and the admin surface refuses those (cross-site request forgery)"
                .into(),
        );
    }
    Ok(())
}

/// Runs every check for a request from `peer` to a server listening on `port` (when known).
pub fn check(
    peer: IpAddr,
    headers: &HeaderMap,
    uri: &Uri,
    port: Option<u16>,
) -> Result<(), Refusal> {
    if !loopback_ip(peer) {
        return refuse(
            "peer",
            format!(
                "{} is the emulator's admin surface and answers only loopback clients; {peer} \
                 is not loopback",
                uri.path()
            ),
        );
    }
    check_host(headers, uri, port)?;
    check_browser(headers, port)
}

/// The port of an endpoint such as `http://localhost:8080` (the scheme's default when absent).
pub fn endpoint_port(endpoint: &str) -> Option<u16> {
    let uri = endpoint.parse::<Uri>().ok()?;
    uri.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_header_message_text() {
        assert_eq!(
            RepeatedHeader("host").to_string(),
            "the request has more than one host header"
        );
    }

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn gate(pairs: &[(&str, &str)]) -> Result<(), &'static str> {
        let uri: Uri = "/_emu/connections".parse().unwrap();
        check(LOOPBACK, &headers(pairs), &uri, Some(8080)).map_err(|r| r.check)
    }

    #[test]
    fn peers() {
        assert!(loopback_ip(IpAddr::V4(Ipv4Addr::new(127, 1, 2, 3))));
        assert!(loopback_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(loopback_ip("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!loopback_ip("10.0.0.1".parse().unwrap()));
        assert!(!loopback_ip("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!loopback_ip("fe80::1".parse().unwrap()));
        let uri: Uri = "/_emu/reset".parse().unwrap();
        let refused = check(
            "192.168.1.9".parse().unwrap(),
            &headers(&[("host", "localhost:8080")]),
            &uri,
            Some(8080),
        )
        .unwrap_err();
        assert_eq!(refused.check, "peer");
        assert!(refused.message.contains("192.168.1.9"), "{refused:?}");
    }

    #[test]
    fn hosts() {
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:8080",
            "app.localhost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.9.9.9:8080",
            "[::1]:8080",
            "[::1]",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert_eq!(gate(&[("host", host)]), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example:8080",
            "localhost:8081",
            "127.0.0.1:80",
            ".localhost",
            "a..localhost",
            "10.0.0.1:8080",
            "[fe80::1]:8080",
            "user@localhost:8080",
            "",
            "0.0.0.0:8080",
        ] {
            assert_eq!(gate(&[("host", host)]), Err("Host"), "{host}");
        }
        assert_eq!(gate(&[]), Err("Host"), "no Host");
        assert_eq!(
            gate(&[("host", "localhost:8080"), ("host", "evil.example")]),
            Err("Host")
        );
    }

    #[test]
    fn absolute_targets_are_checked_too() {
        let uri: Uri = "http://evil.example/_emu/connections".parse().unwrap();
        let refused = check(
            LOOPBACK,
            &headers(&[("host", "localhost:8080")]),
            &uri,
            Some(8080),
        );
        assert_eq!(refused.unwrap_err().check, "Host");
        let uri: Uri = "http://localhost:8080/_emu/connections".parse().unwrap();
        let host = headers(&[("host", "localhost:8080")]);
        assert_eq!(check(LOOPBACK, &host, &uri, Some(8080)), Ok(()));
    }

    #[test]
    fn origins() {
        let host = ("host", "localhost:8080");
        for origin in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://app.localhost:8080",
        ] {
            assert_eq!(gate(&[host, ("origin", origin)]), Ok(()), "{origin}");
        }
        for origin in [
            "http://evil.example",
            "http://evil.example:8080",
            "null",
            "http://localhost:3000",
            "http://localhost",
            "https://localhost:8080",
            "http://localhost:8080/path",
            "file://",
        ] {
            assert_eq!(gate(&[host, ("origin", origin)]), Err("Origin"), "{origin}");
        }
        assert_eq!(
            gate(&[
                host,
                ("origin", "http://localhost:8080"),
                ("origin", "http://evil.example")
            ]),
            Err("Origin")
        );
    }

    #[test]
    fn fetch_metadata() {
        let host = ("host", "localhost:8080");
        assert_eq!(
            gate(&[host, ("sec-fetch-site", "cross-site")]),
            Err("Sec-Fetch-Site")
        );
        for site in ["same-origin", "same-site", "none"] {
            assert_eq!(gate(&[host, ("sec-fetch-site", site)]), Ok(()), "{site}");
        }
    }

    #[test]
    fn endpoint_ports() {
        assert_eq!(endpoint_port("http://localhost:8080"), Some(8080));
        assert_eq!(endpoint_port("http://[::1]:3"), Some(3));
        assert_eq!(endpoint_port("http://example.com"), Some(80));
        assert_eq!(endpoint_port("https://example.com/"), Some(443));
        assert_eq!(endpoint_port("not a url"), None);
    }
}
