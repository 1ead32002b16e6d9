//! The HTTP surface of Engine.IO: one routing `match` over every request shape (handshake or
//! session, polling or WebSocket, GET/POST/OPTIONS), CORS for browser pages (docs/protocol.md §14
//! decision 18), and session creation. [`polling`] and [`websocket`] carry the per-transport
//! details.

pub mod polling;
pub mod websocket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::session::{Actor, WsStream, inbox};
use super::{
    Acceptor, EngineError, Handler, Handshake, Refusal, Registry, SessionHandle, SharedFlags,
    Transport,
};
use crate::config::EngineConfig;
use crate::http::ResponseBody;

pub use crate::http::{HttpResponse, json_response};

type EventOf<A> = <<A as Acceptor>::Handler as Handler>::Event;

/// What a request body must be for the engine: hyper's, or one read in full beforehand.
pub trait RequestBody:
    hyper::body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> RequestBody for B where
    B: hyper::body::Body<
            Data = bytes::Bytes,
            Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        > + Send
        + 'static
{
}

/// Whether a client-endpoint query asks for the long-polling transport.
pub fn wants_polling(query: Option<&str>) -> bool {
    parse_query(query.unwrap_or("")).transport == Some("polling")
}

/// The Engine.IO server: live sessions plus the acceptor that admits new ones.
pub struct EngineIo<A: Acceptor> {
    config: Arc<EngineConfig>,
    acceptor: A,
    registry: Registry<EventOf<A>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// The query parameters Engine.IO reads.
#[derive(Debug, Default)]
struct EngineQuery<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

fn parse_query(query: &str) -> EngineQuery<'_> {
    let mut q = EngineQuery::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "EIO" => q.eio = Some(value),
            "transport" => q.transport = Some(value),
            "sid" => q.sid = Some(value),
            _ => {}
        }
    }
    q
}

impl<A: Acceptor> EngineIo<A> {
    /// A server whose sessions stop when `shutdown` fires and run on `tracker`.
    pub fn new(
        config: Arc<EngineConfig>,
        acceptor: A,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        EngineIo {
            config,
            acceptor,
            registry: Arc::new(Mutex::new(HashMap::new())),
            shutdown,
            tracker,
        }
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Answers one request on the client endpoint of `route`, whoever read it (hyper, or the
    /// minimal HTTP/1 path for long-polling requests).
    pub async fn handle<B: RequestBody>(&self, route: &str, req: Request<B>) -> HttpResponse {
        // A copy, so a waiting long poll does not pin the request's read buffer.
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| HeaderValue::from_bytes(o.as_bytes()).ok());
        let mut response = self.route(route, req).await;
        if let Some(origin) = origin {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        response
    }

    async fn route<B: RequestBody>(&self, route: &str, req: Request<B>) -> HttpResponse {
        if req.method() == Method::OPTIONS {
            return cors_preflight(&req);
        }
        let query = req.uri().query().unwrap_or("").to_owned();
        let q = parse_query(&query);
        if q.eio != Some("4") {
            return engine_error(EngineError::UnsupportedProtocolVersion);
        }
        let transport = match q.transport {
            Some("polling") => Transport::Polling,
            Some("websocket") => Transport::WebSocket,
            _ => return engine_error(EngineError::UnknownTransport),
        };
        let wants_upgrade = websocket::is_upgrade_request(&req);
        match (q.sid, transport) {
            (None, Transport::Polling) if req.method() == Method::GET => {
                self.handshake_polling(route, &req)
            }
            (None, Transport::Polling) => engine_error(EngineError::BadHandshakeMethod),
            (None, Transport::WebSocket) if wants_upgrade => self.handshake_websocket(route, req),
            (None, Transport::WebSocket) => engine_error(EngineError::BadRequest),
            (Some(sid), transport) => {
                let Some(session) = self.lookup(route, sid) else {
                    return engine_error(EngineError::UnknownSid);
                };
                match transport {
                    Transport::Polling if req.method() == Method::GET => {
                        // The request's buffers are not needed while the long poll waits.
                        drop(req);
                        polling::get(&session).await
                    }
                    Transport::Polling if req.method() == Method::POST => {
                        // Boxed: a connection waiting on a long-poll GET keeps this future's
                        // state, whose size is that of its largest path.
                        Box::pin(polling::post(&session, req, self.config.max_payload)).await
                    }
                    Transport::Polling => engine_error(EngineError::BadRequest),
                    Transport::WebSocket if wants_upgrade => {
                        websocket::upgrade(session, req, &self.config)
                    }
                    Transport::WebSocket => engine_error(EngineError::BadRequest),
                }
            }
        }
    }

    fn lookup(&self, route: &str, sid: &str) -> Option<SessionHandle<EventOf<A>>> {
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry
            .get(sid)
            .filter(|s| s.route.eq_ignore_ascii_case(route))
            .cloned()
    }

    /// The open packet: `0{"sid","upgrades","pingInterval","pingTimeout","maxPayload"}`.
    fn open_packet(&self, sid: &str, transport: Transport) -> String {
        let upgrades = match transport {
            Transport::Polling => "[\"websocket\"]",
            Transport::WebSocket => "[]",
        };
        format!(
            "0{{\"sid\":\"{sid}\",\"upgrades\":{upgrades},\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
            self.config.ping_interval.as_millis(),
            self.config.ping_timeout.as_millis(),
            self.config.max_payload
        )
    }

    fn admit<B>(
        &self,
        route: &str,
        transport: Transport,
        req: &Request<B>,
    ) -> Result<(Arc<str>, A::Handler), Refusal> {
        let sid: Arc<str> = self.acceptor.new_sid().into();
        let handshake = Handshake {
            route,
            sid: &sid,
            transport,
            uri: req.uri(),
            headers: req.headers(),
        };
        let handler = self.acceptor.accept(&handshake)?;
        Ok((sid, handler))
    }

    fn starter(&self, route: &str) -> SessionStarter<EventOf<A>> {
        SessionStarter {
            route: route.into(),
            registry: self.registry.clone(),
            config: self.config.clone(),
            shutdown: self.shutdown.clone(),
            tracker: self.tracker.clone(),
        }
    }

    fn handshake_polling<B>(&self, route: &str, req: &Request<B>) -> HttpResponse {
        match self.admit(route, Transport::Polling, req) {
            Ok((sid, handler)) => {
                let open = self.open_packet(&sid, Transport::Polling);
                self.starter(route).start(sid, handler, None, None);
                polling::text_response(open)
            }
            Err(refusal) => refusal_response(refusal),
        }
    }

    fn handshake_websocket<B>(&self, route: &str, mut req: Request<B>) -> HttpResponse {
        let (sid, handler) = match self.admit(route, Transport::WebSocket, &req) {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal_response(refusal),
        };
        let Some(response) = websocket::accept_response(&req) else {
            return engine_error(EngineError::BadRequest);
        };
        let open = self.open_packet(&sid, Transport::WebSocket);
        let on_upgrade = hyper::upgrade::on(&mut req);
        let config = self.config.clone();
        let starter = self.starter(route);
        self.tracker.spawn(async move {
            if let Some(ws) = websocket::finish_upgrade(on_upgrade, &config).await {
                starter.start(sid, handler, Some(ws), Some(open));
            }
            // A failed upgrade never became a session: the handler is dropped unopened.
        });
        response
    }
}

/// What it takes to register and start a session, also from a spawned upgrade task.
struct SessionStarter<E> {
    route: Arc<str>,
    registry: Registry<E>,
    config: Arc<EngineConfig>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl<E: Send + 'static> SessionStarter<E> {
    /// Registers a session and starts its actor; a session born on WebSocket starts upgraded.
    fn start<H: Handler<Event = E>>(
        self,
        sid: Arc<str>,
        handler: H,
        websocket: Option<Box<WsStream>>,
        open_packet: Option<String>,
    ) {
        let (tx, rx) = inbox::channel(self.config.session_queue);
        let flags = Arc::new(SharedFlags::default());
        flags
            .upgraded
            .store(websocket.is_some(), std::sync::atomic::Ordering::Release);
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                sid.clone(),
                SessionHandle {
                    route: self.route.clone(),
                    tx: tx.clone(),
                    flags: flags.clone(),
                },
            );
        let actor = Actor::new(
            sid,
            self.config,
            handler,
            rx,
            tx,
            flags,
            self.registry,
            self.shutdown,
            websocket,
            open_packet,
        );
        self.tracker.spawn(actor.run());
    }
}

/// An Engine.IO error response with its JSON body.
pub fn engine_error(error: EngineError) -> HttpResponse {
    error.error_body().response(error.status())
}

fn refusal_response(refusal: Refusal) -> HttpResponse {
    refusal.body.response(refusal.status)
}

/// Answers a CORS preflight on the client endpoint.
fn cors_preflight<B>(req: &Request<B>) -> HttpResponse {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    let allowed = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static("content-type"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_in_any_order() {
        let q = parse_query("t=x&sid=abc&transport=polling&EIO=4&access_token=j");
        assert_eq!(q.eio, Some("4"));
        assert_eq!(q.transport, Some("polling"));
        assert_eq!(q.sid, Some("abc"));
        let q = parse_query("");
        assert_eq!(q.eio, None);
    }
}
