//! Every way a REST call can fail, and the one place each failure becomes its HTTP answer: a
//! status, a body in the service's shape and the same code in the `x-ms-error-code` header
//! (docs/protocol.md §7.1, §0 R1).
//!
//! Two body shapes, as the service answers (docs/protocol.md §7.5): an `ErrorDetail`
//! `{"code","message","target","details","innererror"}` (`application/json`), and for a filter
//! that does not parse the validation problem `{"code","message","target","errors","type",
//! "title","status","detail","instance","extensions"}` (`application/problem+json`). Where the
//! service's wording is known (a missing connection, a bad filter, a missing user, group or
//! connection), `message` is the service's and sio-emu's explanation moves to where the shape has
//! room for it: `details[0].message`, or the problem's `detail`. Elsewhere `message` is the
//! explanation itself. The live log always shows the explanation.
//!
//! The routing table in [`super`], the request readers in [`super::request`], the payload
//! validation in [`super::send`] and the operations in [`super::operations`] return
//! [`RestError`]; only [`RestError::into_response`] knows about status codes. Explanations say
//! what was attempted, what was wrong and what to send instead, because the caller is a
//! developer's event handler whose logs show nothing else.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::auth::Rejection;
use crate::http::{HttpResponse, ResponseBody};
use crate::service::odata::{self, FilterError};

use super::request::API_SUPPORTED_VERSIONS;
use super::send::PayloadError;

/// The `Content-Type` of an `ErrorDetail` body, as the service sends it.
const JSON: &str = "application/json; charset=utf-8";

/// The `Content-Type` of a validation problem, as the service sends it.
const PROBLEM_JSON: &str = "application/problem+json; charset=utf-8";

/// The `title` of the service's validation problems.
const PROBLEM_TITLE: &str = "One or more validation errors occurred.";

/// Where a filter came from: the `filter` query parameter of a send, or the `filter` field of an
/// `:addToGroups` / `:removeFromGroups` body. The service names the first `filter` and the second
/// `Filter` in its answer's `target` and `errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOrigin {
    Query,
    Body,
}

impl FilterOrigin {
    fn target(self) -> &'static str {
        match self {
            FilterOrigin::Query => "filter",
            FilterOrigin::Body => "Filter",
        }
    }
}

/// What an existence check looks for; names the service's `Warning.<Entity>.NotExisted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Connection,
    Group,
    User,
}

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Entity::Connection => "Connection",
            Entity::Group => "Group",
            Entity::User => "User",
        }
    }

    fn warning_code(self) -> &'static str {
        match self {
            Entity::Connection => "Warning.Connection.NotExisted",
            Entity::Group => "Warning.Group.NotExisted",
            Entity::User => "Warning.User.NotExisted",
        }
    }
}

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
        "invalid OData filter: {error}; examples: `userId eq 'alice'`, `not ('0~Lw~c2lk' in \
         groups)` (grammar: learn.microsoft.com/azure/azure-web-pubsub/reference-odata-filter)"
    )]
    InvalidFilter {
        /// The filter as sent.
        text: String,
        error: FilterError,
        origin: FilterOrigin,
    },
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

/// The `ErrorDetail` body (docs/protocol.md §0 R1, §7.5): every field is always present, `null`
/// when empty, as the service sends it.
#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    target: Option<&'a str>,
    details: Option<Vec<ErrorDetail<'a>>>,
    innererror: Option<()>,
}

impl<'a> ErrorDetail<'a> {
    fn new(code: &'a str, message: &'a str, target: Option<&'a str>) -> Self {
        ErrorDetail {
            code,
            message,
            target,
            details: None,
            innererror: None,
        }
    }
}

/// The validation problem the service answers for a filter that does not parse
/// (docs/protocol.md §7.5): RFC 9457 fields next to the `ErrorDetail` ones.
#[derive(Serialize)]
struct Problem<'a> {
    code: &'a str,
    message: &'a str,
    target: &'a str,
    errors: serde_json::Map<String, serde_json::Value>,
    r#type: Option<()>,
    title: &'a str,
    status: u16,
    detail: &'a str,
    instance: Option<()>,
    extensions: serde_json::Map<String, serde_json::Value>,
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
            | RestError::InvalidFilter { .. }
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
            RestError::InvalidFilter { .. } => "Error.BadRequest",
            RestError::InvalidBody(_) => "InvalidRequestBody",
            RestError::InvalidPayload(_) => "InvalidPayload",
            RestError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            RestError::PayloadTooLarge { .. } => "PayloadTooLarge",
            RestError::BodyRead(_) => "InvalidRequestBody",
            RestError::ConnectionNotFound { .. } => "Error.Connection.NotExisted",
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
            RestError::InvalidFilter { origin, .. } => Some(origin.target()),
            RestError::InvalidBody(_) | RestError::BodyRead(_) => Some("body"),
            RestError::InvalidPayload(_) | RestError::PayloadTooLarge { .. } => Some("message"),
            RestError::UnsupportedMediaType { .. } => Some("Content-Type"),
            RestError::ConnectionNotFound { .. } => Some(Entity::Connection.name()),
            RestError::PermissionsNotSupported { .. } => Some("permission"),
            RestError::NoSuchRoute { .. } | RestError::MethodNotAllowed { .. } => None,
        }
    }

    /// The service's own `message` for this error, where its wording is known
    /// (docs/protocol.md §7.5); the explanation then goes where the body has room for it.
    pub fn service_message(&self) -> Option<String> {
        match self {
            RestError::ConnectionNotFound { connection_id, .. } => {
                Some(not_found_message(Entity::Connection, connection_id))
            }
            RestError::InvalidFilter { text, error, .. } => {
                let position = odata::service_position(text, error);
                let text = odata::clip_for_message(text);
                Some(format!(
                    "Invalid syntax for '{text}': Syntax error at position {position} in \
                     '{text}'. (Parameter 'filter')"
                ))
            }
            _ => None,
        }
    }

    /// The HTTP response for this error; the only place an error becomes one.
    pub fn into_response(&self) -> HttpResponse {
        let explanation = self.to_string();
        let service = self.service_message();
        let code = self.code();
        let (content_type, body) = match (self, &service) {
            (RestError::InvalidFilter { .. }, Some(message)) => {
                let target = self.target().unwrap_or("filter");
                let mut errors = serde_json::Map::new();
                errors.insert(target.to_owned(), serde_json::json!([message]));
                let problem = Problem {
                    code,
                    message,
                    target,
                    errors,
                    r#type: None,
                    title: PROBLEM_TITLE,
                    status: self.status().as_u16(),
                    detail: &explanation,
                    instance: None,
                    extensions: serde_json::Map::new(),
                };
                (PROBLEM_JSON, serde_json::to_vec(&problem))
            }
            (_, Some(message)) => {
                let mut detail = ErrorDetail::new(code, message, self.target());
                let help = ErrorDetail::new(code, &explanation, None);
                detail.details = Some(vec![help]);
                (JSON, serde_json::to_vec(&detail))
            }
            (_, None) => {
                let detail = ErrorDetail::new(code, &explanation, self.target());
                (JSON, serde_json::to_vec(&detail))
            }
        };
        let mut response =
            json_response(self.status(), content_type, body.unwrap_or_default(), code);
        let headers = response.headers_mut();
        match self {
            RestError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            RestError::MethodNotAllowed { allowed, .. } => {
                if let Ok(value) = HeaderValue::from_str(allowed) {
                    headers.insert(header::ALLOW, value);
                }
            }
            // Errors the service raises inside an operation carry the header, as recorded;
            // its request validation (a bad filter) does not.
            RestError::ConnectionNotFound { .. } => add_supported_versions(&mut response),
            _ => {}
        }
        response
    }
}

/// The service's "not found" wording: "Connection `c1` is not found.".
fn not_found_message(entity: Entity, name: &str) -> String {
    format!("{} `{name}` is not found.", entity.name())
}

/// The 404 of an existence check for a connection, group or user that does not exist: the
/// service's `Warning.<Entity>.NotExisted` `ErrorDetail` (docs/protocol.md §7.5). `serve` and the
/// replay sink both answer with it.
pub fn not_existed(entity: Entity, name: &str) -> HttpResponse {
    let message = not_found_message(entity, name);
    let code = entity.warning_code();
    let body = serde_json::to_vec(&ErrorDetail::new(code, &message, Some(entity.name())));
    let mut response = json_response(StatusCode::NOT_FOUND, JSON, body.unwrap_or_default(), code);
    add_supported_versions(&mut response);
    response
}

/// Adds the `api-supported-versions` header the service puts on every answer of an operation.
pub fn add_supported_versions(response: &mut HttpResponse) {
    response.headers_mut().insert(
        "api-supported-versions",
        HeaderValue::from_static(API_SUPPORTED_VERSIONS),
    );
}

/// An error response: status, body, its `Content-Type` and `x-ms-error-code`.
fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    code: &'static str,
) -> HttpResponse {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("x-ms-error-code", HeaderValue::from_static(code));
    response
}

#[cfg(test)]
mod tests;
