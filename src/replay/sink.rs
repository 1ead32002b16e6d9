//! The REST sink: during a replay, the handler under test calls the Web PubSub data plane
//! (`/api/hubs/<hub>/…`) here instead of a real service. The sink answers the way the service
//! would for the recorded hubs, connections, users and groups ([`World`]) and captures every call
//! for the [`super::runner`], which opens a capture window per event.
//!
//! Every call runs through `serve`'s own REST pipeline and operations ([`crate::rest::run`])
//! over the recorded world (its `store` module), so the sink and `serve` can never disagree
//! about what a path means, which checks apply, what an operation answers or what the lint
//! sees. The one difference: a call that matches a recorded call of the event being replayed
//! gets the recorded status. Bearer tokens are checked leniently: a bad one becomes a warning in
//! the report, never a 401, because the replay tests the handler's logic, not its keys.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::compare::{CallView, Rules};
use super::session::{RecordedCall, World};
use crate::http::{HttpResponse, ResponseBody};
use crate::http::{OnStop, serve_http};
use crate::lint::{Collected, Findings};
use crate::rest::error as rest_error;
use crate::rest::{Operation, RestError, request};
use crate::traffic::rest_call::{OperationName, RestCall, query_map};
use store::Recorded;

/// Largest REST request body read, in bytes (the Engine.IO `maxPayload` default).
pub const MAX_BODY: usize = 1_000_000;
/// Distinct warnings kept; later ones are counted, not stored.
pub const MAX_WARNINGS: usize = 50;
/// REST calls kept per event; a handler looping on REST calls is reported, not stored forever.
pub const MAX_CALLS_PER_EVENT: usize = 10_000;
/// How long closing a window waits for calls that arrived inside it to finish.
pub const PENDING_WAIT: Duration = Duration::from_secs(5);

/// One REST call the handler made during a replay, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedCall {
    /// When it arrived, after its event was sent.
    pub offset: Duration,
    /// The call and what the sink answered.
    pub call: RestCall,
}

/// The capture window of the event being replayed.
struct Window {
    /// Distinguishes windows, so a call that outlives its window is never booked to the next.
    id: u64,
    /// Number of the event, for messages about late calls.
    label: String,
    started: Instant,
    /// Recorded calls of the event not yet matched, with their recorded status.
    recorded: Vec<(String, u16)>,
    captured: Vec<CapturedCall>,
    /// Calls that arrived in this window and are still being read or answered.
    pending: usize,
}

struct State {
    window: Option<Window>,
    /// The id the next window gets.
    next_window: u64,
    /// The label of the last closed window, for late-call warnings.
    last_label: Option<String>,
    world: World,
    rules: Rules,
    warnings: Vec<String>,
    dropped_warnings: usize,
}

impl State {
    fn warn(&mut self, message: String) {
        if self.warnings.contains(&message) {
            return;
        }
        if self.warnings.len() >= MAX_WARNINGS {
            self.dropped_warnings += 1;
        } else {
            self.warnings.push(message);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a pending call finishes.
    settled: Notify,
    access_key: String,
    endpoint: String,
    /// `--strict`: the contract lint over the handler's calls.
    lint: Option<Arc<Collected>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No invariant a panicking holder could break; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running sink. Dropping it stops it.
pub struct Sink {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Sink {
    /// Listens on `host:port` (`localhost` = 127.0.0.1 and ::1, as `serve` does; port 0 picks a
    /// free one).
    pub async fn start(
        host: &str,
        port: u16,
        access_key: &str,
        rules: Rules,
        lint: Option<Arc<Collected>>,
    ) -> std::io::Result<Sink> {
        let (listeners, port) = crate::server::bind(host, port).await?;
        let endpoint = crate::server::public_endpoint(host, port);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                window: None,
                next_window: 1,
                last_label: None,
                world: World::default(),
                rules,
                warnings: Vec::new(),
                dropped_warnings: 0,
            }),
            settled: Notify::new(),
            access_key: access_key.to_owned(),
            endpoint,
            lint,
        });
        let stop = CancellationToken::new();
        for listener in listeners {
            tokio::spawn(serve_http(
                listener,
                stop.clone(),
                OnStop::DropConnections,
                {
                    let shared = shared.clone();
                    move |req, _peer| {
                        let shared = shared.clone();
                        async move { handle(&shared, req).await }
                    }
                },
            ));
        }
        Ok(Sink { shared, stop })
    }

    /// `http://localhost:<port>` (the endpoint of the connection string to give the handler).
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// Replaces what the sink knows (one session's recording).
    pub fn set_world(&self, world: World) {
        // Groups the recording saw in use existed, as far as the lint is concerned.
        if let Some(lint) = &self.shared.lint {
            for (hub, known) in &world.hubs {
                for group in &known.groups {
                    lint.linter().learn(hub, group);
                }
            }
        }
        self.shared.lock().world = world;
    }

    /// Opens the capture window of one event; its `recorded` calls decide the answers to calls
    /// that match them.
    pub fn open(&self, label: String, recorded: &[RecordedCall]) {
        let mut state = self.shared.lock();
        let rules = state.rules.clone();
        let recorded = recorded
            .iter()
            .map(|c| (CallView::new(&c.call, &rules).key(), c.call.status))
            .collect();
        let id = state.next_window;
        state.next_window += 1;
        state.window = Some(Window {
            id,
            label,
            started: Instant::now(),
            recorded,
            captured: Vec::new(),
            pending: 0,
        });
    }

    /// Closes the window once the calls that arrived in it are answered (at most
    /// [`PENDING_WAIT`]), and returns them in arrival order.
    pub async fn close(&self) -> Vec<CapturedCall> {
        let deadline = tokio::time::Instant::now() + PENDING_WAIT;
        loop {
            let notified = self.shared.settled.notified();
            {
                let mut state = self.shared.lock();
                let busy = state.window.as_ref().is_some_and(|w| w.pending > 0);
                if !busy || tokio::time::Instant::now() >= deadline {
                    let Some(window) = state.window.take() else {
                        return Vec::new();
                    };
                    if window.pending > 0 {
                        let message = format!(
                            "{} REST call(s) made for {} were still unanswered {} after its \
                             settle window; they were not compared",
                            window.pending,
                            window.label,
                            crate::duration::format(PENDING_WAIT)
                        );
                        state.warn(message);
                    }
                    state.last_label = Some(window.label);
                    let mut calls = window.captured;
                    calls.sort_by_key(|c| c.offset);
                    return calls;
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Warnings collected so far (bad tokens, late calls), oldest first.
    pub fn warnings(&self) -> Vec<String> {
        let state = self.shared.lock();
        let mut out = state.warnings.clone();
        if state.dropped_warnings > 0 {
            out.push(format!(
                "… and {} more REST warning(s)",
                state.dropped_warnings
            ));
        }
        out
    }
}

/// Answers and captures one request.
async fn handle(shared: &Shared, req: Request<Incoming>) -> HttpResponse {
    if matches!(req.uri().path(), "/api/health" | "/api/health/") {
        // The health check is no operation: no `api-supported-versions`, as `serve` answers it.
        return Response::new(ResponseBody::empty());
    }
    let arrived = Instant::now();
    let in_window = shared.lock().window.as_mut().map(|window| {
        window.pending += 1;
        (window.id, window.started)
    });
    // Undoes the `pending` count if this request is abandoned (the handler hung up mid-body).
    let mut guard = PendingGuard {
        shared,
        window: in_window.map(|(id, _)| id),
    };
    let (parts, body) = req.into_parts();
    let body = request::read_body(&parts.headers, body, MAX_BODY).await;
    let (call, response) = respond_to(shared, &parts, body).await;
    let mut state = shared.lock();
    guard.window = None;
    let offset = in_window.map_or(Duration::ZERO, |(_, started)| {
        arrived.saturating_duration_since(started)
    });
    book(
        &mut state,
        in_window.map(|(id, _)| id),
        CapturedCall { offset, call },
    );
    drop(state);
    shared.settled.notify_waiters();
    response
}

/// Routes, checks and answers one call; returns it as captured, with the status answered.
async fn respond_to(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Result<Bytes, RestError>,
) -> (RestCall, HttpResponse) {
    let path = parts.uri.path().to_owned();
    let routed = crate::rest::route(&parts.method, &path);
    let (hub, operation) = match &routed {
        Ok((hub, op)) => (hub.clone(), op.kind()),
        Err(_) => (String::new(), OperationName::Unknown),
    };
    check_token(shared, parts, operation);
    let mut call = RestCall {
        method: parts.method.clone(),
        operation,
        hub,
        path,
        query: query_map(parts.uri.query()),
        body: body
            .as_ref()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .unwrap_or_default(),
        status: 0,
    };
    let response = match body {
        Err(e) => e.into_response(),
        Ok(bytes) => {
            // Only a routed call with an `api-version` can stand for a recorded one.
            let recorded = match &routed {
                Ok((_, op)) if call.query.contains_key("api-version") => {
                    take_recorded(shared, &call).map(|status| (status, op))
                }
                _ => None,
            };
            let store = Recorded { shared };
            let mut log = crate::rest::Call::default();
            let outcome = crate::rest::run(&store, parts, Full::new(bytes), &mut log).await;
            let response = crate::rest::respond(&parts.method, outcome);
            match recorded {
                Some((status, op)) => as_recorded(response, status, op),
                None => response,
            }
        }
    };
    call.status = response.status().as_u16();
    (call, response)
}

/// The recorded status of the first unmatched recorded call of the open window that `call`
/// matches, taken so it answers only once.
fn take_recorded(shared: &Shared, call: &RestCall) -> Option<u16> {
    let mut state = shared.lock();
    let key = CallView::new(call, &state.rules).key();
    let window = state.window.as_mut()?;
    let i = window.recorded.iter().position(|(k, _)| *k == key)?;
    Some(window.recorded.remove(i).1)
}

/// `serve`'s answer when the recording answered the same; otherwise the recorded status: the
/// service's 404 of an existence check, a `Recorded` error body, or an empty success.
fn as_recorded(answer: HttpResponse, status: u16, op: &Operation) -> HttpResponse {
    let Ok(status) = StatusCode::from_u16(status) else {
        return answer;
    };
    if status == answer.status() {
        return answer;
    }
    if let Some((entity, name)) = op.looks_for().filter(|_| status == StatusCode::NOT_FOUND) {
        return rest_error::not_existed(entity, name);
    }
    let mut response = if status.is_client_error() || status.is_server_error() {
        let body = serde_json::json!({
            "code": "Recorded",
            "message": format!(
                "sio-emu replay: this call was answered {} when the session was recorded",
                status.as_u16()
            ),
        });
        let mut response = Response::new(ResponseBody::full(body.to_string()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    } else {
        let mut response = Response::new(ResponseBody::empty());
        rest_error::add_supported_versions(&mut response);
        response
    };
    *response.status_mut() = status;
    response
}

/// Books a call to the window it arrived in, if that window is still open; warns otherwise.
fn book(state: &mut State, arrived_in: Option<u64>, captured: CapturedCall) {
    match (arrived_in, state.window.as_mut()) {
        (Some(id), Some(window)) if window.id == id => {
            window.pending = window.pending.saturating_sub(1);
            if window.captured.len() < MAX_CALLS_PER_EVENT {
                window.captured.push(captured);
            } else {
                let message = format!(
                    "{} made more than {MAX_CALLS_PER_EVENT} REST calls; the rest were answered \
                     but not compared",
                    window.label
                );
                state.warn(message);
            }
        }
        _ => {
            let after = state
                .last_label
                .clone()
                .unwrap_or_else(|| "the first event".into());
            let key = CallView::new(&captured.call, &state.rules).key();
            state.warn(format!(
                "REST call {key} arrived outside every event's window (after {after}); it was \
                 answered but not compared; raise --settle if the handler makes calls after \
                 answering"
            ));
        }
    }
}

/// Counts a request as finished in its window when it is dropped before finishing.
struct PendingGuard<'a> {
    shared: &'a Shared,
    /// The window still counting this request as pending.
    window: Option<u64>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let Some(id) = self.window else {
            return;
        };
        if let Some(window) = self.shared.lock().window.as_mut().filter(|w| w.id == id) {
            window.pending = window.pending.saturating_sub(1);
        }
        self.shared.settled.notify_waiters();
    }
}

/// Warns (once per distinct problem) about a missing or bad Bearer token.
fn check_token(shared: &Shared, parts: &http::request::Parts, operation: OperationName) {
    let url = request::request_url(parts, shared.endpoint.trim_start_matches("http://"));
    let keys = [shared.access_key.clone()];
    if let Err(e) = request::authorize(&parts.headers, &keys, &url) {
        shared.lock().warn(format!(
            "{operation} call with a token the service would refuse (401): {e}; the replay \
             answered it anyway"
        ));
    }
}

mod store;

#[cfg(test)]
mod tests;
