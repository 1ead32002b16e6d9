//! Tokens. STUB.
pub mod connection_string;
use serde_json::{Map, Value};
pub const DEV_ACCESS_KEY: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH";
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check { Missing, Malformed, Alg, Signature, Exp, Nbf, Aud }
#[derive(Debug, Clone)]
pub struct Rejection { pub check: Check, pub message: String, pub claims: Option<Map<String, Value>> }
pub fn client_audience(_endpoint: &str, _hub: &str) -> String { unimplemented!() }
pub fn verify_client_token(_t: &str, _keys: &[String], _aud: &str, _now: u64) -> Result<Map<String, Value>, Rejection> { unimplemented!() }
pub fn verify_rest_token(_t: &str, _keys: &[String], _url: &str, _now: u64) -> Result<Map<String, Value>, Rejection> { unimplemented!() }
#[derive(Debug, Clone, Default)]
pub struct TokenClaims { pub aud: String, pub sub: Option<String>, pub roles: Vec<String>, pub groups: Vec<String>, pub lifetime_secs: u64, pub now: u64 }
pub fn mint(_key: &str, _c: &TokenClaims) -> String { unimplemented!() }
pub fn ce_signature(_keys: &[String], _connection_id: &str) -> String { unimplemented!() }
pub fn now_unix() -> u64 { std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) }
