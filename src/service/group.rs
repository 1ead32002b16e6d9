//! Group names. STUB.
pub fn namespace_group(_nsp: &str) -> String { unimplemented!() }
pub fn room_group(_nsp: &str, _room: &str) -> String { unimplemented!() }
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SioGroup { pub namespace: String, pub room: Option<String> }
pub fn parse(_group: &str) -> Option<SioGroup> { unimplemented!() }
