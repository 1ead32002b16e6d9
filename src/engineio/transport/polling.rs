//! HTTP long-polling (docs/protocol.md §1): a GET waits for the session's next payload, a POST delivers
//! the client's packets. Bodies are bounded by `maxPayload`; a second concurrent POST, an
//! oversized or undecodable body closes the session as the reference server does. A POST whose
//! packets the handler cannot take yet is held by the session (docs/protocol.md §14 decision 21): its `ok` waits, and
//! it keeps counting as the one POST in progress.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use tokio::sync::oneshot;

use super::{HttpResponse, engine_error};
use crate::engineio::payload::decode_payload;
use crate::engineio::session::Input;
use crate::engineio::{EngineError, SessionHandle};
use crate::http::ResponseBody;

/// A `text/plain; charset=UTF-8` response carrying a payload.
pub fn text_response(body: String) -> HttpResponse {
    let mut response = Response::new(ResponseBody::full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

/// A long-poll GET: waits until the session has something to send.
pub(crate) async fn get<E>(session: &SessionHandle<E>) -> HttpResponse {
    if session.flags.upgraded.load(Ordering::Acquire) {
        return engine_error(EngineError::BadRequest);
    }
    let (reply, answer) = oneshot::channel();
    if session.tx.send(Input::PollGet(reply)).await.is_err() {
        return engine_error(EngineError::UnknownSid);
    }
    match answer.await {
        Ok(Ok(payload)) => text_response(payload),
        Ok(Err(error)) => engine_error(error),
        Err(_) => engine_error(EngineError::UnknownSid),
    }
}

/// Clears the one-POST-at-a-time flag however the request ends.
struct PostGuard<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for PostGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A POST of client packets.
pub(crate) async fn post<E, B: super::RequestBody>(
    session: &SessionHandle<E>,
    req: Request<B>,
    max_payload: usize,
) -> HttpResponse {
    if session.flags.upgraded.load(Ordering::Acquire) {
        return engine_error(EngineError::BadRequest);
    }
    if session.flags.post_busy.swap(true, Ordering::AcqRel) {
        let _ = session
            .tx
            .try_send(Input::fail("two long-polling POST requests at once"));
        return engine_error(EngineError::BadRequest);
    }
    let _guard = PostGuard(&session.flags.post_busy);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max_payload) {
        return too_large(session, max_payload).await;
    }
    let body = match Limited::new(req.into_body(), max_payload).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return too_large(session, max_payload).await,
    };
    let packets = match std::str::from_utf8(&body)
        .map_err(|_| "the body is not UTF-8".to_string())
        .and_then(|text| decode_payload(text, max_payload).map_err(|e| e.to_string()))
    {
        Ok(packets) => packets,
        Err(detail) => {
            let _ = session
                .tx
                .send(Input::fail(format!(
                    "invalid long-polling payload: {detail}"
                )))
                .await;
            return engine_error(EngineError::BadRequest);
        }
    };
    let (reply, answer) = oneshot::channel();
    if session
        .tx
        .send(Input::poll_post(packets, reply))
        .await
        .is_err()
    {
        return engine_error(EngineError::UnknownSid);
    }
    match answer.await {
        Ok(Ok(())) => {
            let mut response = Response::new(ResponseBody::full(Bytes::from_static(b"ok")));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            response
        }
        Ok(Err(error)) => engine_error(error),
        Err(_) => engine_error(EngineError::UnknownSid),
    }
}

async fn too_large<E>(session: &SessionHandle<E>, max_payload: usize) -> HttpResponse {
    let _ = session
        .tx
        .send(Input::fail(format!(
            "a long-polling POST exceeded maxPayload ({max_payload} bytes)"
        )))
        .await;
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response
}
