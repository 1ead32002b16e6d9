//! Socket.IO v5 packet codec (pure). STUB.
use bytes::Bytes;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType { Connect, Disconnect, Event, Ack, ConnectError, BinaryEvent, BinaryAck }
#[derive(Debug, Clone, PartialEq)]
pub struct Packet { pub kind: PacketType, pub nsp: String, pub id: Option<u64>, pub data: Option<serde_json::Value>, pub attachments: Vec<Bytes> }
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> { pub kind: PacketType, pub attachments: usize, pub nsp: &'a str, pub id: Option<u64>, pub payload: &'a str }
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError { #[error("empty")] Empty }
#[derive(Debug)]
pub enum Decoded { Complete(Packet), AwaitingAttachments(PartialBinary) }
#[derive(Debug)]
pub struct PartialBinary { pub packet: Packet, pub expected: usize }
impl PartialBinary { pub fn push(self, _b: Bytes) -> Decoded { unimplemented!() } }
pub fn parse_header(_t: &str) -> Result<Header<'_>, DecodeError> { unimplemented!() }
pub fn decode(_t: &str) -> Result<Decoded, DecodeError> { unimplemented!() }
pub fn encode(_p: &Packet) -> (String, Vec<Bytes>) { unimplemented!() }
pub fn event_name(_p: &Packet) -> Option<String> { unimplemented!() }
