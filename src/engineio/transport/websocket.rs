//! The WebSocket transport (docs/protocol.md §1): the RFC 6455 handshake on hyper's upgrade, sessions born
//! on WebSocket, and the polling → WebSocket upgrade (`2probe` / `3probe`, noop to the pending
//! GET, `5`) within `upgradeTimeout`. Frame and message sizes are capped at `maxPayload`.
//!
//! Only one WebSocket carries a session: a further one for the same sid completes its handshake
//! and is closed at once, as the reference server does, without touching the session. A client
//! that breaks the protocol gets a close frame naming why (1002, 1007, 1009) before the TCP
//! connection ends, and a short lingering read lets it see that frame instead of a reset.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{HttpResponse, engine_error};
use crate::config::EngineConfig;
use crate::engineio::packet::Packet;
use crate::engineio::session::{Input, WsStream};
use crate::engineio::{EngineError, SessionHandle};
use crate::http::ResponseBody;

/// Whether the request asks for a WebSocket upgrade.
pub fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has_token(header::UPGRADE, "websocket") && has_token(header::CONNECTION, "upgrade")
}

/// The `101 Switching Protocols` answer, or `None` when the handshake headers are invalid.
pub fn accept_response<B>(req: &Request<B>) -> Option<HttpResponse> {
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY)?;
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    if !version_ok {
        return None;
    }
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).ok()?,
    );
    Some(response)
}

/// Buffers sized for small Engine.IO frames: an idle connection should cost little memory. The
/// read buffer holds what one read takes; a frame larger than it gets room for its whole length
/// once its header is read, so only bursts of many small frames take more reads.
fn ws_config(config: &EngineConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_payload))
        .max_frame_size(Some(config.max_payload))
}

/// Bytes of a WebSocket's read buffer: heartbeats and a small event each fit in one read.
const WS_READ_BUFFER: usize = 256;

/// Waits for hyper to hand over the upgraded connection.
pub(crate) async fn finish_upgrade(
    on_upgrade: OnUpgrade,
    config: &EngineConfig,
) -> Option<Box<WsStream>> {
    let upgraded = on_upgrade.await.ok()?;
    let ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(ws_config(config)),
    )
    .await;
    Some(Box::new(ws))
}

/// Clears the upgrading flag unless the upgrade completed, so polling resumes normally.
struct UpgradingGuard {
    flags: Arc<crate::engineio::SharedFlags>,
    completed: bool,
}

impl Drop for UpgradingGuard {
    fn drop(&mut self) {
        if !self.completed {
            self.flags.upgrading.store(false, Ordering::Release);
        }
    }
}

/// A WebSocket request for an existing polling session: the upgrade.
pub(crate) fn upgrade<E: Send + 'static, B>(
    session: SessionHandle<E>,
    mut req: Request<B>,
    config: &Arc<EngineConfig>,
) -> HttpResponse {
    if session.flags.upgraded.load(Ordering::Acquire)
        || session.flags.upgrading.swap(true, Ordering::AcqRel)
    {
        // Only one WebSocket per session; the flags stay as they are.
        return accept_and_close(req, config);
    }
    let mut guard = UpgradingGuard {
        flags: session.flags.clone(),
        completed: false,
    };
    let Some(response) = accept_response(&req) else {
        return engine_error(EngineError::BadRequest);
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let config = config.clone();
    tokio::spawn(async move {
        let deadline = Instant::now() + config.upgrade_timeout;
        let Ok(Some(mut ws)) = timeout_at(deadline, finish_upgrade(on_upgrade, &config)).await
        else {
            return;
        };
        if probe(&mut ws, &session, deadline).await {
            guard.completed = true;
            let _ = session.tx.send(Input::Upgraded(ws)).await;
        } else {
            let _ = SinkExt::close(&mut ws).await;
        }
        drop(guard);
    });
    response
}

/// A WebSocket for a session that already has one (upgraded or upgrading): the handshake
/// completes, then this socket alone is closed with an empty close frame.
fn accept_and_close<B>(mut req: Request<B>, config: &Arc<EngineConfig>) -> HttpResponse {
    let Some(response) = accept_response(&req) else {
        return engine_error(EngineError::BadRequest);
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let config = config.clone();
    tokio::spawn(async move {
        let upgraded = timeout(CLOSE_LINGER, finish_upgrade(on_upgrade, &config)).await;
        if let Ok(Some(mut ws)) = upgraded {
            close_and_linger(&mut ws, None).await;
        }
    });
    response
}

/// How long closing a WebSocket may take: sending the close frame, then reading what the
/// client still sends.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// The close code for a client that broke the WebSocket protocol, or `None` when the
/// connection is simply gone (nobody left to tell).
pub(crate) fn close_code_for(error: &WsError) -> Option<CloseCode> {
    match error {
        WsError::Utf8(_) => Some(CloseCode::Invalid),
        WsError::Capacity(_) => Some(CloseCode::Size),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) => Some(CloseCode::Protocol),
        _ => None,
    }
}

/// Sends a close frame (`None`: one without a code), ends the write side, and reads for a
/// moment whatever the client still sends (the rest of an oversized frame, its close reply), so
/// that closing with unread data does not reset the connection before the client reads the frame.
pub(crate) async fn close_and_linger(ws: &mut WsStream, frame: Option<CloseFrame>) {
    let _ = timeout(CLOSE_LINGER, async {
        ws.send(Message::Close(frame)).await?;
        ws.get_mut().shutdown().await.map_err(WsError::Io)
    })
    .await;
    crate::http::lite::discard_unread(ws.get_mut()).await;
}

/// A close frame with `code` and a short reason.
pub(crate) fn close_frame(code: CloseCode) -> CloseFrame {
    let reason = match code {
        CloseCode::Invalid => "invalid UTF-8 in a text frame",
        CloseCode::Size => "message larger than maxPayload",
        _ => "Engine.IO protocol error",
    };
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Runs the probe exchange; true once the client sent `5`.
async fn probe<E>(ws: &mut WsStream, session: &SessionHandle<E>, deadline: Instant) -> bool {
    let mut probed = false;
    loop {
        let frame = match timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(frame))) => frame,
            _ => return false,
        };
        let Message::Text(text) = frame else {
            continue;
        };
        match Packet::decode_text(text.as_str()) {
            Ok(Packet::Ping(data)) if data == "probe" => {
                if ws.send(Message::Text("3probe".into())).await.is_err() {
                    return false;
                }
                probed = true;
                let _ = session.tx.send(Input::Probe).await;
            }
            Ok(Packet::Upgrade) if probed => return true,
            Ok(Packet::Noop) => {}
            _ => return false,
        }
    }
}
