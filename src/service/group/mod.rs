//! Socket.IO group names: how namespaces and rooms map onto Web PubSub groups (docs/protocol.md §8).
//!
//! The service keeps Socket.IO rooms as ordinary Web PubSub groups named
//! `0~<b64url(namespace)>~<b64url(room)>`; the namespace itself is the group
//! `0~<b64url(namespace)>~` (empty room segment). b64url is the RFC 4648 §5 alphabet over the
//! UTF-8 bytes, without `=` padding. The `socketio` layer builds these names when a socket joins
//! its implicit groups; the rest of `service` and the REST API read them back with [`parse`] to
//! show or filter Socket.IO rooms. Pure functions, no state.
//!
//! Decisions: the empty room `""` encodes to the namespace group, exactly as the formula gives
//! (the cloud service has the same collision), so [`parse`] reports it as `room: None`.
//! [`parse`] is strict, so that it is an exact inverse: padding, non-canonical base64 (non-zero
//! trailing bits), bytes that are not UTF-8, an empty namespace segment or a namespace not
//! starting with `/` all mean "not a Socket.IO group".

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The literal first segment of every Socket.IO group name.
const PREFIX: &str = "0~";
/// Separator between the namespace and the room segments.
const SEPARATOR: char = '~';

/// The group that every socket of namespace `nsp` joins: `0~<b64url(nsp)>~`.
pub fn namespace_group(nsp: &str) -> String {
    let mut out = String::with_capacity(PREFIX.len() + encoded_len(nsp) + 1);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(nsp, &mut out);
    out.push(SEPARATOR);
    out
}

/// The group for room `room` of namespace `nsp`: `0~<b64url(nsp)>~<b64url(room)>`. Every socket
/// is in the room named by its own socket id.
pub fn room_group(nsp: &str, room: &str) -> String {
    let mut out = String::with_capacity(PREFIX.len() + encoded_len(nsp) + 1 + encoded_len(room));
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(nsp, &mut out);
    out.push(SEPARATOR);
    URL_SAFE_NO_PAD.encode_string(room, &mut out);
    out
}

/// A Socket.IO namespace, and room if any, recovered from a group name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SioGroup {
    /// The namespace, e.g. `/` or `/admin`.
    pub namespace: String,
    /// The room; `None` for the namespace group itself.
    pub room: Option<String>,
}

/// Reads a group name built by [`namespace_group`] or [`room_group`]; `None` when `group` is not
/// a Socket.IO group name (other prefix, not exactly two segments after it, invalid or padded
/// base64url, non-UTF-8 bytes, a namespace that does not start with `/`).
pub fn parse(group: &str) -> Option<SioGroup> {
    let rest = group.strip_prefix(PREFIX)?;
    let (nsp, room) = rest.split_once(SEPARATOR)?;
    let namespace = decode_segment(nsp)?;
    if !namespace.starts_with('/') {
        return None;
    }
    // A third `~` lands in the room segment, where the base64url decoder refuses it.
    let room = if room.is_empty() {
        None
    } else {
        Some(decode_segment(room)?)
    };
    Some(SioGroup { namespace, room })
}

fn decode_segment(segment: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    String::from_utf8(bytes).ok()
}

fn encoded_len(s: &str) -> usize {
    (s.len() * 4).div_ceil(3)
}

#[cfg(test)]
mod tests;
