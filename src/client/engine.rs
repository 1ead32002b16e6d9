//! The Engine.IO 4 side of [`crate::client`]: opens a session over long-polling, WebSocket, or
//! long-polling upgraded to WebSocket (what socket.io-client does by default), and then moves
//! [`Packet`]s both ways over whichever transport won (docs/protocol.md §1).
//!
//! Packets are read and written with the pure codecs (`engineio::packet`, `engineio::payload`).
//! The upgrade is done before anything else is sent, so no long-poll is in flight while the
//! WebSocket takes over; a server that refuses the probe keeps the session on long-polling.
//! Everything read from the server is bounded: a long-poll body by [`MAX_POLL_BODY`], a
//! refusal's body by [`MAX_REFUSAL_BODY`].

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::engineio::packet::Packet;
use crate::engineio::payload::{decode_payload, encode_payload};

/// Largest long-poll answer read, in bytes.
pub const MAX_POLL_BODY: usize = 16 * 1024 * 1024;
/// Largest WebSocket message read, in bytes.
pub const MAX_WS_MESSAGE: usize = 16 * 1024 * 1024;
/// Most of a refused handshake's body kept for the reason, in bytes.
pub const MAX_REFUSAL_BODY: usize = 4096;
/// Packets read ahead by the long-poll loop before it waits for the reader.
const POLL_QUEUE: usize = 256;

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Which transports to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportChoice {
    /// Long-polling first, then an upgrade to WebSocket when the server offers one.
    #[default]
    Upgrade,
    WebSocket,
    Polling,
}

/// Where the session goes: `http://host:port`, the client path, and extra query parameters.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port`, no trailing slash.
    pub base: String,
    /// The Engine.IO path, e.g. `/clients/socketio/hubs/chat` or `/socket.io`.
    pub path: String,
    /// Extra query parameters (the token as `access_token`, `--query` pairs).
    pub query: Vec<(String, String)>,
}

impl Target {
    /// The URL of a request on this path with `transport` (and `sid` once there is one).
    fn url(&self, transport: &str, sid: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("EIO", "4");
        query.append_pair("transport", transport);
        if let Some(sid) = sid {
            query.append_pair("sid", sid);
        }
        for (k, v) in &self.query {
            query.append_pair(k, v);
        }
        let path = self.path.trim_end_matches('/');
        format!("{}{path}/?{}", self.base, query.finish())
    }
}

/// The open packet's settings.
#[derive(Debug, Clone)]
pub struct Open {
    pub sid: String,
    pub upgrades: Vec<String>,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
}

impl Open {
    fn parse(packet: Packet) -> Result<Open, EngineError> {
        let Packet::Open(json) = packet else {
            return Err(EngineError::Protocol(format!(
                "the first packet is `{}`, not `open`",
                packet.packet_type().name()
            )));
        };
        let value: Value = serde_json::from_str(&json)
            .map_err(|e| EngineError::Protocol(format!("the open packet is not JSON: {e}")))?;
        let millis = |name: &str, default: u64| {
            Duration::from_millis(value[name].as_u64().unwrap_or(default))
        };
        let sid = value["sid"]
            .as_str()
            .ok_or_else(|| EngineError::Protocol("the open packet has no `sid`".into()))?;
        Ok(Open {
            sid: sid.to_owned(),
            upgrades: value["upgrades"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            ping_interval: millis("pingInterval", 25_000),
            ping_timeout: millis("pingTimeout", 20_000),
        })
    }
}

/// Why a session could not be opened or went away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The server answered the handshake with an HTTP error.
    #[error("HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// The server could not be reached or the connection broke.
    #[error("{0}")]
    Io(String),
    /// The server broke the Engine.IO protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl EngineError {
    /// A refusal from its status and body: the JSON `message` when there is one, else the text.
    fn refused(status: u16, body: &[u8]) -> EngineError {
        let body = &body[..body.len().min(MAX_REFUSAL_BODY)];
        let text = String::from_utf8_lossy(body);
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.trim().to_owned());
        EngineError::Refused { status, message }
    }
}

/// An open session's transport.
pub enum Link {
    WebSocket(Box<WsStream>),
    Polling(Box<Polling>),
}

/// Long-polling: a loop of GETs feeding `incoming`, and a POST per send.
pub struct Polling {
    http: HttpClient,
    url: String,
    incoming: mpsc::Receiver<Result<Packet, EngineError>>,
    poller: tokio::task::JoinHandle<()>,
}

impl Drop for Polling {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Opens a session on `target` with the chosen transports.
pub async fn open(target: &Target, choice: TransportChoice) -> Result<(Open, Link), EngineError> {
    if !target.base.starts_with("http://") {
        return Err(EngineError::Io(format!(
            "`{}`: only http:// URLs are supported (no TLS)",
            target.base
        )));
    }
    match choice {
        TransportChoice::WebSocket => {
            let mut ws = ws_connect(&target.url("websocket", None)).await?;
            let first = ws_next(&mut ws)
                .await
                .ok_or_else(|| EngineError::Io("closed before the open packet".into()))??;
            Ok((Open::parse(first)?, Link::WebSocket(Box::new(ws))))
        }
        TransportChoice::Polling | TransportChoice::Upgrade => {
            let http = http_client();
            let body = get(&http, &target.url("polling", None)).await?;
            let mut packets = decode_payload(&body, MAX_POLL_BODY)
                .map_err(|e| EngineError::Protocol(format!("handshake answer: {e}")))?
                .into_iter();
            let open =
                Open::parse(packets.next().ok_or_else(|| {
                    EngineError::Protocol("the handshake answer is empty".into())
                })?)?;
            let url = target.url("polling", Some(&open.sid));
            let offered = open.upgrades.iter().any(|u| u == "websocket");
            if choice == TransportChoice::Upgrade
                && offered
                && let Some(ws) = upgrade(target, &open.sid).await
            {
                return Ok((open, Link::WebSocket(Box::new(ws))));
            }
            let (tx, incoming) = mpsc::channel(POLL_QUEUE);
            for packet in packets {
                let _ = tx.try_send(Ok(packet));
            }
            let poller = tokio::spawn(poll_loop(http.clone(), url.clone(), tx));
            Ok((
                open,
                Link::Polling(Box::new(Polling {
                    http,
                    url,
                    incoming,
                    poller,
                })),
            ))
        }
    }
}

/// The WebSocket upgrade of a polling session: `2probe`, `3probe`, `5`. `None` when the server
/// does not complete it (the session then stays on long-polling).
async fn upgrade(target: &Target, sid: &str) -> Option<WsStream> {
    let mut ws = ws_connect(&target.url("websocket", Some(sid))).await.ok()?;
    ws.send(Message::Text("2probe".into())).await.ok()?;
    match ws_next(&mut ws).await {
        Some(Ok(Packet::Pong(p))) if p == "probe" => {}
        _ => return None,
    }
    ws.send(Message::Text("5".into())).await.ok()?;
    Some(ws)
}

fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

async fn ws_connect(url: &str) -> Result<WsStream, EngineError> {
    use tokio_tungstenite::tungstenite::Error;
    let url = url.replacen("http://", "ws://", 1);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    match tokio_tungstenite::connect_async_with_config(url, Some(config), true).await {
        Ok((ws, _)) => Ok(ws),
        Err(Error::Http(res)) => Err(EngineError::refused(
            res.status().as_u16(),
            res.body().as_deref().unwrap_or_default(),
        )),
        Err(e) => Err(EngineError::Io(e.to_string())),
    }
}

/// The next packet on a WebSocket; `None` once it is closed.
async fn ws_next(ws: &mut WsStream) -> Option<Result<Packet, EngineError>> {
    loop {
        return match ws.next().await? {
            Ok(Message::Text(text)) => Some(
                Packet::decode_text(text.as_str())
                    .map_err(|e| EngineError::Protocol(e.to_string())),
            ),
            Ok(Message::Binary(data)) => Some(Ok(Packet::decode_binary(data))),
            Ok(Message::Close(_)) => None,
            Ok(_) => continue,
            Err(e) => Some(Err(EngineError::Io(e.to_string()))),
        };
    }
}

/// A GET whose 200 body is returned as text (bounded); any other status is a refusal.
async fn get(http: &HttpClient, url: &str) -> Result<String, EngineError> {
    let request = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| EngineError::Io(e.to_string()))?;
    exchange(http, request).await
}

async fn exchange(
    http: &HttpClient,
    request: http::Request<Full<Bytes>>,
) -> Result<String, EngineError> {
    let response = http
        .request(request)
        .await
        .map_err(|e| EngineError::Io(connect_message(&e)))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_POLL_BODY)
        .collect()
        .await
        .map_err(|e| EngineError::Io(format!("reading the answer: {e}")))?
        .to_bytes();
    if !status.is_success() {
        return Err(EngineError::refused(status.as_u16(), &body));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| EngineError::Protocol("a long-poll answer is not UTF-8".into()))
}

/// The root cause of a failed request, e.g. `connection refused`.
fn connect_message(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// GETs until the session ends, forwarding each packet (and the final error) to `tx`.
async fn poll_loop(http: HttpClient, url: String, tx: mpsc::Sender<Result<Packet, EngineError>>) {
    loop {
        let packets = match get(&http, &url).await {
            Ok(body) => decode_payload(&body, MAX_POLL_BODY)
                .map_err(|e| EngineError::Protocol(format!("long-poll answer: {e}"))),
            Err(e) => Err(e),
        };
        match packets {
            Ok(packets) => {
                for packet in packets {
                    let close = packet == Packet::Close;
                    if tx.send(Ok(packet)).await.is_err() || close {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

impl Link {
    /// The transport's name, as Engine.IO spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Link::WebSocket(_) => "websocket",
            Link::Polling(_) => "polling",
        }
    }

    /// The next packet from the server; `None` once the transport is closed. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Packet, EngineError>> {
        match self {
            Link::WebSocket(ws) => ws_next(ws).await,
            Link::Polling(p) => p.incoming.recv().await,
        }
    }

    /// Sends packets, in order.
    pub async fn send(&mut self, packets: &[Packet]) -> Result<(), EngineError> {
        match self {
            Link::WebSocket(ws) => {
                for packet in packets {
                    let message = match packet {
                        Packet::Binary(data) => Message::Binary(data.clone()),
                        other => Message::Text(other.to_text().into()),
                    };
                    ws.send(message)
                        .await
                        .map_err(|e| EngineError::Io(e.to_string()))?;
                }
                Ok(())
            }
            Link::Polling(p) => {
                let mut body = String::new();
                encode_payload(packets, &mut body);
                let request = http::Request::post(&p.url)
                    .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| EngineError::Io(e.to_string()))?;
                exchange(&p.http, request).await.map(drop)
            }
        }
    }

    /// Closes the transport (after the caller sent its `close` packet).
    pub async fn close(&mut self) {
        if let Link::WebSocket(ws) = self {
            let _ = SinkExt::close(ws.as_mut()).await;
        }
    }
}
