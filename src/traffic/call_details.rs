//! What the inspector reads back of a webhook call to show it as it was sent: the request is
//! rebuilt from the event (the session line) and the `ce-id` / `ce-time` kept here, with the
//! same function that built it; the answer's headers are kept here, redacted. The ring decodes
//! it from what it kept of the hop ([`super::hop::WebhookHop`]).
//! Plain data, so the layers that make the call and the inspector that reads it share no flag.

use std::time::SystemTime;

/// A webhook call's details kept by its ring entry.
#[derive(Debug, Clone)]
pub struct CallDetails {
    /// The call's `ce-id`.
    pub ce_id: String,
    /// The call's `ce-time`.
    pub ce_time: SystemTime,
    /// The answer's headers (name, value), when there was an answer, with secret values
    /// redacted ([`super::redact`]).
    pub answer_headers: Option<Vec<(String, String)>>,
}
