//! The service endpoint and the origin of any http(s) URL, read with [`http::Uri`]: the one
//! place a `scheme://host[:port]` is taken apart. Connection strings and `token --endpoint`
//! read an [`Endpoint`] with [`Endpoint::parse`]; `token --rest` and the webhook hints read the
//! origin of a full URL with [`Endpoint::of_url`]; the service derives its
//! `WebHook-Request-Origin` ([`Endpoint::hostname`]) and the REST layer its fallback `Host`
//! ([`Endpoint::authority`]) from one.
//!
//! Only `http` and `https` are accepted, with a host of letters, digits, `-`, `.` and `_` or a
//! bracketed IPv6 address, and a port from 1 to 65535. An endpoint prints as
//! `scheme://host[:port]`: lowercase scheme and host, default port dropped, no trailing slash.

use std::fmt;

use http::Uri;
use http::uri::Authority;

/// `scheme://host[:port]` taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    scheme: &'static str,
    /// The authority as written (case and default port kept).
    authority: Authority,
    /// The lowercase host; an IPv6 address keeps its brackets.
    host: String,
    port: Option<u16>,
}

/// Why a text is not an endpoint; each message names the text and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint `{url}` is not a URL; expected http://host[:port] or https://host[:port]")]
    NotAUrl { url: String },
    #[error("endpoint `{url}` must use http or https, not `{scheme}`")]
    Scheme { url: String, scheme: String },
    #[error(
        "endpoint `{url}` has a path or query; it is just scheme://host[:port] (the hub is given \
         separately)"
    )]
    Path { url: String },
    #[error("endpoint `{url}` must not contain user information (`user@`)")]
    UserInfo { url: String },
    #[error("endpoint `{url}` has an unterminated `[` in its host")]
    Unterminated { url: String },
    #[error("endpoint `{url}` has text after its `[...]` host")]
    AfterBracket { url: String },
    #[error("endpoint `{url}` does not have a valid host")]
    Host { url: String },
    #[error("endpoint `{url}` has `{port}` where a port number (1-65535) belongs")]
    Port { url: String, port: String },
}

impl Endpoint {
    /// Reads `scheme://host[:port]` (a trailing `/` allowed, surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Endpoint, EndpointError> {
        let url = text.trim();
        let uri: Uri = url.parse().map_err(|_| unparsable(url))?;
        let has_path = uri.path() != "/" || uri.query().is_some() || url.contains('#');
        Endpoint::from_uri(url, &uri, has_path)
    }

    /// The origin of an absolute http(s) URL, whatever its path and query.
    pub fn of_url(text: &str) -> Result<Endpoint, EndpointError> {
        let url = text.trim();
        let uri: Uri = url.parse().map_err(|_| unparsable(url))?;
        match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => Endpoint::parse(&format!("{scheme}://{authority}")),
            _ => Err(EndpointError::NotAUrl { url: url.into() }),
        }
    }

    fn from_uri(url: &str, uri: &Uri, has_path: bool) -> Result<Endpoint, EndpointError> {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(EndpointError::NotAUrl { url: url.into() });
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => {
                return Err(EndpointError::Scheme {
                    url: url.into(),
                    scheme: scheme.into(),
                });
            }
        };
        if has_path {
            return Err(EndpointError::Path { url: url.into() });
        }
        if authority.as_str().contains('@') {
            return Err(EndpointError::UserInfo { url: url.into() });
        }
        let host = authority.host();
        let port = match &authority.as_str()[host.len()..] {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| EndpointError::AfterBracket { url: url.into() })?,
            ),
        };
        if !valid_host(host) {
            return Err(EndpointError::Host { url: url.into() });
        }
        let port = port
            .map(|p| {
                parse_port(p).ok_or_else(|| EndpointError::Port {
                    url: url.into(),
                    port: p.into(),
                })
            })
            .transpose()?;
        Ok(Endpoint {
            scheme,
            authority: authority.clone(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The same endpoint on another port.
    pub fn with_port(mut self, port: u16) -> Endpoint {
        self.port = Some(port);
        self
    }

    /// The host as written, without brackets (`::1`): what `WebHook-Request-Origin` carries
    /// (docs/protocol.md §14 decision 16).
    pub fn hostname(&self) -> &str {
        let host = self.authority.host();
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// `host[:port]` exactly as written in the text this endpoint was read from.
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }

    /// The port as written, when one was.
    pub fn port_text(&self) -> Option<&str> {
        // No user information is accepted, so the authority is the host and an optional port.
        let raw = self.authority.as_str();
        raw[self.authority.host().len()..].strip_prefix(':')
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match (self.scheme, self.port) {
            (_, None) | ("http", Some(80)) | ("https", Some(443)) => Ok(()),
            (_, Some(port)) => write!(f, ":{port}"),
        }
    }
}

/// The diagnosis of a text [`http::Uri`] cannot read at all.
fn unparsable(url: &str) -> EndpointError {
    let Some((scheme, rest)) = url.split_once("://") else {
        return EndpointError::NotAUrl { url: url.into() };
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return EndpointError::Scheme {
            url: url.into(),
            scheme: scheme.into(),
        };
    }
    if rest.starts_with('[') && !rest.contains(']') {
        return EndpointError::Unterminated { url: url.into() };
    }
    EndpointError::Host { url: url.into() }
}

/// A DNS-ish name or a bracketed IPv6 address.
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        }
    }
}

/// A port number from 1 to 65535.
pub(super) fn parse_port(p: &str) -> Option<u16> {
    p.trim().parse::<u16>().ok().filter(|&port| port != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalises() {
        assert_eq!(
            ok("HTTP://LocalHost:8080/").to_string(),
            "http://localhost:8080"
        );
        assert_eq!(ok(" https://h:443 ").to_string(), "https://h");
        assert_eq!(ok("http://[::1]:80/").to_string(), "http://[::1]");
        assert_eq!(ok("http://h_x:1").with_port(2).to_string(), "http://h_x:2");
    }

    #[test]
    fn parts() {
        let e = ok("http://[::1]:8080/");
        assert_eq!(
            (e.to_string(), e.hostname()),
            ("http://[::1]:8080".into(), "::1")
        );
        assert_eq!(e.authority(), "[::1]:8080");
        let e = ok("http://LocalHost:7071");
        assert_eq!((e.hostname(), e.port_text()), ("LocalHost", Some("7071")));
    }

    #[test]
    fn each_error_names_what_is_wrong() {
        let err = |s: &str| Endpoint::parse(s).unwrap_err().to_string();
        assert!(err("localhost:8080").contains("not a URL"));
        assert!(err("nope").contains("not a URL"));
        assert!(err("ws://x").contains("not `ws`"));
        assert!(err("foo bar://x").contains("not `foo bar`"));
        for path in ["http://h/api", "http://h?x", "http://h/?", "http://h#f"] {
            assert!(err(path).contains("path or query"), "{path}");
        }
        assert!(err("http://user@h").contains("user information"));
        assert!(err("http://[::1").contains("unterminated `[`"));
        assert!(err("http://[::1]x").contains("text after"));
        for host in [
            "http://",
            "http://:80",
            "http://[]",
            "http://[zz]",
            "http://a b",
        ] {
            assert!(err(host).contains("valid host"), "{host}");
        }
        for port in ["http://h:99999", "http://h:0", "http://h:"] {
            assert!(err(port).contains("port number (1-65535)"), "{port}");
        }
    }

    #[test]
    fn origin_of_a_full_url() {
        let e = Endpoint::of_url("http://127.0.0.1:3000/x?y#z").unwrap();
        assert_eq!(e.to_string(), "http://127.0.0.1:3000");
        assert!(matches!(
            Endpoint::of_url("api/hubs"),
            Err(EndpointError::NotAUrl { .. })
        ));
        assert!(Endpoint::of_url("ftp://x/api").is_err());
        assert!(Endpoint::of_url("http://u@x/api").is_err());
    }
}
