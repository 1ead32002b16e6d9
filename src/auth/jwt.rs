//! Minting and the verification checks, written once: [`verify_report`] runs every check
//! and records each outcome; `verify_client_token` / `verify_rest_token` (in the parent module)
//! take the first failure from that report, and `sio-emu token verify` prints the whole report.
//!
//! Tokens are JWS compact serialisations signed with HS256 (docs/protocol.md §10). Minting writes the header
//! `{"alg":"HS256","typ":"JWT"}` and the claims `nbf`, `exp`, `iat`, `aud`, `sub`, `role`,
//! `webpubsub.group` in that order, so a token minted from the docs/protocol.md §10.1 vector's claims is
//! byte-for-byte the vector. The JWS work (encoding, decoding, `alg`, the HMAC signature) is
//! jsonwebtoken's, in [`super::codec`]; the claim checks (`exp`, `nbf`, `aud`) are here.

use std::time::{Duration, UNIX_EPOCH};

use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Check, Rejection, TokenClaims, codec};

/// How far `exp` and `nbf` may be off the local clock and still be accepted, in seconds
/// (5 minutes, as the official emulator docs/protocol.md §0 A3 allows).
pub const CLOCK_SKEW_SECS: u64 = 300;

/// The path prefix of every Socket.IO client audience.
pub const CLIENT_PATH: &str = "/clients/socketio/hubs/";

/// What the token's `aud` must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected<'a> {
    /// A Socket.IO client token: `aud` equals this audience, ignoring case.
    Client {
        /// Normally [`client_audience`]`(endpoint, hub)`.
        audience: &'a str,
    },
    /// A REST token: `aud` equals this request URL (with or without its query), compared
    /// percent-decoded and ignoring case.
    Rest {
        /// The absolute request URL as received.
        request_url: &'a str,
    },
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed; the text says what was found (e.g. "expires in 59m at …").
    Passed(String),
    /// The check failed; the text says why and what to do.
    Failed(String),
    /// The check could not run because an earlier one failed; the text says which.
    Skipped(String),
}

/// One line of a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub check: Check,
    pub outcome: Outcome,
}

/// Everything verification found out about a token.
///
/// `checks` lists `alg`, `signature`, `exp`, `nbf`, `aud` in that order for a well-formed token;
/// for a missing or malformed one it holds the single failed `missing` / `malformed` check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The decoded header, when it could be decoded.
    pub header: Option<Map<String, Value>>,
    /// The decoded (unverified) claims, when they could be decoded.
    pub claims: Option<Map<String, Value>>,
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True when no check failed.
    pub fn is_valid(&self) -> bool {
        self.first_failure().is_none()
    }

    /// The first failed check (checks are stored in verification order) and its message.
    pub fn first_failure(&self) -> Option<(Check, &str)> {
        self.checks.iter().find_map(|c| match &c.outcome {
            Outcome::Failed(message) => Some((c.check, message.as_str())),
            _ => None,
        })
    }

    /// The verified claims, or the [`Rejection`] for the first failed check.
    pub fn into_result(self) -> Result<Map<String, Value>, Rejection> {
        if let Some((check, message)) = self.first_failure() {
            return Err(Rejection {
                check,
                message: message.to_string(),
                claims: self.claims,
            });
        }
        Ok(self.claims.unwrap_or_default())
    }

    fn single_failure(check: Check, message: String) -> Report {
        Report {
            checks: vec![CheckResult {
                check,
                outcome: Outcome::Failed(message),
            }],
            ..Report::default()
        }
    }
}

/// The Socket.IO client audience: `<endpoint without trailing slash>/clients/socketio/hubs/<hub>`.
pub fn client_audience(endpoint: &str, hub: &str) -> String {
    format!("{}{CLIENT_PATH}{hub}", endpoint.trim_end_matches('/'))
}

/// Mints an HS256 token signed with the UTF-8 bytes of `key` (jsonwebtoken signs it).
pub fn mint(key: &str, claims: &TokenClaims) -> String {
    #[derive(Serialize)]
    #[serde(untagged)]
    enum OneOrMany<'a> {
        One(&'a str),
        Many(&'a [String]),
    }
    fn one_or_many(values: &[String]) -> Option<OneOrMany<'_>> {
        match values {
            [] => None,
            [one] => Some(OneOrMany::One(one)),
            many => Some(OneOrMany::Many(many)),
        }
    }
    #[derive(Serialize)]
    struct Payload<'a> {
        nbf: u64,
        exp: u64,
        iat: u64,
        aud: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        sub: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<OneOrMany<'a>>,
        #[serde(rename = "webpubsub.group", skip_serializing_if = "Option::is_none")]
        group: Option<OneOrMany<'a>>,
    }
    let payload = Payload {
        nbf: claims.now,
        exp: claims.now.saturating_add(claims.lifetime_secs),
        iat: claims.now,
        aud: &claims.aud,
        sub: claims.sub.as_deref(),
        role: one_or_many(&claims.roles),
        group: one_or_many(&claims.groups),
    };
    codec::sign(key, &payload)
}

/// Runs every check on `token` and reports each outcome (see [`Report`]). Any of `keys` may have
/// signed it. `now` is seconds since 1970.
pub fn verify_report(token: &str, keys: &[String], expected: Expected<'_>, now: u64) -> Report {
    let token = token.trim();
    if token.is_empty() {
        let message = match expected {
            Expected::Client { .. } => {
                "no access token was presented; pass one in the `access_token` query parameter \
                 (mint one with `sio-emu token`)"
            }
            Expected::Rest { .. } => {
                "no Bearer token was presented; send `Authorization: Bearer <token>` whose `aud` \
                 is the request URL (mint one with `sio-emu token --rest <URL>`)"
            }
        };
        return Report::single_failure(Check::Missing, message.to_string());
    }
    let decoded = match codec::decode(token) {
        Ok(decoded) => decoded,
        Err(undecodable) => {
            let mut report = Report::single_failure(Check::Malformed, undecodable.message);
            report.header = undecodable.header;
            report.claims = undecodable.claims;
            return report;
        }
    };
    let alg = codec::check_alg(&decoded);
    let signature = if matches!(alg, Outcome::Passed(_)) {
        codec::check_signature(token, keys)
    } else {
        Outcome::Skipped("not checked, because the token is not HS256".into())
    };
    let claims = &decoded.claims;
    let checks = vec![
        (Check::Alg, alg),
        (Check::Signature, signature),
        (Check::Exp, check_exp(claims.get("exp"), now)),
        (Check::Nbf, check_nbf(claims.get("nbf"), now)),
        (Check::Aud, check_aud(claims.get("aud"), expected)),
    ];
    Report {
        checks: checks
            .into_iter()
            .map(|(check, outcome)| CheckResult { check, outcome })
            .collect(),
        header: Some(decoded.header),
        claims: Some(decoded.claims),
    }
}

fn check_exp(exp: Option<&Value>, now: u64) -> Outcome {
    let exp = match numeric_date(exp, "exp") {
        Ok(Some(exp)) => exp,
        Ok(None) => {
            return Outcome::Failed(
                "the token has no `exp` claim; the service requires an expiry time".into(),
            );
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let now = now as f64;
    let skew = CLOCK_SKEW_SECS as f64;
    if now > exp + skew {
        Outcome::Failed(format!(
            "expired {} ago at {}; mint a new token",
            span(now - exp),
            timestamp(exp)
        ))
    } else if now > exp {
        Outcome::Passed(format!(
            "expired {} ago at {}, accepted within the 5-minute clock-skew allowance",
            span(now - exp),
            timestamp(exp)
        ))
    } else {
        Outcome::Passed(format!(
            "expires in {} at {}",
            span(exp - now),
            timestamp(exp)
        ))
    }
}

fn check_nbf(nbf: Option<&Value>, now: u64) -> Outcome {
    let nbf = match numeric_date(nbf, "nbf") {
        Ok(Some(nbf)) => nbf,
        Ok(None) => return Outcome::Passed("not set".into()),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let now = now as f64;
    let skew = CLOCK_SKEW_SECS as f64;
    if nbf > now + skew {
        Outcome::Failed(format!(
            "not valid until {} (in {}), beyond the 5-minute clock-skew allowance; check the \
             clock of the machine that minted it",
            timestamp(nbf),
            span(nbf - now)
        ))
    } else if nbf > now {
        Outcome::Passed(format!(
            "valid from {} (in {}), accepted within the 5-minute clock-skew allowance",
            timestamp(nbf),
            span(nbf - now)
        ))
    } else {
        Outcome::Passed(format!(
            "valid since {} ago at {}",
            span(now - nbf),
            timestamp(nbf)
        ))
    }
}

/// A NumericDate claim (`exp`, `nbf`) that is not a usable time: the claim's name and value.
#[derive(Debug, thiserror::Error)]
enum NumericDateError {
    #[error("`{0}` is {1}, which is not a usable time")]
    Unusable(&'static str, serde_json::Number),
    #[error("`{0}` is {1}, not a NumericDate (a number of seconds since 1970)")]
    NotANumber(&'static str, Value),
}

/// Reads a NumericDate claim: `Ok(None)` when absent, an error when not a number.
fn numeric_date(
    value: Option<&Value>,
    name: &'static str,
) -> Result<Option<f64>, NumericDateError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| NumericDateError::Unusable(name, n.clone())),
        Some(other) => Err(NumericDateError::NotANumber(name, other.clone())),
    }
}

fn check_aud(aud: Option<&Value>, expected: Expected<'_>) -> Outcome {
    let wanted = match expected {
        Expected::Client { audience } => audience,
        Expected::Rest { request_url } => request_url,
    };
    let auds: Vec<&str> = match aud {
        None => {
            return Outcome::Failed(format!(
                "the token has no `aud` claim; it must be `{wanted}`"
            ));
        }
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(other) => {
            return Outcome::Failed(format!(
                "`aud` is {other}; it must be a string (or an array of strings) equal to `{wanted}`"
            ));
        }
    };
    if auds.is_empty() {
        return Outcome::Failed(format!("`aud` holds no string; it must be `{wanted}`"));
    }
    match expected {
        Expected::Client { audience } => {
            let want = normalize_url(audience);
            match auds.iter().find(|a| normalize_url(a) == want) {
                Some(a) => Outcome::Passed((*a).to_string()),
                None => Outcome::Failed(explain_client_mismatch(auds[0], audience)),
            }
        }
        Expected::Rest { request_url } => {
            let full = normalize_url(request_url);
            let without_query = normalize_url(strip_query(request_url));
            match auds.iter().find(|a| {
                let a = normalize_url(a);
                a == full || a == without_query
            }) {
                Some(a) => Outcome::Passed((*a).to_string()),
                None => Outcome::Failed(explain_rest_mismatch(auds[0], request_url)),
            }
        }
    }
}

fn explain_client_mismatch(aud: &str, expected: &str) -> String {
    let want = normalize_url(expected);
    if normalize_url(aud.trim_end_matches('/')) == want {
        return format!("`aud` is `{aud}` but must be `{expected}`, without the trailing slash");
    }
    if aud.to_ascii_lowercase().contains("/client/hubs/") {
        return format!(
            "`aud` is `{aud}`, a generic Web PubSub client audience; Socket.IO clients need \
             `{expected}` (path /clients/socketio/hubs/<hub>): mint it with \
             getClientAccessToken({{clientProtocol: \"socketio\"}}) or `sio-emu token`"
        );
    }
    if let (Some((origin, hub)), Some((want_origin, want_hub))) =
        (split_client_audience(aud), split_client_audience(expected))
    {
        if normalize_url(origin) == normalize_url(want_origin) {
            return format!(
                "the token is for hub `{hub}` but this is hub `{want_hub}` (`aud` must be \
                 `{expected}`)"
            );
        }
        if hub.eq_ignore_ascii_case(want_hub) {
            return format!(
                "the token is for endpoint `{origin}` but this service is `{want_origin}` (`aud` \
                 must be `{expected}`); mint tokens with a connection string that points at the \
                 emulator"
            );
        }
    }
    if split_client_audience(aud).is_none() && aud.contains("/api/") {
        return format!(
            "`aud` is `{aud}`, which looks like a REST token's request URL; a client token needs \
             `{expected}`"
        );
    }
    format!("`aud` is `{aud}` but must be `{expected}`")
}

fn explain_rest_mismatch(aud: &str, request_url: &str) -> String {
    if split_client_audience(aud).is_some() {
        return format!(
            "`aud` is the client audience `{aud}`; a REST call needs a token whose `aud` is the \
             request URL `{request_url}`"
        );
    }
    format!(
        "`aud` is `{aud}` but the request URL is `{request_url}`; a REST token is minted for the \
         exact URL it calls, with or without the query (e.g. `sio-emu token --rest <URL>`)"
    )
}

/// Splits `<origin>/clients/socketio/hubs/<hub>` into origin and hub.
fn split_client_audience(aud: &str) -> Option<(&str, &str)> {
    let at = aud.to_ascii_lowercase().find(CLIENT_PATH)?;
    let hub = &aud[at + CLIENT_PATH.len()..];
    (!hub.is_empty() && !hub.contains('/')).then_some((&aud[..at], hub))
}

fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// The comparable form of a URL: percent-decoded (`+` is a space in the query), lowercase, the
/// default port (`:80` for http, `:443` for https) dropped, any fragment removed.
fn normalize_url(url: &str) -> String {
    let url = url.trim();
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = percent_decode_str(base).decode_utf8_lossy().to_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if let Some(rest) = out.strip_prefix(scheme) {
            let end = rest.find('/').unwrap_or(rest.len());
            if rest[..end].ends_with(port) {
                let cut = scheme.len() + end - port.len();
                out.replace_range(cut..cut + port.len(), "");
            }
            break;
        }
    }
    if let Some(query) = query {
        out.push('?');
        let query = query.replace('+', " ");
        out.push_str(
            &percent_decode_str(&query)
                .decode_utf8_lossy()
                .to_lowercase(),
        );
    }
    out
}

/// A NumericDate as RFC 3339 (UTC), or the raw number when it is out of range.
fn timestamp(secs: f64) -> String {
    if (0.0..253_402_300_800.0).contains(&secs) {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs as u64)).to_string()
    } else {
        format!("{secs} (seconds since 1970)")
    }
}

/// A short human span: `45s`, `3m 12s`, `2h 5m`, `3d 4h`.
fn span(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) if sec == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEV_ACCESS_KEY, verify_client_token, verify_rest_token};
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey};

    /// The header of the docs/protocol.md §10.1 vector, which [`mint`] writes.
    const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    const VECTOR_PAYLOAD: &str = r#"{"nbf":1700000000,"exp":1700003600,"iat":1700000000,"aud":"http://localhost:8080/clients/socketio/hubs/hub","sub":"user1"}"#;
    const VECTOR_SIGNATURE: &str = "Ob16UBAblethMv1BAyxCTVP3A54SBXwG5e4nySDbS0w";
    const AUD: &str = "http://localhost:8080/clients/socketio/hubs/hub";
    const NOW: u64 = 1_700_000_100;

    fn keys() -> Vec<String> {
        vec![DEV_ACCESS_KEY.to_string()]
    }

    fn vector_token() -> String {
        format!(
            "{}.{}.{VECTOR_SIGNATURE}",
            URL_SAFE_NO_PAD.encode(HEADER_JSON),
            URL_SAFE_NO_PAD.encode(VECTOR_PAYLOAD)
        )
    }

    fn claims(aud: &str) -> TokenClaims {
        TokenClaims {
            aud: aud.into(),
            sub: Some("alice".into()),
            lifetime_secs: 3600,
            now: NOW,
            ..TokenClaims::default()
        }
    }

    /// Signs arbitrary header and payload JSON with the dev key.
    fn sign_raw(header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let key = EncodingKey::from_secret(DEV_ACCESS_KEY.as_bytes());
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{input}.{sig}")
    }

    fn rejected(token: &str, now: u64) -> Rejection {
        verify_client_token(token, &keys(), AUD, now).unwrap_err()
    }

    #[test]
    fn spec_vector_verifies() {
        let claims = verify_client_token(&vector_token(), &keys(), AUD, NOW).unwrap();
        assert_eq!(claims["sub"], "user1");
        assert_eq!(claims["exp"], 1_700_003_600);
    }

    #[test]
    fn minting_the_vector_claims_reproduces_the_vector() {
        let token = mint(
            DEV_ACCESS_KEY,
            &TokenClaims {
                aud: AUD.into(),
                sub: Some("user1".into()),
                lifetime_secs: 3600,
                now: 1_700_000_000,
                ..TokenClaims::default()
            },
        );
        assert_eq!(token, vector_token());
    }

    #[test]
    fn minted_token_agrees_with_jsonwebtoken() {
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
        // Ours, checked by an independent implementation.
        let now = super::super::now_unix();
        let token = mint(DEV_ACCESS_KEY, &TokenClaims { now, ..claims(AUD) });
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUD]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            &token,
            &DecodingKey::from_secret(DEV_ACCESS_KEY.as_bytes()),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "alice");
        // Theirs (header fields in another order), checked by ours.
        let payload = serde_json::json!({"aud": AUD, "exp": now + 60, "sub": "bob"});
        let theirs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &payload,
            &EncodingKey::from_secret(DEV_ACCESS_KEY.as_bytes()),
        )
        .unwrap();
        let claims = verify_client_token(&theirs, &keys(), AUD, now).unwrap();
        assert_eq!(claims["sub"], "bob");
    }

    #[test]
    fn missing() {
        let r = rejected("", NOW);
        assert_eq!(r.check, Check::Missing);
        assert!(r.message.contains("access_token"));
        let r = verify_rest_token("  ", &keys(), "http://x/api", NOW).unwrap_err();
        assert_eq!(r.check, Check::Missing);
        assert!(r.message.contains("Bearer"));
    }

    #[test]
    fn malformed() {
        for token in [
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.AAAA",
            // header `[]`: JSON, not an object
            "W10.e30.AAAA",
            // claims not JSON
            "e30.bm90IGpzb24.AAAA",
            "e30.e30.!!!",
        ] {
            let r = rejected(token, NOW);
            assert_eq!(r.check, Check::Malformed, "{token}: {}", r.message);
        }
        // Claims still come back when only the header is broken.
        let payload = URL_SAFE_NO_PAD.encode(VECTOR_PAYLOAD);
        let r = rejected(&format!("!!.{payload}.AAAA"), NOW);
        assert_eq!(r.check, Check::Malformed);
        assert_eq!(r.claims.unwrap()["sub"], "user1");
    }

    #[test]
    fn alg() {
        let payload = VECTOR_PAYLOAD;
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            let r = rejected(&sign_raw(header, payload), NOW);
            assert_eq!(r.check, Check::Alg, "{header}");
            assert!(r.claims.is_some());
        }
        // The signature is not checked when alg is wrong.
        let report = verify_report(
            &sign_raw(r#"{"alg":"RS256"}"#, payload),
            &keys(),
            Expected::Client { audience: AUD },
            NOW,
        );
        assert!(matches!(report.checks[1].outcome, Outcome::Skipped(_)));
    }

    #[test]
    fn alg_messages_name_the_header() {
        let payload = VECTOR_PAYLOAD;
        let message = |header: &str| rejected(&sign_raw(header, payload), NOW).message;
        assert!(message(r#"{"alg":"none"}"#).contains("unsigned (alg `none`)"));
        assert!(message(r#"{"alg":"HS512","typ":"JWT"}"#).contains("alg `HS512`"));
        assert!(message(r#"{"alg":"XYZ"}"#).contains("alg `XYZ`"));
        assert!(message(r#"{"typ":"JWT"}"#).contains("no `alg`"));
        assert!(message(r#"{"alg":7}"#).contains("not a string"));
        // A token jsonwebtoken itself signed with HS512 is refused at `alg`, not `signature`.
        let key = EncodingKey::from_secret(DEV_ACCESS_KEY.as_bytes());
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS512),
            &serde_json::json!({"aud": AUD, "exp": NOW + 60}),
            &key,
        )
        .unwrap();
        let r = rejected(&hs512, NOW);
        assert_eq!(r.check, Check::Alg);
        assert!(r.message.contains("alg `HS512`"), "{}", r.message);
    }

    #[test]
    fn unreadable_hs256_header_is_malformed() {
        let token = sign_raw(r#"{"alg":"HS256","typ":5}"#, VECTOR_PAYLOAD);
        let r = rejected(&token, NOW);
        assert_eq!(r.check, Check::Malformed, "{}", r.message);
        assert!(
            r.message.contains("not a valid JWS header"),
            "{}",
            r.message
        );
        assert_eq!(r.claims.unwrap()["sub"], "user1");
    }

    #[test]
    fn padded_segments_are_malformed() {
        // RFC 7515 base64url has no `=` padding, and jsonwebtoken refuses it.
        let payload = URL_SAFE_NO_PAD.encode(VECTOR_PAYLOAD);
        assert_ne!(
            payload.len() % 4,
            0,
            "the vector needs padding to test this"
        );
        let token = vector_token().replace(&payload, &format!("{payload}="));
        assert_ne!(token, vector_token());
        let r = rejected(&token, NOW);
        assert_eq!(r.check, Check::Malformed, "{}", r.message);
        assert!(r.message.contains("claims segment"), "{}", r.message);
    }

    #[test]
    fn signature() {
        let token = vector_token();
        let other = vec!["another-key".to_string()];
        let r = verify_client_token(&token, &other, AUD, NOW).unwrap_err();
        assert_eq!(r.check, Check::Signature);
        assert_eq!(r.claims.unwrap()["sub"], "user1");
        // Any configured key may verify.
        let both = vec!["another-key".to_string(), DEV_ACCESS_KEY.to_string()];
        assert!(verify_client_token(&token, &both, AUD, NOW).is_ok());
        // A tampered payload keeps the old signature.
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = VECTOR_PAYLOAD.replace("user1", "admin");
        let tampered = format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(rejected(&tampered, NOW).check, Check::Signature);
        assert_eq!(
            verify_client_token(&token, &[], AUD, NOW)
                .unwrap_err()
                .check,
            Check::Signature
        );
    }

    #[test]
    fn exp() {
        let token = vector_token(); // exp 1700003600
        assert!(verify_client_token(&token, &keys(), AUD, 1_700_003_600 + 300).is_ok());
        let r = rejected(&token, 1_700_003_600 + 301);
        assert_eq!(r.check, Check::Exp);
        assert!(
            r.message
                .starts_with("expired 5m 1s ago at 2023-11-14T23:13:20Z"),
            "{}",
            r.message
        );
        let r = rejected(
            &sign_raw(HEADER_JSON, &format!(r#"{{"aud":"{AUD}"}}"#)),
            NOW,
        );
        assert_eq!(r.check, Check::Exp);
        assert!(r.message.contains("no `exp`"));
        let r = rejected(
            &sign_raw(HEADER_JSON, &format!(r#"{{"aud":"{AUD}","exp":"soon"}}"#)),
            NOW,
        );
        assert_eq!(r.check, Check::Exp);
    }

    #[test]
    fn nbf() {
        let token = vector_token(); // nbf 1700000000
        assert!(verify_client_token(&token, &keys(), AUD, 1_700_000_000 - 300).is_ok());
        let r = rejected(&token, 1_700_000_000 - 301);
        assert_eq!(r.check, Check::Nbf);
        assert!(r.message.contains("not valid until"));
        // nbf is optional.
        let no_nbf = sign_raw(
            HEADER_JSON,
            &format!(r#"{{"aud":"{AUD}","exp":{}}}"#, NOW + 60),
        );
        assert!(verify_client_token(&no_nbf, &keys(), AUD, NOW).is_ok());
    }

    #[test]
    fn checks_run_in_order() {
        // Wrong key, expired and wrong hub at once: signature is reported first.
        let r = verify_client_token(
            &vector_token(),
            &["k".into()],
            "http://x/clients/socketio/hubs/y",
            1_800_000_000,
        )
        .unwrap_err();
        assert_eq!(r.check, Check::Signature);
        let r = verify_client_token(
            &vector_token(),
            &keys(),
            "http://x/clients/socketio/hubs/y",
            1_800_000_000,
        )
        .unwrap_err();
        assert_eq!(r.check, Check::Exp);
        let report = verify_report(
            &vector_token(),
            &keys(),
            Expected::Client { audience: AUD },
            NOW,
        );
        let order: Vec<Check> = report.checks.iter().map(|c| c.check).collect();
        assert_eq!(
            order,
            [
                Check::Alg,
                Check::Signature,
                Check::Exp,
                Check::Nbf,
                Check::Aud
            ]
        );
        assert!(report.is_valid());
    }

    #[test]
    fn client_aud() {
        assert_eq!(client_audience("http://localhost:8080/", "hub"), AUD);
        assert_eq!(
            client_audience("http://localhost:8080", "Chat"),
            "http://localhost:8080/clients/socketio/hubs/Chat"
        );
        let token = mint(DEV_ACCESS_KEY, &claims(AUD));
        // Case-insensitive, default ports ignored.
        assert!(verify_client_token(&token, &keys(), &AUD.to_uppercase(), NOW).is_ok());
        let t80 = mint(
            DEV_ACCESS_KEY,
            &claims("http://localhost:80/clients/socketio/hubs/hub"),
        );
        assert!(
            verify_client_token(
                &t80,
                &keys(),
                "http://LOCALHOST/clients/socketio/hubs/HUB",
                NOW
            )
            .is_ok()
        );
        // Arrays: any element may match.
        let arr = sign_raw(
            HEADER_JSON,
            &format!(r#"{{"aud":["http://other/x","{AUD}"],"exp":{}}}"#, NOW + 60),
        );
        assert!(verify_client_token(&arr, &keys(), AUD, NOW).is_ok());
        // Mismatches name the problem.
        let cases = [
            (
                "http://localhost:8080/clients/socketio/hubs/chat",
                "hub `chat`",
            ),
            (
                "https://x.webpubsub.azure.com/clients/socketio/hubs/hub",
                "endpoint `https://x.webpubsub.azure.com`",
            ),
            (
                "http://localhost:8080/client/hubs/hub",
                "generic Web PubSub",
            ),
            (
                "http://localhost:8080/clients/socketio/hubs/hub/",
                "trailing slash",
            ),
        ];
        for (aud, needle) in cases {
            let r = rejected(&mint(DEV_ACCESS_KEY, &claims(aud)), NOW);
            assert_eq!(r.check, Check::Aud, "{aud}");
            assert!(r.message.contains(needle), "{aud}: {}", r.message);
        }
        let no_aud = sign_raw(HEADER_JSON, &format!(r#"{{"exp":{}}}"#, NOW + 60));
        assert_eq!(rejected(&no_aud, NOW).check, Check::Aud);
        let num_aud = sign_raw(HEADER_JSON, &format!(r#"{{"aud":5,"exp":{}}}"#, NOW + 60));
        assert_eq!(rejected(&num_aud, NOW).check, Check::Aud);
    }

    #[test]
    fn rest_aud() {
        let url = "http://localhost:8080/api/hubs/hub/groups/0~Lw~/:send?api-version=2024-12-01&filter=userId%20eq%20%27a%27";
        let ok = |aud: &str, url: &str| {
            let token = mint(
                DEV_ACCESS_KEY,
                &TokenClaims {
                    sub: None,
                    ..claims(aud)
                },
            );
            verify_rest_token(&token, &keys(), url, NOW)
        };
        // Exact, as received.
        assert!(ok(url, url).is_ok());
        // Without the query.
        assert!(ok("http://localhost:8080/api/hubs/hub/groups/0~Lw~/:send", url).is_ok());
        // Percent-encoding differences and `+` as space, case-insensitively.
        assert!(ok(
            "http://LOCALHOST:8080/api/hubs/hub/groups/0%7ELw%7E/%3Asend?api-version=2024-12-01&filter=userId+eq+'a'",
            url
        )
        .is_ok());
        // Query parameters in another order than received do not match.
        let r = ok(
            "http://localhost:8080/api/hubs/hub/groups/0~Lw~/:send?filter=userId%20eq%20%27a%27&api-version=2024-12-01",
            url,
        )
        .unwrap_err();
        assert_eq!(r.check, Check::Aud);
        assert!(r.message.contains("request URL"));
        // Another path, or a client token.
        assert_eq!(
            ok("http://localhost:8080/api/hubs/hub/:send", url)
                .unwrap_err()
                .check,
            Check::Aud
        );
        let r = ok(AUD, url).unwrap_err();
        assert!(r.message.contains("client audience"), "{}", r.message);
    }

    #[test]
    fn role_and_group_claim_shapes() {
        let decode = |c: &TokenClaims| -> Map<String, Value> {
            verify_client_token(&mint("k", c), &["k".into()], AUD, NOW).unwrap()
        };
        let none = decode(&claims(AUD));
        assert!(!none.contains_key("role") && !none.contains_key("webpubsub.group"));
        let one = decode(&TokenClaims {
            roles: vec!["webpubsub.joinLeaveGroup".into()],
            groups: vec!["room1".into()],
            ..claims(AUD)
        });
        assert_eq!(one["role"], "webpubsub.joinLeaveGroup");
        assert_eq!(one["webpubsub.group"], "room1");
        let many = decode(&TokenClaims {
            roles: vec!["a".into(), "b".into()],
            groups: vec!["g1".into(), "g2".into()],
            ..claims(AUD)
        });
        assert_eq!(many["role"], serde_json::json!(["a", "b"]));
        assert_eq!(many["webpubsub.group"], serde_json::json!(["g1", "g2"]));
        assert_eq!(many["iat"], NOW);
        assert_eq!(many["nbf"], NOW);
        assert_eq!(many["exp"], NOW + 3600);
        assert!(
            !decode(&TokenClaims {
                sub: None,
                ..claims(AUD)
            })
            .contains_key("sub")
        );
    }

    #[test]
    fn check_names() {
        let names: Vec<String> = [
            Check::Missing,
            Check::Malformed,
            Check::Alg,
            Check::Signature,
            Check::Exp,
            Check::Nbf,
            Check::Aud,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            names,
            [
                "missing",
                "malformed",
                "alg",
                "signature",
                "exp",
                "nbf",
                "aud"
            ]
        );
    }

    #[test]
    fn spans() {
        assert_eq!(span(45.0), "45s");
        assert_eq!(span(180.0), "3m");
        assert_eq!(span(192.0), "3m 12s");
        assert_eq!(span(7500.0), "2h 5m");
        assert_eq!(span(7200.0), "2h");
        assert_eq!(span(86_400.0 * 3.0 + 3_600.0 * 4.0), "3d 4h");
    }
}
