//! Engine.IO v4 packet codec (pure). STUB: replaced by the real codec.

use bytes::Bytes;

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Open(String),
    Close,
    Ping(String),
    Pong(String),
    Message(String),
    Binary(Bytes),
    Upgrade,
    Noop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
}

impl Packet {
    pub fn decode_text(_text: &str) -> Result<Packet, DecodeError> {
        unimplemented!()
    }
    pub fn encode_text(&self, _out: &mut String) {
        unimplemented!()
    }
}
