//! What a user event's webhook answer carries back to the client (docs/protocol.md §14 decision
//! 10), read from the [`WebhookResponse`] alone, so the Socket.IO layer that forwards it and the
//! contract lint that checks it agree.

use super::WebhookResponse;
use crate::engineio::packet::Packet;

/// What a user event's answer sends back to the client: the 200 body when it is one valid
/// Engine.IO message carrying a Socket.IO packet; `Err` explains a contract violation.
pub fn user_event_reply(response: &WebhookResponse) -> Result<Option<String>, String> {
    if !response.is_success() || response.status == 204 || response.body.is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(&response.body)
        .map_err(|_| "the response body is not UTF-8 text".to_string())?;
    match Packet::decode_text(text) {
        Ok(Packet::Message(data)) => match crate::socketio::packet::parse_header(&data) {
            Ok(_) => Ok(Some(text.to_owned())),
            Err(e) => Err(format!(
                "the response body is not a Socket.IO packet ({e}); an ack looks like `43/ns,<id>[…]`"
            )),
        },
        Ok(_) => Err(
            "the response body is an Engine.IO packet but not a message (it must start with `4`)"
                .into(),
        ),
        Err(e) => Err(format!(
            "the response body is not an Engine.IO packet ({e})"
        )),
    }
}
