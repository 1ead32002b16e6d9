//! Connection strings. STUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString { pub endpoint: String, pub access_key: String }
pub fn parse(_s: &str) -> Result<ConnectionString, String> { unimplemented!() }
pub fn format(endpoint: &str, key: &str) -> String { format!("Endpoint={endpoint};AccessKey={key};Version=1.0;") }
