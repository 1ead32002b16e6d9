//! The HTTP front door: binds the listen addresses (`localhost` means 127.0.0.1 and ::1,
//! docs/protocol.md §14 decision 19), serves them with the shared accept loop (`http::serve_http`), and
//! routes every request with one `match`: the Socket.IO client endpoint, `/api/health`, the
//! REST data plane, and the loopback-only admin surface under `/_emu/` (which is why
//! [`Server::handle`] takes the peer address). Accepting stops when the shutdown signal fires.
//! [`exposure`] says what listening beyond loopback exposes, for the startup warning; [`trim`]
//! hands memory back after many sessions ended.

pub mod exposure;
pub mod trim;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::{HUB_NAME_RULE, valid_hub_name};
use crate::engineio::EngineIo;
use crate::engineio::transport::{RequestBody, wants_polling};
use crate::http::{
    ErrorBody, HttpResponse, JSON, Lite, LiteBody, OnStop, json_response, serve_http_lite,
};
use crate::service::Service;
use crate::socketio::SioAcceptor;

/// The client endpoint prefix (docs/protocol.md §3).
pub const CLIENT_PREFIX: &str = "/clients/socketio/hubs/";

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Health,
    Client(&'a str),
    BadHub(&'a str),
    Rest,
    Admin,
    NotFound,
}

fn classify(path: &str) -> Route<'_> {
    if let Some(rest) = path.strip_prefix(CLIENT_PREFIX) {
        let hub = rest.strip_suffix('/').unwrap_or(rest);
        return if valid_hub_name(hub) {
            Route::Client(hub)
        } else {
            Route::BadHub(hub)
        };
    }
    match path {
        "/api/health" | "/api/health/" => Route::Health,
        p if p.starts_with("/api/") => Route::Rest,
        p if p.starts_with(crate::admin::PREFIX) => Route::Admin,
        _ => Route::NotFound,
    }
}

/// The running front door.
pub struct Server {
    pub service: Arc<Service>,
    pub engine: EngineIo<SioAcceptor>,
}

impl Server {
    /// A server for `service`.
    pub fn new(service: Arc<Service>) -> Arc<Self> {
        let engine = EngineIo::new(
            Arc::new(service.config().engine.clone()),
            SioAcceptor {
                service: service.clone(),
            },
            service.shutdown().clone(),
            service.tracker().clone(),
        );
        Arc::new(Server { service, engine })
    }

    /// Answers one request from `peer` (the TCP peer address; the admin surface checks it).
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        let path = req.uri().path().to_owned();
        match classify(&path) {
            Route::Client(hub) => self.handle_client(hub, req).await,
            Route::Health if req.method() == Method::GET || req.method() == Method::HEAD => {
                json_response(StatusCode::OK, json!({ "status": "healthy" }).to_string())
            }
            Route::Health => ErrorBody::new("MethodNotAllowed", "use GET or HEAD")
                .response(StatusCode::METHOD_NOT_ALLOWED),
            Route::Rest => crate::rest::handle(&self.service, req).await,
            Route::Admin => crate::admin::handle(&self.service, req, peer).await,
            Route::BadHub(hub) => ErrorBody::new(
                "NotFound",
                format!("`{hub}` is not a valid hub name: {HUB_NAME_RULE}"),
            )
            .response(StatusCode::NOT_FOUND),
            Route::NotFound => ErrorBody::new(
                "NotFound",
                format!(
                    "nothing at {path}; Socket.IO clients connect with path {CLIENT_PREFIX}<hub> \
                     and the REST API lives under /api/hubs/<hub>"
                ),
            )
            .ms_response_as(StatusCode::NOT_FOUND, JSON),
        }
    }

    /// Answers one request on the client endpoint of `hub`, read by hyper or by the minimal
    /// HTTP/1 path.
    async fn handle_client<B: RequestBody>(&self, hub: &str, req: Request<B>) -> HttpResponse {
        let handshake = is_handshake(req.uri().query());
        let response = self.engine.handle(hub, req).await;
        // A handshake's session line waits for the recording's file: so does its
        // answer, so a stalled recording is not fed by a flood of handshakes.
        if handshake {
            // Boxed, as only a handshake waits here (see `EngineIo::route`).
            Box::pin(self.service.traffic().recording_room()).await;
        }
        response
    }

    /// Accepts connections on every listener until shutdown. Open connections stay: sessions
    /// still deliver their last packets while they close.
    pub async fn serve(self: Arc<Self>, listeners: Vec<TcpListener>) {
        let mut tasks = Vec::new();
        let upstream = self.service.upstream().clone();
        tokio::spawn(trim::watch(self.service.shutdown().clone(), move || {
            upstream.open_connections()
        }));
        for listener in listeners {
            let server = self.clone();
            let stop = self.service.shutdown().clone();
            let lite = self.clone();
            tasks.push(tokio::spawn(serve_http_lite(
                listener,
                stop,
                OnStop::KeepConnections,
                move |req, peer| {
                    let server = server.clone();
                    async move { server.handle(req, peer).await }
                },
                lite,
            )));
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Long-polling GETs and POSTs on the client endpoint are answered on the minimal HTTP/1
/// path, so a parked long poll and a client's idle POST connection hold no buffers; every
/// other request (WebSocket upgrades, preflights, REST, `/_emu/`) goes to hyper.
impl Lite for Server {
    fn takes(&self, head: &Request<()>) -> Option<usize> {
        let polling = (head.method() == Method::GET || head.method() == Method::POST)
            && matches!(classify(head.uri().path()), Route::Client(_))
            && wants_polling(head.uri().query());
        polling.then(|| self.service.config().engine.max_payload)
    }

    async fn answer(self: Arc<Self>, req: Request<LiteBody>, _peer: SocketAddr) -> HttpResponse {
        let path = req.uri().path().to_owned();
        match classify(&path) {
            // A long-poll GET waits here for as long as the session has nothing to send: its
            // future stays small when every other request's state is boxed.
            Route::Client(hub)
                if req.method() == Method::GET && !is_handshake(req.uri().query()) =>
            {
                self.engine.handle(hub, req).await
            }
            Route::Client(hub) => Box::pin(self.handle_client(hub, req)).await,
            // `takes` only takes the client endpoint.
            _ => {
                ErrorBody::new("NotFound", "not a client endpoint").response(StatusCode::NOT_FOUND)
            }
        }
    }
}

/// Binds `host:port`. `localhost` binds 127.0.0.1 and, where available, ::1 on the same port.
/// Returns the listeners and the port actually bound.
pub async fn bind(host: &str, port: u16) -> std::io::Result<(Vec<TcpListener>, u16)> {
    let addrs: Vec<SocketAddr> = if host.eq_ignore_ascii_case("localhost") {
        vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]
    } else if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        vec![SocketAddr::new(ip, port)]
    } else {
        tokio::net::lookup_host((host, port)).await?.collect()
    };
    let mut listeners = Vec::new();
    let mut bound_port = port;
    for (i, addr) in addrs.into_iter().enumerate() {
        let addr = SocketAddr::new(addr.ip(), bound_port);
        match TcpListener::bind(addr).await {
            Ok(listener) => {
                bound_port = listener.local_addr()?.port();
                listeners.push(listener);
            }
            // The first address must bind; ::1 may be missing on IPv4-only machines.
            Err(e) if i == 0 => return Err(e),
            Err(_) => {}
        }
    }
    Ok((listeners, bound_port))
}

/// The public endpoint for a listen host: `localhost` and wildcard hosts print as localhost.
pub fn public_endpoint(host: &str, port: u16) -> String {
    let shown = match host.trim_matches(|c| c == '[' || c == ']') {
        "0.0.0.0" | "::" | "localhost" => "localhost".to_owned(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_owned(),
    };
    format!("http://{shown}:{port}")
}

/// Whether a client-path request opens a session (an Engine.IO request without `sid`).
fn is_handshake(query: Option<&str>) -> bool {
    !form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, _)| k == "sid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            classify("/clients/socketio/hubs/chat/"),
            Route::Client("chat")
        );
        assert_eq!(
            classify("/clients/socketio/hubs/chat"),
            Route::Client("chat")
        );
        assert_eq!(classify("/clients/socketio/hubs/1x/"), Route::BadHub("1x"));
        assert_eq!(classify("/clients/socketio/hubs/a/b"), Route::BadHub("a/b"));
        assert_eq!(classify("/api/health"), Route::Health);
        assert_eq!(classify("/api/hubs/chat/:send"), Route::Rest);
        assert_eq!(classify("/socket.io/"), Route::NotFound);
        assert_eq!(classify("/_emu/connections"), Route::Admin);
    }

    #[test]
    fn endpoints() {
        assert_eq!(public_endpoint("localhost", 8080), "http://localhost:8080");
        assert_eq!(public_endpoint("0.0.0.0", 1), "http://localhost:1");
        assert_eq!(public_endpoint("127.0.0.1", 2), "http://127.0.0.1:2");
        assert_eq!(public_endpoint("::1", 3), "http://[::1]:3");
    }
}
