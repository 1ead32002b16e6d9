//! The inspector's read side, over the traffic ring ([`crate::traffic::ring`]):
//! `GET /_emu/events` streams the timeline as server-sent events, `GET /_emu/entries/<seq>`
//! answers one entry's details (a webhook call rebuilt as it was sent, with `curl` to send it
//! again), `GET /_emu/export` writes the ring as a session file that `sio-emu replay` reads,
//! and `GET /_emu/status` and `GET /_emu/lint` give the page its counters.
//!
//! Timeline objects are the `--format json` objects plus `seq`, rendered here, on the reader's
//! side; client frames, which the live log does not show, are built from their session lines
//! with the Socket.IO packet decoded, so serving pays nothing for rendering or decoding.

use std::fmt::Write;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use crate::http::{HttpResponse, ResponseBody};
use crate::service::Service;
use crate::socketio::packet::{self as sio, Decoded};
use crate::traffic::record::{self, RecordLine};
use crate::traffic::ring::{Kept, KeptCall, Kind, Missing, Ring};
use crate::upstream::WebhookEvent;
use crate::upstream::cloudevents::{self, WebhookRequest};

use super::{AdminError, with_headers};

/// How often an idle event stream gets a comment line, so proxies and the browser keep it.
pub const STREAM_PING: Duration = Duration::from_secs(15);
/// Entries (by what a reader is charged for them) rendered into one chunk of the event stream. A chunk is
/// rendered only once the previous one left for the socket, so what waits for a slow page is
/// its ring queue (entries, bounded like the ring) plus about three chunks of rendered text:
/// the one queued, the one hyper is writing, the one being rendered.
const STREAM_BATCH_BYTES: usize = 16 << 10;

/// The ring, or the answer explaining that `--inspector-buffer 0` turned it off.
pub fn ring(service: &Service) -> Result<&Ring, AdminError> {
    service.traffic().ring().ok_or_else(|| {
        AdminError::new(
            StatusCode::NOT_FOUND,
            "InspectorOff",
            "the inspector keeps no traffic: serve was started with --inspector-buffer 0".into(),
        )
    })
}

/// The timeline object of an entry ([`Kept::view`]), a client frame's Socket.IO packet
/// decoded under `socketio`. `None` for entries that are not on the timeline.
pub fn view(entry: &Kept) -> Option<Value> {
    let mut value = entry.view()?;
    if entry.kind == Kind::Frame {
        let decoded = value["packet"].as_str().map(decode_frame);
        value["socketio"] = decoded.unwrap_or(Value::Null);
    }
    Some(value)
}

/// The Socket.IO packet inside an Engine.IO message, decoded; `null` for other packets.
pub fn decode_frame(packet: &str) -> Value {
    let Some(text) = packet.strip_prefix('4') else {
        return Value::Null;
    };
    let packet = match sio::decode(text) {
        Ok(Decoded::Complete(p)) => p,
        Ok(Decoded::AwaitingAttachments(partial)) => partial.packet().clone(),
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let args = match (&packet.kind, &packet.data) {
        (sio::PacketType::Event | sio::PacketType::BinaryEvent, Some(Value::Array(items))) => {
            Value::Array(items.iter().skip(1).cloned().collect())
        }
        (_, data) => data.clone().unwrap_or(Value::Null),
    };
    json!({
        "type": packet.kind.name(),
        "namespace": packet.nsp,
        "event": sio::event_name(&packet),
        "args": args,
        "ackId": packet.id,
    })
}

/// `GET /_emu/status`.
pub fn status(service: &Service) -> Value {
    let config = service.config();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "endpoint": service.endpoint(),
        "hubs": config.hub_names(),
        "ring": service.traffic().ring().map(|r| r.stats()),
        "droppedLogLines": service.traffic().dropped_lines(),
        "recording": service.traffic().recording_stats(),
    })
}

/// `GET /_emu/events?after=<seq>` (or `Last-Event-ID`): the ring's entries after `after`, then
/// each new one, until the page goes away or the service shuts down.
pub fn events(service: &Service, after: u64) -> Result<HttpResponse, AdminError> {
    let subscriber = ring(service)?.subscribe(after);
    let traffic = service.traffic().clone();
    let (tx, body) = ResponseBody::channel(1);
    let stop = service.shutdown().clone();
    let virtual_clients = super::clients::marker(service);
    tokio::spawn(async move {
        let Some(ring) = traffic.ring() else { return };
        let hello = Bytes::from_static(b": sio-emu inspector\n\n");
        let mut open = tx.send(hello).await.is_ok();
        while open {
            let batch = tokio::select! {
                _ = stop.cancelled() => break,
                batch = subscriber.next(ring, STREAM_BATCH_BYTES) => batch,
                _ = tokio::time::sleep(STREAM_PING) => {
                    open = tx.send(Bytes::from_static(b": ping\n\n")).await.is_ok();
                    continue;
                }
            };
            let mut chunk = String::new();
            if batch.dropped > 0 {
                chunk.push_str(&format!(
                    "event: dropped\ndata: {{\"dropped\":{}}}\n\n",
                    batch.dropped
                ));
            }
            for entry in &batch.entries {
                if let Some(mut view) = view(entry) {
                    virtual_clients.mark(&mut view);
                    let _ = write!(chunk, "id: {}\ndata: {view}\n\n", entry.seq);
                }
            }
            open = tx.send(Bytes::from(chunk)).await.is_ok();
        }
        subscriber.close();
    });
    Ok(event_stream(body))
}

/// A `200 text/event-stream` answer whose body is the chunks of `body`.
pub fn event_stream(body: ResponseBody) -> HttpResponse {
    let mut response = with_headers(
        Bytes::new(),
        [
            (http::header::CONTENT_TYPE, "text/event-stream"),
            (http::header::CACHE_CONTROL, "no-store"),
        ],
    );
    *response.body_mut() = body;
    response
}

/// `GET /_emu/entries/<seq>`: the entry and, for a webhook call, the request as sent and the
/// whole answer; for a REST call, the call as the handler sent it.
pub fn details(service: &Service, seq: u64) -> Result<Value, AdminError> {
    let entry = ring(service)?.get(seq).map_err(|missing| {
        let (code, message) = match missing {
            Missing::Gone => ("Gone", format!("entry {seq} has left the inspector's ring")),
            Missing::Never => ("NotFound", format!("there is no entry {seq}")),
        };
        AdminError::new(StatusCode::NOT_FOUND, code, message)
    })?;
    let shown = view(&entry).unwrap_or(Value::Null);
    let mut out = json!({ "seq": seq, "entry": shown });
    if let Some(call) = entry.webhook() {
        webhook_details(service, &call, &mut out);
    } else if let Some((call, matched)) = entry.rest() {
        out["call"] = serde_json::to_value(&call).unwrap_or(Value::Null);
        out["matched"] = json!(matched);
    }
    Ok(out)
}

/// Adds `request`, `response`, `error` and `curl` for one webhook call's entry.
fn webhook_details(service: &Service, hop: &KeptCall, out: &mut Value) {
    out["error"] = json!(hop.error);
    out["response"] = answer_json(hop);
    let event = WebhookEvent::recorded(&hop.call);
    let request = service.route(&event.hub, &event.kind).and_then(|settings| {
        let details = &hop.details;
        let stamp = cloudevents::CeStamp::new(details.ce_id.clone(), details.ce_time);
        cloudevents::event_request(&settings, &event, &stamp).ok()
    });
    match request {
        Some(request) => {
            out["curl"] = json!(super::curl::command(&request));
            out["request"] = request_json(&request);
        }
        None => {
            out["request"] = json!({
                "body": String::from_utf8_lossy(&event.body),
                "note": "no handler of this hub wants this event now, so its headers cannot be shown",
            })
        }
    }
}

/// Headers as `[[name, value], …]`, in the order they are sent.
pub fn header_pairs(headers: &http::HeaderMap) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(name, value)| json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())]))
            .collect(),
    )
}

fn request_json(request: &WebhookRequest) -> Value {
    json!({
        "method": request.method.as_str(),
        "url": request.url,
        "headers": header_pairs(&request.headers),
        "body": String::from_utf8_lossy(&request.body),
    })
}

/// A call's recorded answer with the headers its hop kept.
pub fn answer_json(hop: &KeptCall) -> Value {
    let Some(r) = &hop.response else {
        return Value::Null;
    };
    let headers = hop
        .details
        .answer_headers
        .as_ref()
        .map_or(Value::Array(Vec::new()), |pairs| json!(pairs));
    json!({
        "status": r.status,
        "headers": headers,
        "body": r.body,
        "latencyMs": r.latency_ms,
    })
}

/// `GET /_emu/export`: a session file of what the ring holds — a `header` line, then every
/// recorded line in order (redacted as `--record` redacts them), up to the newest entry when
/// the export began. The lines are written as they are read from the ring, one entry at a
/// time, each only once the previous one left for the socket: an export holds one entry and
/// its line, however slowly it is read, and serving goes on between two lines. Entries that
/// leave the ring before a slow download reaches them are not in it.
pub fn export(service: &Service) -> Result<HttpResponse, AdminError> {
    let ring = ring(service)?;
    let header = RecordLine::Header {
        format: record::FORMAT.into(),
        version: record::VERSION,
        sio_emu_version: env!("CARGO_PKG_VERSION").into(),
        hubs: service.config().hub_names(),
        endpoint: service.endpoint().to_owned(),
        started_at: humantime::format_rfc3339_millis(ring.started_at()).to_string(),
    };
    let mut text = serde_json::to_vec(&header).unwrap_or_default();
    text.push(b'\n');
    let (tx, body) = ResponseBody::channel(1);
    let (traffic, stop) = (service.traffic().clone(), service.shutdown().clone());
    let last = ring.last_seq();
    tokio::spawn(async move {
        let Some(ring) = traffic.ring() else { return };
        let mut line = Some(text);
        let mut cursor = ring.cursor_after(0);
        while let Some(chunk) = line.take() {
            let sent = tokio::select! {
                _ = stop.cancelled() => false,
                sent = tx.send(Bytes::from(chunk)) => sent.is_ok(),
            };
            if !sent {
                return;
            }
            while let Some(entry) = ring.next(&mut cursor).filter(|e| e.seq <= last) {
                if let Some(record) = entry.line()
                    && let Ok(mut bytes) = serde_json::to_vec(&record)
                {
                    bytes.push(b'\n');
                    line = Some(bytes);
                    break;
                }
            }
        }
    });
    let mut response = with_headers(
        Bytes::new(),
        [
            (http::header::CONTENT_TYPE, "application/x-ndjson"),
            (
                http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"sio-emu-session.jsonl\"",
            ),
        ],
    );
    *response.body_mut() = body;
    Ok(response)
}

/// `GET /_emu/lint`: the lint's counts per rule since the start, and per rule the findings
/// still in the ring (their `seq`, newest last) with the last message.
pub fn lint(service: &Service) -> Value {
    let counts = service.hooks().webhooks.counts();
    let mut rules: serde_json::Map<String, Value> = counts
        .iter()
        .map(|(rule, n)| (rule.clone(), json!({ "count": n, "seqs": [] })))
        .collect();
    let ring = service.traffic().ring();
    let mut cursor = ring.map(|r| r.cursor_after(0)).unwrap_or_default();
    while let Some(entry) = ring.and_then(|r| r.next(&mut cursor)) {
        let Some(Value::Object(lint)) = (entry.kind == Kind::Lint).then(|| entry.view()).flatten()
        else {
            continue;
        };
        let text = |key: &str| lint.get(key).cloned().unwrap_or(Value::Null);
        let Some(rule) = lint.get("rule").and_then(Value::as_str) else {
            continue;
        };
        let slot = rules
            .entry(rule.to_owned())
            .or_insert_with(|| json!({ "count": 0, "seqs": [] }));
        if let Some(seqs) = slot["seqs"].as_array_mut() {
            seqs.push(json!(entry.seq));
        }
        slot["section"] = text("section");
        slot["message"] = text("message");
    }
    json!({ "total": counts.values().sum::<u64>(), "rules": rules })
}
