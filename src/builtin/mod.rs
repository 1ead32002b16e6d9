//! Built-in event handlers: `--webhook builtin:echo` and `--webhook builtin:chat`, so the
//! emulator is useful before the developer has written a handler of their own.
//!
//! Each one is a real HTTP server on an internal loopback port (`127.0.0.1:0`), started before
//! the service serves its first client; the handler URL template `builtin:<name>` is replaced by
//! `http://127.0.0.1:<port>/{hub}/{event}`. The service therefore calls it exactly as it calls an
//! external handler: same preflight, signatures, timeouts, live-log lines and recordings. A
//! handler answers the abuse-protection preflight (OPTIONS, or GET) with
//! `WebHook-Allowed-Origin: *`, refuses a POST whose `ce-signature` matches none of the access
//! keys (401), accepts every `connect`, and answers user events:
//!
//! - `echo` ([`echo`]): an event with an ack id gets `200 text/plain` `43[/ns,]<id>[args…]`, its own
//!   arguments; one without gets 204.
//! - `chat` ([`chat`]): first broadcasts the event to the rest of its namespace through the
//!   service's REST API, then acks like `echo` (502 with the reason when the broadcast failed).
//!
//! [`Builtins`] owns the running handlers of one service. `cli::running`'s `Running::start` creates
//! it after binding (when the endpoint is known) and before the service, and calls
//! [`Builtins::apply`] on the configuration, as the `--config` watcher does on every reload, so
//! every handler URL of every hub is resolved and the handlers learn the current access keys.

pub mod chat;
pub mod echo;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::auth::ce_signature;
use crate::config::ServeConfig;
use crate::http::{OnStop, ResponseBody, serve_http};
use echo::UserEvent;

/// The prefix that names a built-in handler in a handler URL template.
pub const SCHEME: &str = "builtin:";
/// Largest webhook body a built-in handler reads (a user event carries one client packet,
/// bounded by the service's `maxPayload`); larger bodies get 413.
pub const MAX_BODY: usize = 64 << 20;

/// The built-in handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Accept every connect; ack every event that has an ack id with its own arguments.
    Echo,
    /// Like `Echo`, and broadcast every event to the rest of its namespace.
    Chat,
}

impl Kind {
    /// Every built-in handler.
    pub const ALL: [Kind; 2] = [Kind::Echo, Kind::Chat];

    /// The name after `builtin:`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Chat => "chat",
        }
    }

    /// The built-in handler a URL template names: `Ok(None)` when it is not a `builtin:` template,
    /// a usage error listing the known handlers when the name is unknown.
    pub fn from_template(template: &str) -> Result<Option<Kind>, BuiltinError> {
        let Some(name) = template.trim().strip_prefix(SCHEME) else {
            return Ok(None);
        };
        match Kind::ALL.into_iter().find(|k| k.name() == name) {
            Some(kind) => Ok(Some(kind)),
            None => {
                let known: Vec<String> = Kind::ALL
                    .iter()
                    .map(|k| format!("{SCHEME}{}", k.name()))
                    .collect();
                Err(BuiltinError::new(format!(
                    "unknown built-in handler `{}`; the known ones are {}",
                    template.trim(),
                    known.join(", ")
                ))
                .hint("builtin:echo acks every event; builtin:chat also broadcasts it to the namespace"))
            }
        }
    }
}

/// Why a built-in handler cannot be used: an unknown name or a port that cannot be bound. The
/// caller (the command line) decides how to show it and which exit code it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinError {
    /// One line saying what went wrong.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

impl BuiltinError {
    fn new(message: String) -> Self {
        BuiltinError {
            message,
            hint: None,
        }
    }

    fn hint(mut self, hint: &str) -> Self {
        self.hint = Some(hint.to_owned());
        self
    }
}

impl std::fmt::Display for BuiltinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuiltinError {}

/// What the handlers know about the service: its endpoint (for REST calls) and its access keys
/// (to check `ce-signature` and sign REST tokens), which a reload may change.
#[derive(Debug)]
struct Context {
    endpoint: String,
    keys: RwLock<Arc<[String]>>,
}

impl Context {
    fn keys(&self) -> Arc<[String]> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_keys(&self, keys: &[String]) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys.into();
    }
}

/// One running built-in handler; dropping it stops the server.
#[derive(Debug)]
pub struct Handle {
    /// Where it listens.
    pub addr: SocketAddr,
    _stop: DropGuard,
}

impl Handle {
    /// The URL template that replaces `builtin:<name>`.
    pub fn template(&self) -> String {
        format!("http://{}/{{hub}}/{{event}}", self.addr)
    }
}

/// The built-in handlers of one service, each started on first use and shared by every hub
/// that names it. Dropping it stops them.
#[derive(Debug)]
pub struct Builtins {
    context: Arc<Context>,
    running: tokio::sync::Mutex<HashMap<Kind, Handle>>,
}

impl Builtins {
    /// Handlers for the service at `endpoint` (e.g. `http://localhost:8080`), checking signatures
    /// against `access_keys` until [`Builtins::apply`] says otherwise.
    pub fn new(endpoint: &str, access_keys: &[String]) -> Builtins {
        Builtins {
            context: Arc::new(Context {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                keys: RwLock::new(access_keys.into()),
            }),
            running: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The URL template to call for `template`: unchanged unless it is `builtin:<name>`, in which
    /// case that handler is started (once) and its loopback URL template returned.
    pub async fn resolve_webhook(&self, template: &str) -> Result<String, BuiltinError> {
        let Some(kind) = Kind::from_template(template)? else {
            return Ok(template.to_owned());
        };
        let mut running = self.running.lock().await;
        if let Some(handle) = running.get(&kind) {
            return Ok(handle.template());
        }
        let handle = start(kind, self.context.clone()).await?;
        let template = handle.template();
        running.insert(kind, handle);
        Ok(template)
    }

    /// Resolves every handler URL of `config` (declared hubs and the default hub) and makes the
    /// handlers use its access keys. Call it before the service gets the configuration.
    pub async fn apply(&self, config: &mut ServeConfig) -> Result<(), BuiltinError> {
        let handlers = config
            .hubs
            .iter_mut()
            .chain(std::iter::once(&mut config.default_hub))
            .flat_map(|hub| hub.handlers.iter_mut());
        for handler in handlers {
            handler.url = self.resolve_webhook(&handler.url).await?;
        }
        self.context.set_keys(&config.access_keys);
        Ok(())
    }
}

/// What one handler's connections share.
struct Shared {
    kind: Kind,
    context: Arc<Context>,
    chat: chat::Broadcaster,
}

/// Binds `127.0.0.1:0` and serves `kind` until the returned handle is dropped.
async fn start(kind: Kind, context: Arc<Context>) -> Result<Handle, BuiltinError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| {
            BuiltinError::new(format!(
                "cannot start the built-in handler {SCHEME}{}: cannot listen on 127.0.0.1: {e}",
                kind.name()
            ))
        })?;
    let addr = listener.local_addr().map_err(|e| {
        BuiltinError::new(format!(
            "cannot start the built-in handler {SCHEME}{}: {e}",
            kind.name()
        ))
    })?;
    let stop = CancellationToken::new();
    let shared = Arc::new(Shared {
        kind,
        context,
        chat: chat::Broadcaster::default(),
    });
    tokio::spawn(serve_http(
        listener,
        stop.clone(),
        OnStop::DropConnections,
        move |req, _peer| {
            let shared = shared.clone();
            async move { handle(&shared, req).await }
        },
    ));
    Ok(Handle {
        addr,
        _stop: stop.drop_guard(),
    })
}

type Reply = Response<ResponseBody>;

fn reply(status: StatusCode, content_type: Option<&'static str>, body: String) -> Reply {
    let mut builder = Response::builder().status(status);
    if let Some(ct) = content_type {
        builder = builder.header(CONTENT_TYPE, ct);
    }
    builder
        .body(ResponseBody::full(body))
        .unwrap_or_else(|_| Response::new(ResponseBody::empty()))
}

fn text(status: StatusCode, body: String) -> Reply {
    reply(status, Some("text/plain; charset=utf-8"), body)
}

/// Answers one request the way a correct event handler does (see the module docs).
async fn handle(shared: &Shared, req: Request<Incoming>) -> Reply {
    if let Some(answer) = not_an_event(req.method(), shared.kind.name()) {
        return answer;
    }
    let (parts, body) = req.into_parts();
    answer_event(shared, &parts.headers, body)
        .await
        .unwrap_or_else(|Refusal(status, why)| text(status, why))
}

/// The answer to anything but a POST: abuse-protection validation or 405.
fn not_an_event(method: &Method, name: &str) -> Option<Reply> {
    if method == Method::OPTIONS || method == Method::GET {
        // Abuse protection (docs/protocol.md §6): any origin may call this local handler.
        let mut answer = reply(StatusCode::OK, None, String::new());
        answer.headers_mut().insert(
            "WebHook-Allowed-Origin",
            http::HeaderValue::from_static("*"),
        );
        return Some(answer);
    }
    (method != Method::POST).then(|| {
        text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("builtin:{name} answers POST (events) and OPTIONS (validation)"),
        )
    })
}

/// Why an event was refused: the status and the text answered.
struct Refusal(StatusCode, String);

/// A POSTed event: checked, read, then answered (and, for chat, broadcast).
async fn answer_event(
    shared: &Shared,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Reply, Refusal> {
    let name = shared.kind.name();
    let keys = shared.context.keys();
    check_signature(headers, &keys, name)?;
    let body = read_body(body, name).await?;
    let Some(event) = user_event(headers, &body, name)? else {
        // connect is accepted; connected and disconnected need nothing.
        return Ok(reply(StatusCode::OK, None, String::new()));
    };
    if shared.kind == Kind::Chat {
        chat_broadcast(shared, headers, &keys, &event).await?;
    }
    Ok(match event.ack() {
        Some(ack) => reply(StatusCode::OK, Some("text/plain"), ack),
        None => reply(StatusCode::NO_CONTENT, None, String::new()),
    })
}

/// The ce-connectionId header is present and ce-signature matches one of the keys.
fn check_signature(headers: &HeaderMap, keys: &[String], name: &str) -> Result<(), Refusal> {
    let connection_id = header(headers, "ce-connectionid");
    if connection_id.is_empty() {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("builtin:{name}: the ce-connectionId header is missing"),
        ));
    }
    if !signature_matches(header(headers, "ce-signature"), keys, connection_id) {
        return Err(Refusal(
            StatusCode::UNAUTHORIZED,
            format!("builtin:{name}: ce-signature matches none of the access keys"),
        ));
    }
    Ok(())
}

/// The whole body, at most [`MAX_BODY`] bytes.
async fn read_body(body: Incoming, name: &str) -> Result<Bytes, Refusal> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("builtin:{name}: the body is larger than {MAX_BODY} bytes"),
        )),
        Err(e) => Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("builtin:{name}: cannot read the body: {e}"),
        )),
    }
}

/// The user event a body carries; `None` for system events.
fn user_event<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    name: &str,
) -> Result<Option<UserEvent<'a>>, Refusal> {
    let ce_type = header(headers, "ce-type");
    if ce_type.starts_with("azure.webpubsub.sys.") {
        return Ok(None);
    }
    let refuse = |why: String| Refusal(StatusCode::BAD_REQUEST, format!("builtin:{name}: {why}"));
    if !ce_type.starts_with("azure.webpubsub.user.") {
        return Err(refuse(format!("unknown ce-type `{ce_type}`")));
    }
    let Ok(body) = std::str::from_utf8(body) else {
        return Err(refuse("the user event body is not UTF-8 text".into()));
    };
    UserEvent::parse(body)
        .map(Some)
        .map_err(|e| refuse(e.to_string()))
}

/// builtin:chat sends the event to the rest of the namespace through the REST API.
async fn chat_broadcast(
    shared: &Shared,
    headers: &HeaderMap,
    keys: &[String],
    event: &UserEvent<'_>,
) -> Result<(), Refusal> {
    let socket_id = header(headers, "ce-socketid");
    let hub = header(headers, "ce-hub");
    if socket_id.is_empty() || hub.is_empty() {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "builtin:chat: the ce-hub and ce-socketId headers are required".into(),
        ));
    }
    let Some(key) = keys.first() else {
        return Err(Refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "builtin:chat: no access key to sign the REST call with".into(),
        ));
    };
    let endpoint = &shared.context.endpoint;
    shared
        .chat
        .broadcast(endpoint, key, hub, socket_id, event)
        .await
        .map_err(|why| Refusal(StatusCode::BAD_GATEWAY, why))
}

/// A header as text; empty when absent or not visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Whether one of the `sha256=<hex>` values of a `ce-signature` header is the signature of
/// `connection_id` under one of `keys` (docs/protocol.md §6; hex compared case-insensitively).
fn signature_matches(header: &str, keys: &[String], connection_id: &str) -> bool {
    let offered: Vec<&str> = header.split(',').map(str::trim).collect();
    keys.iter().any(|key| {
        let expected = ce_signature(std::slice::from_ref(key), connection_id);
        offered.iter().any(|o| o.eq_ignore_ascii_case(&expected))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_known_handlers_only() {
        assert_eq!(
            Kind::from_template("builtin:echo").unwrap(),
            Some(Kind::Echo)
        );
        assert_eq!(
            Kind::from_template("builtin:chat").unwrap(),
            Some(Kind::Chat)
        );
        assert_eq!(
            Kind::from_template("http://localhost:7071/x").unwrap(),
            None
        );
        let err = Kind::from_template("builtin:nope").unwrap_err();
        assert!(err.hint.is_some(), "{err:?}");
        assert!(err.message.contains("builtin:nope"), "{}", err.message);
        assert!(
            err.message.contains("builtin:echo, builtin:chat"),
            "{}",
            err.message
        );
    }

    #[test]
    fn signatures_match_any_key_in_any_position() {
        let keys = vec!["k1".to_string(), "k2".to_string()];
        let sig1 = ce_signature(&keys[..1], "c");
        let sig2 = ce_signature(&keys[1..], "c");
        assert!(signature_matches(&sig1, &keys, "c"));
        assert!(signature_matches(
            &format!(
                "sha256=00, {}",
                sig2.to_uppercase().replace("SHA256", "sha256")
            ),
            &keys,
            "c"
        ));
        assert!(!signature_matches(&sig1, &keys, "other"));
        assert!(!signature_matches("", &keys, "c"));
        assert!(!signature_matches(&sig1, &[], "c"));
    }

    #[tokio::test]
    async fn one_server_per_kind_and_plain_urls_unchanged() {
        let builtins = Builtins::new("http://localhost:1", &["k".to_string()]);
        let a = builtins.resolve_webhook("builtin:echo").await.unwrap();
        let b = builtins.resolve_webhook("builtin:echo").await.unwrap();
        let c = builtins.resolve_webhook("builtin:chat").await.unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("http://127.0.0.1:") && a.ends_with("/{hub}/{event}"));
        assert_eq!(
            builtins.resolve_webhook("http://x/{event}").await.unwrap(),
            "http://x/{event}"
        );
        assert!(builtins.resolve_webhook("builtin:x").await.is_err());
    }
}
