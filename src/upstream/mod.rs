//! Webhook calls. STUB: replaced by the real module.
pub mod cloudevents;
pub mod client;
pub use client::Upstream;

use std::time::Duration;
use bytes::Bytes;

/// Which event a webhook call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind { Connect, Connected, Disconnected, User(String) }

/// Where and how one hub's events are delivered.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub url_template: String,
    pub access_keys: Vec<String>,
    pub origin: String,
    pub timeout: Duration,
    pub preflight: bool,
    pub retry_delays: Vec<Duration>,
}

/// One event to deliver.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    pub hub: String,
    pub kind: EventKind,
    pub connection_id: String,
    pub namespace: String,
    pub socket_id: String,
    pub user_id: Option<String>,
    pub body: Bytes,
}

/// What the webhook answered.
#[derive(Debug, Clone)]
pub struct WebhookResponse {
    pub url: String,
    pub status: u16,
    pub reason: String,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub latency: Duration,
    pub attempts: u32,
}

/// Why a webhook call produced no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid webhook URL `{url}`: {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("webhook {url} unreachable: {cause}")]
    Unreachable { url: String, cause: String, latency: Duration },
    #[error("webhook {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("abuse-protection preflight to {url} failed: {detail}")]
    Preflight { url: String, detail: String },
}
