//! Reading a REST request: the query parameters (`api-version`, `excluded`, `filter`,
//! `messageTtlSeconds`, `reason`, the `:generateToken` ones), the Bearer token checked against
//! the URL exactly as the caller sent it (docs/protocol.md §10.2, §14), the `Content-Type` of a body and the
//! body itself, read with a hard size bound.
//!
//! Everything here turns client input into typed values or a [`RestError`]; the operations in
//! [`super::operations`] never see raw text they would have to validate again.

use std::collections::HashSet;
use std::sync::Mutex;

use bytes::Bytes;
use http::HeaderMap;
use http::header;
use http::request::Parts;
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;

use crate::auth::{self, Rejection};
use crate::service::odata::{Filter, FilterError};

use super::error::{FilterOrigin, RestError, SEND_MEDIA_TYPES};

/// `api-version` values the SDKs and the REST specification use.
pub const KNOWN_API_VERSIONS: [&str; 5] = [
    "2021-10-01",
    "2022-11-01",
    "2023-07-01",
    "2024-01-01",
    "2024-12-01",
];

/// The `api-supported-versions` header of every answer of an operation: [`KNOWN_API_VERSIONS`]
/// written as the service writes its list (docs/protocol.md §7.5).
pub const API_SUPPORTED_VERSIONS: &str =
    "2021-10-01, 2022-11-01, 2023-07-01, 2024-01-01, 2024-12-01";

/// How many distinct unknown `api-version` values are remembered (each is logged once).
const MAX_REMEMBERED_API_VERSIONS: usize = 16;

/// Largest `messageTtlSeconds` accepted (docs/protocol.md §0 R1).
pub const MAX_MESSAGE_TTL_SECS: u64 = 300;

/// Longest group name (docs/protocol.md §0 R1: 1..1024 characters).
pub const MAX_GROUP_LEN: usize = 1024;

/// Largest `minutesToExpire` of `:generateToken` (one year); longer lifetimes are refused.
pub const MAX_TOKEN_MINUTES: u64 = 365 * 24 * 60;

/// The decoded query string, in order; names compare case-insensitively.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b=2` (percent-decoding, `+` as space).
    pub fn parse(query: Option<&str>) -> Query {
        Query {
            pairs: query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `api-version`, required on every call (docs/protocol.md §7.1); an unknown value is accepted and
    /// logged once.
    pub fn api_version(&self, warn: &dyn Fn(String)) -> Result<&str, RestError> {
        let version = self
            .get("api-version")
            .ok_or(RestError::MissingApiVersion)?;
        if !KNOWN_API_VERSIONS.contains(&version) && first_sighting(version) {
            warn(format!(
                "a REST call used api-version={version}, which sio-emu does not know (known: \
                 {}); it is accepted and treated like 2024-01-01",
                KNOWN_API_VERSIONS.join(", ")
            ));
        }
        Ok(version)
    }

    /// The OData `filter`; absent or blank matches everything.
    pub fn filter(&self) -> Result<Filter, RestError> {
        parse_filter(self.get("filter").unwrap_or(""), FilterOrigin::Query)
    }

    /// The `excluded` connection ids (repeatable).
    pub fn excluded(&self) -> Vec<String> {
        self.all("excluded")
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `messageTtlSeconds`, 0..=300 when present. TTL has no effect in the emulator: delivery
    /// to a local client is immediate.
    pub fn message_ttl(&self) -> Result<Option<u64>, RestError> {
        let Some(raw) = self.get("messageTtlSeconds") else {
            return Ok(None);
        };
        match raw.trim().parse::<u64>() {
            Ok(ttl) if ttl <= MAX_MESSAGE_TTL_SECS => Ok(Some(ttl)),
            _ => Err(RestError::InvalidParameter {
                name: "messageTtlSeconds",
                message: format!(
                    "messageTtlSeconds must be an integer from 0 to {MAX_MESSAGE_TTL_SECS}; got `{raw}`"
                ),
            }),
        }
    }

    /// The `disconnected` reason a close operation passes on (docs/protocol.md §14 decision 13).
    pub fn close_reason(&self) -> String {
        match self.get("reason").map(str::trim).filter(|r| !r.is_empty()) {
            Some(reason) => format!("closed by REST API: {reason}"),
            None => "closed by REST API".to_owned(),
        }
    }
}

/// Parses a filter text into a [`Filter`], or the 400 that names the position.
pub fn parse_filter(text: &str, source: FilterOrigin) -> Result<Filter, RestError> {
    Filter::parse(text).map_err(|error: FilterError| RestError::InvalidFilter {
        text: text.to_owned(),
        error,
        origin: source,
    })
}

/// Whether this unknown `api-version` is seen for the first time (bounded memory).
fn first_sighting(version: &str) -> bool {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.get_or_insert_with(HashSet::new);
    if seen.contains(version) || seen.len() >= MAX_REMEMBERED_API_VERSIONS {
        return false;
    }
    seen.insert(version.to_owned());
    true
}

/// Validates a group name (docs/protocol.md §0 R1: 1..1024 characters, not whitespace only).
pub fn check_group(name: &'static str, group: &str) -> Result<(), RestError> {
    let chars = group.chars().count();
    if chars == 0 || chars > MAX_GROUP_LEN || group.trim().is_empty() {
        return Err(RestError::InvalidParameter {
            name,
            message: format!(
                "a group name must be 1 to {MAX_GROUP_LEN} characters and not only whitespace; \
                 got {chars} character(s)"
            ),
        });
    }
    Ok(())
}

/// Validates a connection or user id (docs/protocol.md §0 R1: at least one character).
pub fn check_id(name: &'static str, id: &str) -> Result<(), RestError> {
    if id.is_empty() {
        return Err(RestError::InvalidParameter {
            name,
            message: format!("{name} must not be empty"),
        });
    }
    Ok(())
}

/// The request URL as the caller used it: `http://<Host><path-and-query as received>`, which
/// is what the SDKs sign as the token's `aud`.
pub fn request_url(parts: &Parts, fallback_host: &str) -> String {
    if parts.uri.scheme().is_some() {
        return parts.uri.to_string();
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(fallback_host);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    format!("http://{host}{path_and_query}")
}

/// Checks the `Authorization: Bearer <jwt>` header against `url` (docs/protocol.md §10.2).
pub fn authorize(headers: &HeaderMap, keys: &[String], url: &str) -> Result<(), RestError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("").trim())
        .unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token,
        _ if value.is_empty() => "",
        _ => {
            let scheme = value.split(' ').next().unwrap_or("");
            return Err(RestError::Unauthorized(Rejection {
                check: auth::Check::Missing,
                message: format!(
                    "the Authorization header uses the `{}` scheme; send `Authorization: Bearer \
                     <token>` whose `aud` is the request URL (mint one with `sio-emu token --rest \
                     <URL>`)",
                    crate::traffic::preview(scheme, 16)
                ),
                claims: None,
            }));
        }
    };
    auth::verify_rest_token(token, keys, url, auth::now_unix())
        .map(|_| ())
        .map_err(RestError::Unauthorized)
}

/// How a send body declares itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `text/plain`, `application/json`, or no `Content-Type` at all.
    Text,
    /// `application/octet-stream`.
    Binary,
}

/// The kind of a send body from its `Content-Type` (parameters ignored); 415 for media types
/// docs/protocol.md §0 R1 does not list.
pub fn send_media_type(headers: &HeaderMap) -> Result<BodyKind, RestError> {
    match media_type(headers).as_deref() {
        None | Some("text/plain") | Some("application/json") => Ok(BodyKind::Text),
        Some("application/octet-stream") => Ok(BodyKind::Binary),
        Some(other) => Err(RestError::UnsupportedMediaType {
            content_type: other.to_owned(),
            accepted: SEND_MEDIA_TYPES,
        }),
    }
}

/// The media type of a JSON body (`:addToGroups`): `application/json`, or none.
pub fn json_media_type(headers: &HeaderMap) -> Result<(), RestError> {
    match media_type(headers).as_deref() {
        None | Some("application/json") | Some("text/json") => Ok(()),
        Some(other) => Err(RestError::UnsupportedMediaType {
            content_type: other.to_owned(),
            accepted: "application/json",
        }),
    }
}

/// The `Content-Type` without parameters, lowercased; `None` when absent or empty.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let media = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (!media.is_empty()).then_some(media)
}

/// A request body the REST module can read: hyper's, or any other (a replay's kept bytes, a
/// test's).
pub trait RequestBody:
    Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
{
}

impl<B> RequestBody for B where
    B: Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
{
}

/// Reads the whole body, refusing more than `max` bytes (413) without buffering past it.
pub async fn read_body<B: RequestBody>(
    headers: &HeaderMap,
    body: B,
    max: usize,
) -> Result<Bytes, RestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(RestError::PayloadTooLarge { max });
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(RestError::PayloadTooLarge { max })
        }
        Err(e) => Err(RestError::BodyRead(e.to_string())),
    }
}

#[cfg(test)]
mod tests;
