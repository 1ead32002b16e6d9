//! Every way a REST call can fail, and the one place each failure becomes its HTTP answer: a
//! status, an `ErrorDetail` JSON body `{"code","message","target"?}` and the same code in the
//! `x-ms-error-code` header (docs/protocol.md §7.1, §0 R1).
//!
//! The routing table in [`super`], the request readers in [`super::request`], the payload
//! validation in [`super::send`] and the operations in [`super::operations`] return
//! [`RestError`]; only [`RestError::into_response`] knows about status codes. Messages say what
//! was attempted, what was wrong and what to send instead, because the caller is a developer's
//! event handler whose logs show nothing else.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::auth::Rejection;
use crate::http::HttpResponse;
use crate::service::odata::FilterError;

use super::send::PayloadError;

/// The accepted `Content-Type` media types of a send body, for messages.
pub const SEND_MEDIA_TYPES: &str = "text/plain, application/json or application/octet-stream";

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The path names no operation.
    #[error(
        "no REST operation at {path}; operations live under /api/hubs/<hub>/… (SendToAll is \
         POST /api/hubs/<hub>/:send, SendToGroup is POST /api/hubs/<hub>/groups/<group>/:send)"
    )]
    NoSuchRoute { path: String },
    /// The path names operations, none of them with this method.
    #[error("{method} is not supported on {path}; use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },
    /// The hub segment breaks the hub-name rule.
    #[error(
        "`{hub}` is not a valid hub name: it must start with a letter and contain only letters, \
         digits and _`,.[] (at most 128 characters)"
    )]
    InvalidHubName { hub: String },
    /// `--strict-hubs` is on and the hub was not declared.
    #[error(
        "hub `{hub}` is not declared and sio-emu runs with --strict-hubs; declare it with \
         `--hub {hub}` or fix the hub name in the connection code"
    )]
    HubNotDeclared { hub: String },
    /// No `api-version` query parameter.
    #[error(
        "the `api-version` query parameter is required on every REST call (the SDKs send \
         `api-version=2024-12-01`); add it to the URL"
    )]
    MissingApiVersion,
    /// The Bearer token was missing or failed a check.
    #[error("REST call refused, the Bearer token failed the `{}` check: {}", .0.check, .0.message)]
    Unauthorized(Rejection),
    /// A path segment or query parameter is invalid.
    #[error("{message}")]
    InvalidParameter { name: &'static str, message: String },
    /// The OData `filter` does not parse.
    #[error(
        "invalid OData filter: {0}; examples: `userId eq 'alice'`, `not ('0~Lw~c2lk' in \
         groups)` (grammar: learn.microsoft.com/azure/azure-web-pubsub/reference-odata-filter)"
    )]
    InvalidFilter(FilterError),
    /// A JSON request body (`:addToGroups`) is malformed.
    #[error("{0}")]
    InvalidBody(String),
    /// A send body is not a packet a Socket.IO client can take (docs/protocol.md §14 decision 12).
    #[error("{0}")]
    InvalidPayload(#[from] PayloadError),
    /// The body's media type is not one the operation accepts.
    #[error("Content-Type `{content_type}` is not supported here; send {accepted}")]
    UnsupportedMediaType {
        content_type: String,
        accepted: &'static str,
    },
    /// The body is larger than the limit.
    #[error(
        "the request body is larger than {max} bytes (the Engine.IO maxPayload, `serve \
         --max-payload`); split the message or raise the limit"
    )]
    PayloadTooLarge { max: usize },
    /// The body could not be read.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// AddConnectionToGroup for a connection the hub does not have.
    #[error("connection `{connection_id}` does not exist in hub `{hub}` (it may have closed)")]
    ConnectionNotFound { hub: String, connection_id: String },
    /// The Web PubSub permission routes.
    #[error(
        "permissions (`{permission}`) do not apply to Socket.IO hubs: Socket.IO clients cannot \
         send to or join groups themselves, so there is nothing to grant, check or revoke"
    )]
    PermissionsNotSupported { permission: String },
}

/// The `ErrorDetail` body (docs/protocol.md §0 R1).
#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
}

impl RestError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            RestError::NoSuchRoute { .. }
            | RestError::HubNotDeclared { .. }
            | RestError::ConnectionNotFound { .. } => StatusCode::NOT_FOUND,
            RestError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            RestError::InvalidHubName { .. }
            | RestError::MissingApiVersion
            | RestError::InvalidParameter { .. }
            | RestError::InvalidFilter(_)
            | RestError::InvalidBody(_)
            | RestError::InvalidPayload(_)
            | RestError::BodyRead(_) => StatusCode::BAD_REQUEST,
            RestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            RestError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RestError::PermissionsNotSupported { .. } => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The `code` field and `x-ms-error-code` header.
    pub fn code(&self) -> &'static str {
        match self {
            RestError::NoSuchRoute { .. } => "NotFound",
            RestError::MethodNotAllowed { .. } => "MethodNotAllowed",
            RestError::InvalidHubName { .. } => "InvalidHubName",
            RestError::HubNotDeclared { .. } => "HubNotFound",
            RestError::MissingApiVersion => "MissingApiVersion",
            RestError::Unauthorized(_) => "Unauthorized",
            RestError::InvalidParameter { .. } => "InvalidParameter",
            RestError::InvalidFilter(_) => "InvalidFilter",
            RestError::InvalidBody(_) => "InvalidRequestBody",
            RestError::InvalidPayload(_) => "InvalidPayload",
            RestError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            RestError::PayloadTooLarge { .. } => "PayloadTooLarge",
            RestError::BodyRead(_) => "InvalidRequestBody",
            RestError::ConnectionNotFound { .. } => "ConnectionNotFound",
            RestError::PermissionsNotSupported { .. } => "NotImplemented",
        }
    }

    /// The `target` field: the parameter or part of the request at fault.
    pub fn target(&self) -> Option<&str> {
        match self {
            RestError::InvalidHubName { .. } | RestError::HubNotDeclared { .. } => Some("hub"),
            RestError::MissingApiVersion => Some("api-version"),
            RestError::Unauthorized(_) => Some("Authorization"),
            RestError::InvalidParameter { name, .. } => Some(name),
            RestError::InvalidFilter(_) => Some("filter"),
            RestError::InvalidBody(_) | RestError::BodyRead(_) => Some("body"),
            RestError::InvalidPayload(_) | RestError::PayloadTooLarge { .. } => Some("message"),
            RestError::UnsupportedMediaType { .. } => Some("Content-Type"),
            RestError::ConnectionNotFound { .. } => Some("connectionId"),
            RestError::PermissionsNotSupported { .. } => Some("permission"),
            RestError::NoSuchRoute { .. } | RestError::MethodNotAllowed { .. } => None,
        }
    }

    /// The HTTP response for this error; the only place an error becomes one.
    pub fn into_response(&self) -> HttpResponse {
        let detail = ErrorDetail {
            code: self.code(),
            message: self.to_string(),
            target: self.target(),
        };
        let body = serde_json::to_vec(&detail).unwrap_or_default();
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert("x-ms-error-code", HeaderValue::from_static(self.code()));
        match self {
            RestError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            RestError::MethodNotAllowed { allowed, .. } => {
                if let Ok(value) = HeaderValue::from_str(allowed) {
                    headers.insert(header::ALLOW, value);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests;
