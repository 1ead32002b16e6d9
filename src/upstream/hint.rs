//! What to tell the developer when a webhook call goes wrong: one hint per failure shape, plus a
//! log-safe preview of response bodies.
//!
//! The callers (Socket.IO layer, traffic renderers) decide where a hint is shown; this module only
//! knows webhook facts: Azure Functions' `/runtime/webhooks/` path and its status codes
//! (docs/protocol.md §5.1, §6), `func start`'s default port, the `serve` flags in README.md.

use super::{WebhookError, WebhookResponse};
use crate::auth::Endpoint;

/// Path marker of an Azure Functions webhook URL.
const FUNCTIONS_PATH: &str = "/runtime/webhooks/";
/// The default webhook, quoted in hints.
const DEFAULT_WEBHOOK: &str = "http://localhost:7071/runtime/webhooks/socketio";

/// The phrase [`super::client`] puts in every "nothing listening" cause, so hints can spot it.
pub(crate) const CONNECTION_REFUSED: &str = "connection refused";
/// How a failure to read the webhook's answer begins: it answered, but not in HTTP/1.1 that
/// can be read.
pub(crate) const ANSWER_UNREADABLE: &str = "the webhook's answer could not be read";
/// How a failure in the middle of an answer's body begins (the head was read).
pub(crate) const ANSWER_BODY_FAILED: &str = "the connection failed while reading the";

impl WebhookResponse {
    /// A next step for a non-2xx answer, or `None` for success or when there is nothing specific
    /// to say.
    pub fn hint(&self) -> Option<String> {
        let functions = self.url.contains(FUNCTIONS_PATH);
        let text = match self.status {
            200..=299 => return None,
            400 if functions => {
                "Azure Functions answers 400 when a request lacks a required ce-* header, when a \
                 user event's ce-eventName differs from the event name in the packet, or when the \
                 trigger cannot parse the payload; check the function host's log for the reason"
                    .to_owned()
            }
            401 if functions => {
                "401 from an Azure Functions URL usually means a missing `?code=` key (or a \
                 WebHook-Request-Origin / key mismatch): the function app's \
                 WebPubSubForSocketIOConnectionString must carry this emulator's AccessKey and its \
                 Endpoint host must equal WebHook-Request-Origin"
                    .to_owned()
            }
            401 | 403 => {
                "the webhook refused the call's credentials: check that it validates ce-signature \
                 with the same AccessKey as this emulator and that it allows the \
                 WebHook-Request-Origin this emulator sends"
                    .to_owned()
            }
            404 if functions => format!(
                "Azure Functions answers 404 when no function's Socket.IO trigger matches this \
                 hub, namespace and event name (check the trigger's hub, namespace and eventName) \
                 or when the URL is wrong (the default is {DEFAULT_WEBHOOK})"
            ),
            404 => format!(
                "nothing handles {}; check the --webhook URL template ({{hub}} and {{event}} are \
                 substituted; the Azure Functions default is {DEFAULT_WEBHOOK})",
                self.url
            ),
            405 => "the webhook does not accept POST at this URL; check the --webhook URL template"
                .to_owned(),
            408 | 504 => {
                "the webhook (or a proxy in front of it) timed out; see its own log".to_owned()
            }
            413 => "the webhook refused the request body as too large".to_owned(),
            415 => "the webhook refused the Content-Type; user events are sent as `text/plain`, \
                 system events as `application/json; charset=utf-8` (docs/protocol.md §5.1)"
                .to_owned(),
            500..=599 => {
                "the webhook itself failed while handling the event; see its own log (for Azure \
                 Functions, the `func start` console)"
                    .to_owned()
            }
            _ => return None,
        };
        Some(text)
    }
}

impl WebhookError {
    /// A next step the developer can take, or `None` when the message says it all.
    pub fn hint(&self) -> Option<String> {
        match self {
            WebhookError::InvalidUrl { detail, .. } => {
                if detail.contains("WebHook-Request-Origin") {
                    None
                } else {
                    Some(format!(
                        "pass --webhook with an http:// URL template; {{hub}} and {{event}} are \
                         substituted, and the Azure Functions default is {DEFAULT_WEBHOOK}"
                    ))
                }
            }
            WebhookError::Unreachable { url, cause, .. } => Some(refused_hint(url, cause)),
            WebhookError::Timeout { .. } => Some(
                "the webhook did not finish answering in time; check that its handler returns \
                 (a breakpoint or a slow cold start counts), or raise --webhook-timeout"
                    .to_owned(),
            ),
            WebhookError::Preflight { url, detail } => {
                let mut text = if detail.contains(CONNECTION_REFUSED) {
                    refused_hint(url, detail) + "; "
                } else {
                    String::new()
                };
                text.push_str(
                    "the webhook must answer the abuse-protection OPTIONS (or GET) request with \
                     2xx and a WebHook-Allowed-Origin header of `*` or this emulator's \
                     WebHook-Request-Origin; to skip the check, run `serve` with --no-preflight",
                );
                Some(text)
            }
            WebhookError::ResponseTooLarge { .. } => Some(
                "a webhook answer is forwarded to one client as a single packet; keep it small \
                 and send bulk data through the REST API instead"
                    .to_owned(),
            ),
        }
    }
}

fn refused_hint(url: &str, cause: &str) -> String {
    if cause.starts_with(ANSWER_UNREADABLE) || cause.starts_with(ANSWER_BODY_FAILED) {
        return "the webhook answered, but its answer broke off or is not HTTP/1.1 that can be \
                read; check what the handler writes: a status line, headers, and a body framed \
                by Content-Length, chunked encoding or the end of the connection"
            .to_owned();
    }
    if !cause.contains(CONNECTION_REFUSED) {
        return "check the host and port of the --webhook URL template and that the webhook \
                server is running"
            .to_owned();
    }
    let endpoint = Endpoint::of_url(url).ok();
    let authority = endpoint.as_ref().map_or(url, Endpoint::authority);
    let local = endpoint.as_ref().is_some_and(|e| {
        ["localhost", "127.0.0.1", "::1"].contains(&e.hostname()) && e.port_text() == Some("7071")
    });
    if local {
        format!("is `func start` running? the default webhook is {DEFAULT_WEBHOOK}")
    } else {
        format!(
            "nothing is listening on {authority}; start the webhook server or fix the --webhook \
             URL template"
        )
    }
}

/// The first `max_chars` characters of a body as one log-safe line: invalid UTF-8 becomes `�`,
/// control characters are escaped (`\n`, `\u{1b}`), and `…` marks a cut.
pub fn body_preview(body: &[u8], max_chars: usize) -> String {
    crate::traffic::BodyPreview::new(body, max_chars).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn response(url: &str, status: u16) -> WebhookResponse {
        WebhookResponse {
            url: url.into(),
            status,
            head: crate::upstream::ResponseHead::new(status, "", &[]),
            body: Bytes::new(),
            latency: Duration::ZERO,
            attempts: 1,
        }
    }

    #[test]
    fn status_hints() {
        let functions = "http://localhost:7071/runtime/webhooks/socketio";
        assert!(response(functions, 200).hint().is_none());
        assert!(response(functions, 204).hint().is_none());
        let h = response(functions, 401).hint().unwrap();
        assert!(h.contains("?code="), "{h}");
        let h = response("http://localhost:3000/hook", 401).hint().unwrap();
        assert!(h.contains("ce-signature"), "{h}");
        let h = response("http://localhost:3000/hook", 404).hint().unwrap();
        assert!(h.contains("URL template"), "{h}");
        let h = response(functions, 404).hint().unwrap();
        assert!(h.contains("trigger"), "{h}");
        assert!(response(functions, 500).hint().unwrap().contains("own log"));
        assert!(response(functions, 302).hint().is_none());
    }

    #[test]
    fn error_hints() {
        let refused = WebhookError::Unreachable {
            url: "http://localhost:7071/runtime/webhooks/socketio".into(),
            cause: "connection refused (nothing is listening on localhost:7071)".into(),
            latency: Duration::ZERO,
        };
        assert!(refused.hint().unwrap().contains("func start"));
        let other = WebhookError::Unreachable {
            url: "http://127.0.0.1:3000/x".into(),
            cause: "connection refused".into(),
            latency: Duration::ZERO,
        };
        let h = other.hint().unwrap();
        assert!(
            h.contains("127.0.0.1:3000") && !h.contains("func start"),
            "{h}"
        );
        let preflight = WebhookError::Preflight {
            url: "http://localhost:3000/validate".into(),
            detail: "OPTIONS answered 400 Bad Request".into(),
        };
        let h = preflight.hint().unwrap();
        assert!(h.contains("--no-preflight") && h.contains("WebHook-Allowed-Origin"));
        let preflight_refused = WebhookError::Preflight {
            url: "http://[::1]:7071/runtime/webhooks/socketio".into(),
            detail: "OPTIONS could not be sent: connection refused".into(),
        };
        assert!(preflight_refused.hint().unwrap().contains("func start"));
        let timeout = WebhookError::Timeout {
            url: "http://localhost/x".into(),
            after: Duration::from_millis(200),
        };
        assert!(timeout.hint().unwrap().contains("--webhook-timeout"));
        assert_eq!(
            timeout.to_string(),
            "webhook http://localhost/x did not answer within 200ms"
        );
        let invalid = WebhookError::InvalidUrl {
            url: "https://x".into(),
            detail: "https webhooks are not supported".into(),
        };
        assert!(invalid.hint().unwrap().contains("--webhook"));
    }

    #[test]
    fn previews() {
        assert_eq!(body_preview(b"hello", 10), "hello");
        assert_eq!(body_preview(b"hello world", 5), "hello…");
        assert_eq!(body_preview(b"a\nb\r\tc", 10), "a\\nb\\r\\tc");
        assert_eq!(body_preview(b"\x1b[31m", 10), "\\u{1b}[31m");
        assert_eq!(body_preview(&[0xff, b'a'], 10), "\u{fffd}a");
        assert_eq!(body_preview("你好世界".as_bytes(), 2), "你好…");
        assert_eq!(body_preview(b"", 10), "");
        assert_eq!(body_preview(b"abc", 0), "…");
    }
}
