//! Engine.IO v4 long-polling payloads (pure). STUB.
use super::packet::{DecodeError, Packet};
pub fn decode_payload(_body: &str, _max_payload: usize) -> Result<Vec<Packet>, DecodeError> {
    unimplemented!()
}
pub fn encode_payload<'a>(_packets: impl IntoIterator<Item = &'a Packet>, _out: &mut String) {
    unimplemented!()
}
