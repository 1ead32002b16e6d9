//! Web PubSub connection strings: `Endpoint=<url>;AccessKey=<key>;Version=1.0;[Port=<n>;]`.
//!
//! `serve` prints one, `token` and `replay` read one (`--connection-string` /
//! `WebPubSubConnectionString`), and the SDKs under test are configured with one. Keys are
//! case-insensitive and may come in any order; the trailing `;` is optional; `Port=` overrides the
//! endpoint's port (docs/protocol.md §10.2, as the Functions extension reads it). Error messages never echo
//! the access key.

use super::endpoint::{Endpoint, EndpointError, parse_port};

/// A parsed connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// `scheme://host[:port]`: lowercase scheme and host, no default port, no trailing slash.
    pub endpoint: String,
    /// The AccessKey exactly as written (its UTF-8 bytes are the HMAC key).
    pub access_key: String,
}

const EXAMPLE: &str = "Endpoint=http://localhost:8080;AccessKey=<key>;Version=1.0;";

/// Why a text is not a usable connection string. No message echoes the access key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    #[error("the connection string is empty; it looks like `{EXAMPLE}`")]
    Empty,
    #[error("part {0} of the connection string is not `Name=Value`; it looks like `{EXAMPLE}`")]
    NotNameValue(usize),
    #[error("the connection string names `{0}` twice")]
    Twice(String),
    #[error("the connection string has no `Endpoint=`; it looks like `{EXAMPLE}`")]
    NoEndpoint,
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("the connection string's `AccessKey=` is empty")]
    EmptyAccessKey,
    #[error(
        "the connection string uses identity-based auth (`AuthType=`) and has no `AccessKey=`, \
         so tokens cannot be signed locally; use `{EXAMPLE}`"
    )]
    IdentityBased,
    #[error("the connection string has no `AccessKey=`; it looks like `{EXAMPLE}`")]
    NoAccessKey,
    #[error("`Port={0}` in the connection string is not a port number (1-65535)")]
    Port(String),
}

/// Parses a connection string (see the module docs for the accepted forms).
pub fn parse(s: &str) -> Result<ConnectionString, ConnectionStringError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ConnectionStringError::Empty);
    }
    let mut endpoint = None;
    let mut access_key = None;
    let mut port = None;
    let mut auth_type = false;
    for (i, part) in s.split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        // Never echo the part: it may be (part of) the access key.
        let Some((key, value)) = part.split_once('=') else {
            return Err(ConnectionStringError::NotNameValue(i + 1));
        };
        let value = value.trim();
        let slot = match key.trim().to_ascii_lowercase().as_str() {
            "endpoint" => &mut endpoint,
            "accesskey" => &mut access_key,
            "port" => &mut port,
            "authtype" => {
                auth_type = true;
                continue;
            }
            // Version, ClientEndpoint, ClientId, ... carry nothing the emulator needs.
            _ => continue,
        };
        if slot.is_some() {
            return Err(ConnectionStringError::Twice(key.trim().into()));
        }
        *slot = Some(value);
    }
    let mut origin = Endpoint::parse(endpoint.ok_or(ConnectionStringError::NoEndpoint)?)?;
    let access_key = match access_key {
        Some(key) if !key.is_empty() => key.to_string(),
        Some(_) => return Err(ConnectionStringError::EmptyAccessKey),
        None if auth_type => return Err(ConnectionStringError::IdentityBased),
        None => return Err(ConnectionStringError::NoAccessKey),
    };
    if let Some(port) = port {
        origin = origin
            .with_port(parse_port(port).ok_or_else(|| ConnectionStringError::Port(port.into()))?);
    }
    Ok(ConnectionString {
        endpoint: origin.to_string(),
        access_key,
    })
}

/// The connection string for an endpoint and key: `Endpoint=<endpoint>;AccessKey=<key>;Version=1.0;`.
pub fn format(endpoint: &str, key: &str) -> String {
    format!("Endpoint={endpoint};AccessKey={key};Version=1.0;")
}

/// Normalises a service endpoint to `scheme://host[:port]` (lowercase scheme and host, default
/// port dropped, no trailing slash). Only `http` and `https` are accepted, and no path.
pub fn normalize_endpoint(url: &str) -> Result<String, EndpointError> {
    Endpoint::parse(url).map(|o| o.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ConnectionString {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn plain() {
        let cs = ok("Endpoint=http://localhost:8080;AccessKey=abc=;Version=1.0;");
        assert_eq!(cs.endpoint, "http://localhost:8080");
        assert_eq!(cs.access_key, "abc=");
    }

    #[test]
    fn order_case_and_trailing_semicolon_do_not_matter() {
        let cs = ok("accesskey=KEY; version=1.0 ;ENDPOINT=https://X.webpubsub.azure.com/");
        assert_eq!(cs.endpoint, "https://x.webpubsub.azure.com");
        assert_eq!(cs.access_key, "KEY");
    }

    #[test]
    fn port_overrides_the_endpoint_port() {
        assert_eq!(
            ok("Endpoint=http://localhost;Port=8080;AccessKey=k;Version=1.0;").endpoint,
            "http://localhost:8080"
        );
        assert_eq!(
            ok("Endpoint=http://localhost:9000/;AccessKey=k;Port=8081").endpoint,
            "http://localhost:8081"
        );
        assert_eq!(
            ok("Endpoint=https://h;AccessKey=k;Port=443").endpoint,
            "https://h"
        );
        assert_eq!(
            ok("Endpoint=http://[::1]:1;AccessKey=k;Port=2").endpoint,
            "http://[::1]:2"
        );
        assert_eq!(
            ok("Endpoint=http://localhost:80;AccessKey=k").endpoint,
            "http://localhost"
        );
    }

    #[test]
    fn round_trip() {
        let s = format("http://localhost:8080", "k");
        assert_eq!(s, "Endpoint=http://localhost:8080;AccessKey=k;Version=1.0;");
        assert_eq!(
            ok(&s),
            ConnectionString {
                endpoint: "http://localhost:8080".into(),
                access_key: "k".into()
            }
        );
    }

    #[test]
    fn missing_and_bad_parts() {
        let err = |s: &str| parse(s).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("AccessKey=k;Version=1.0;").contains("no `Endpoint=`"));
        assert!(err("Endpoint=http://localhost:8080;Version=1.0;").contains("no `AccessKey=`"));
        assert!(err("Endpoint=http://localhost:8080;AccessKey=;").contains("empty"));
        assert!(
            err("Endpoint=https://x;AuthType=azure.msi;Version=1.0;").contains("identity-based")
        );
        assert!(err("Endpoint=localhost:8080;AccessKey=k").contains("not a URL"));
        assert!(err("Endpoint=ws://localhost;AccessKey=k").contains("http or https"));
        assert!(err("Endpoint=http://localhost/api;AccessKey=k").contains("path"));
        assert!(err("Endpoint=http://;AccessKey=k").contains("valid host"));
        assert!(err("Endpoint=http://localhost:99999;AccessKey=k").contains("port"));
        assert!(err("Endpoint=http://localhost;AccessKey=k;Port=abc").contains("`Port=abc`"));
        assert!(err("Endpoint=http://localhost;AccessKey=k;Port=0").contains("port number"));
        assert!(err("Endpoint=http://a;Endpoint=http://b;AccessKey=k").contains("twice"));
        let secret = err("Endpoint=http://localhost;s3cr3t");
        assert!(
            secret.contains("part 2") && !secret.contains("s3cr3t"),
            "{secret}"
        );
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            normalize_endpoint("HTTP://LocalHost:8080/").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(normalize_endpoint("https://h:443").unwrap(), "https://h");
        assert!(normalize_endpoint("http://user@h").is_err());
    }
}
