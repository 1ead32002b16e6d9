//! The JWS side of tokens: decoding the three base64url segments (with `base64` and
//! `serde_json`), and, done by the `jsonwebtoken` crate, minting, reading the header's `alg` and
//! checking the HS256 signature against each access key. Every failure becomes a sentence naming what is wrong, built from jsonwebtoken's
//! [`ErrorKind`] and, where that is not precise enough (`alg none`, a missing `alg`, a segment
//! count), from the raw decoded header.
//!
//! The claim checks (`exp`, `nbf`, `aud`) are not here: they run in [`super::jwt`] against the
//! caller's clock (jsonwebtoken's own time checks read the system clock, which a report of a
//! token at another instant cannot use) and the project's audience rules (several audiences,
//! URL normalisation), so the [`Validation`] used here checks the signature only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Outcome;

/// A JSON object, as a decoded header or claims segment.
pub(super) type Object = Map<String, Value>;

/// A token whose three segments decoded: the raw header and claims, and the header as
/// jsonwebtoken reads it (`None` when its `alg` is not one jsonwebtoken knows, e.g. `none`).
#[derive(Debug)]
pub(super) struct Decoded {
    pub header: Object,
    pub claims: Object,
    pub alg: Option<Algorithm>,
}

/// Why a token could not be decoded: the malformed-check message and whatever did decode.
#[derive(Debug)]
pub(super) struct Undecodable {
    pub message: String,
    pub header: Option<Object>,
    pub claims: Option<Object>,
}

/// Signs `claims` with HS256 keyed by the UTF-8 bytes of `key`. The header is
/// `{"alg":"HS256","typ":"JWT"}` in that order, as in the docs/protocol.md §10.1 vector.
pub(super) fn sign<T: Serialize>(key: &str, claims: &T) -> String {
    // jsonwebtoken writes `typ` before `alg`; as an extra field `typ` comes after it.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = None;
    header.extras.insert("typ", "JWT");
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key.as_bytes()))
        .expect("an HMAC key signs any claims that serialise, and ours always do")
}

/// Decodes the three segments of `token` (already trimmed, not empty).
pub(super) fn decode(token: &str) -> Result<Decoded, Undecodable> {
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != 3 {
        return Err(Undecodable {
            message: format!(
                "a JWT has three base64url segments separated by `.`, this has {}; \
                 pass the token exactly as minted",
                segments.len()
            ),
            header: None,
            claims: None,
        });
    }
    let header = decode_segment(segments[0], "header");
    let claims = decode_segment(segments[1], "claims");
    let signature = check_signature_encoding(segments[2]);
    let (header, claims) = match (header, claims, signature) {
        (Ok(h), Ok(c), Ok(())) => (h, c),
        (h, c, s) => {
            let message = [h.as_ref().err(), c.as_ref().err(), s.as_ref().err()]
                .into_iter()
                .flatten()
                .next()
                .map(ToString::to_string)
                .unwrap_or_default();
            return Err(Undecodable {
                message,
                header: h.ok(),
                claims: c.ok(),
            });
        }
    };
    let alg = match jsonwebtoken::decode_header(token) {
        Ok(parsed) => Some(parsed.alg),
        // An `alg` jsonwebtoken does not know is explained by [`check_alg`]; an HS256 header it
        // cannot read (e.g. `typ` not a string) is not a JWS header.
        Err(e) if header.get("alg").and_then(Value::as_str) == Some("HS256") => {
            return Err(Undecodable {
                message: format!(
                    "the header is not a valid JWS header ({e}); pass the token exactly as minted"
                ),
                header: Some(header),
                claims: Some(claims),
            });
        }
        Err(_) => None,
    };
    Ok(Decoded {
        header,
        claims,
        alg,
    })
}

/// Why one segment (`header`, `claims` or `signature`) does not decode.
#[derive(Debug, Clone, thiserror::Error)]
enum SegmentError {
    #[error("the {0} segment is not base64url; pass the token exactly as minted")]
    NotBase64url(&'static str),
    #[error("the {0} segment is JSON but not an object")]
    NotAnObject(&'static str),
    #[error("the {0} segment is not JSON ({1})")]
    NotJson(&'static str, String),
}

/// Decodes one header or claims segment into a JSON object.
fn decode_segment(segment: &str, what: &'static str) -> Result<Object, SegmentError> {
    let bytes = base64url(segment, what)?;
    serde_json::from_slice::<Object>(&bytes).map_err(|json| {
        if json.is_data() {
            SegmentError::NotAnObject(what)
        } else {
            SegmentError::NotJson(what, json.to_string())
        }
    })
}

/// Checks that the signature segment is base64url.
fn check_signature_encoding(segment: &str) -> Result<(), SegmentError> {
    base64url(segment, "signature").map(drop)
}

/// One segment's bytes: unpadded base64url, as RFC 7515 writes them and jsonwebtoken reads them.
fn base64url(segment: &str, what: &'static str) -> Result<Vec<u8>, SegmentError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| SegmentError::NotBase64url(what))
}

/// The `alg` check: HS256, and nothing else, is accepted.
pub(super) fn check_alg(decoded: &Decoded) -> Outcome {
    if decoded.alg == Some(Algorithm::HS256) {
        return Outcome::Passed("HS256".into());
    }
    match decoded.header.get("alg") {
        Some(Value::String(alg)) if alg.eq_ignore_ascii_case("none") => Outcome::Failed(
            "the token is unsigned (alg `none`); only HS256 tokens signed with the access key \
             are accepted"
                .into(),
        ),
        Some(Value::String(alg)) => Outcome::Failed(format!(
            "the header says alg `{alg}`; only HS256 tokens signed with the access key are accepted"
        )),
        Some(other) => Outcome::Failed(format!(
            "the header's `alg` is {other}, not a string; only HS256 is accepted"
        )),
        None => Outcome::Failed(
            "the header has no `alg`; only HS256 tokens signed with the access key are accepted"
                .into(),
        ),
    }
}

/// The `signature` check: jsonwebtoken verifies the HS256 signature with each key in turn.
pub(super) fn check_signature(token: &str, keys: &[String]) -> Outcome {
    if keys.is_empty() {
        return Outcome::Failed("no access key is configured to check it against".into());
    }
    let validation = signature_only();
    for (i, key) in keys.iter().enumerate() {
        let key = DecodingKey::from_secret(key.as_bytes());
        match jsonwebtoken::decode::<Object>(token, &key, &validation) {
            Ok(_) if keys.len() == 1 => return Outcome::Passed("matches the access key".into()),
            Ok(_) => return Outcome::Passed(format!("matches access key #{}", i + 1)),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
            Err(e) => return Outcome::Failed(unverifiable(&e)),
        }
    }
    Outcome::Failed(format!(
        "does not match the access key{}: the token was signed with another key or changed \
         after signing; sign it with the AccessKey the emulator uses (`serve --access-key`, \
         by default the development key)",
        if keys.len() == 1 { "" } else { "s" }
    ))
}

/// jsonwebtoken's verdict on the signature alone: HS256 and nothing about the claims.
fn signature_only() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
}

/// A signature that could not be checked at all (the decoding above makes this rare).
fn unverifiable(e: &Error) -> String {
    format!("could not be checked ({e}); pass the token exactly as minted")
}
