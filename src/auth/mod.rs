//! Access tokens and signatures: minting and verifying the HS256 JWTs that Socket.IO clients
//! (`?access_token=`) and REST callers (`Authorization: Bearer`) present, the webhook
//! `ce-signature` header, and connection strings.
//!
//! The server's client handshake calls [`verify_client_token`], the REST layer calls
//! [`verify_rest_token`], `sio-emu token` calls [`mint`] and [`verify_report`], and the upstream
//! module calls [`ce_signature`]. Verification never answers just "invalid": a [`Rejection`] names
//! the failed [`Check`] with a sentence a person can act on, and carries the decoded (unverified)
//! claims for the live log. Every key is used as the UTF-8 bytes of the AccessKey string as
//! written in the connection string, never base64-decoded (docs/protocol.md §6, §10).

mod codec;
pub mod connection_string;
mod endpoint;
mod jwt;
pub mod signature;

use std::fmt;

use serde_json::{Map, Value};

pub use endpoint::{Endpoint, EndpointError};
pub use jwt::{
    CLIENT_PATH, CheckResult, Expected, Outcome, Report, client_audience, mint, verify_report,
};
pub use signature::ce_signature;

/// The documented development key: what `serve`, `token` and `replay` use when no
/// `--access-key` / `SIO_EMU_ACCESS_KEY` / connection string gives another one.
pub const DEV_ACCESS_KEY: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH";

/// One step of token verification, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// No token was presented at all.
    Missing,
    /// Not three base64url segments, or the header / claims are not JSON objects.
    Malformed,
    /// The header's `alg` is not `HS256`.
    Alg,
    /// The HMAC-SHA256 signature matches none of the access keys.
    Signature,
    /// `exp` is absent, not a number, or in the past (beyond the clock-skew allowance).
    Exp,
    /// `nbf` is present and in the future (beyond the clock-skew allowance).
    Nbf,
    /// `aud` does not name this hub (client tokens) or this request URL (REST tokens).
    Aud,
}

impl Check {
    /// The lowercase name used in logs, 401 bodies and `token verify` output.
    pub fn name(self) -> &'static str {
        match self {
            Check::Missing => "missing",
            Check::Malformed => "malformed",
            Check::Alg => "alg",
            Check::Signature => "signature",
            Check::Exp => "exp",
            Check::Nbf => "nbf",
            Check::Aud => "aud",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a token was refused.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The first check that failed.
    pub check: Check,
    /// What failed and what to do about it, as one sentence.
    pub message: String,
    /// The decoded but unverified claims, when the payload could be decoded.
    pub claims: Option<Map<String, Value>>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.check, self.message)
    }
}

impl std::error::Error for Rejection {}

/// Verifies a Socket.IO client token (docs/protocol.md §3, §10.1): HS256 signed with any of `keys`, `exp`
/// required, `nbf` honoured when present, both with a 5-minute clock-skew allowance, and `aud`
/// (a string or an array of strings) equal to `audience` ignoring case. `audience` is normally
/// [`client_audience`]`(endpoint, hub)`.
pub fn verify_client_token(
    token: &str,
    keys: &[String],
    audience: &str,
    now: u64,
) -> Result<Map<String, Value>, Rejection> {
    verify_report(token, keys, Expected::Client { audience }, now).into_result()
}

/// Verifies a REST Bearer token (docs/protocol.md §10.2, §14): like a client token, except that `aud` must
/// equal the request URL as received, with or without its query string, compared after
/// percent-decoding both sides (`+` is a space in the query) and ignoring case.
/// `request_url` is the absolute URL, e.g. `http://localhost:8080/api/hubs/hub/:send?api-version=2024-01-01`.
pub fn verify_rest_token(
    token: &str,
    keys: &[String],
    request_url: &str,
    now: u64,
) -> Result<Map<String, Value>, Rejection> {
    verify_report(token, keys, Expected::Rest { request_url }, now).into_result()
}

/// What [`mint`] puts in a token.
#[derive(Debug, Clone, Default)]
pub struct TokenClaims {
    /// `aud`: [`client_audience`] for a client token, the request URL for a REST token.
    pub aud: String,
    /// `sub`: the user id, omitted when `None`.
    pub sub: Option<String>,
    /// `role`: a string when there is one, an array when several, omitted when none.
    pub roles: Vec<String>,
    /// `webpubsub.group`: a string when there is one, an array when several, omitted when none.
    pub groups: Vec<String>,
    /// `exp` = `now` + this.
    pub lifetime_secs: u64,
    /// `iat` and `nbf` (seconds since 1970).
    pub now: u64,
}

/// Seconds since 1970 by the system clock (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
