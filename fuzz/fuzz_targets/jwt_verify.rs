//! Fuzzes JWT verification (client and REST audiences) and connection-string parsing: any input
//! yields a report or an error, never a panic; a report that says valid really passed every check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_emu::auth::{self, Expected};

const KEY: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keys = [KEY.to_owned()];
    let audience = "http://localhost:8080/clients/socketio/hubs/hub";
    let client = auth::verify_report(text, &keys, Expected::Client { audience }, 1_700_000_000);
    if client.is_valid() {
        assert!(client.first_failure().is_none());
    }
    let url = "http://localhost:8080/api/hubs/hub/:send?api-version=2024-01-01";
    let _ = auth::verify_report(text, &keys, Expected::Rest { request_url: url }, 1_700_000_000);
    let _ = auth::verify_client_token(text, &keys, audience, 1_700_000_000);
    let _ = auth::connection_string::parse(text);
    // A token minted from the input as a user id verifies.
    let token = auth::mint(
        KEY,
        &auth::TokenClaims {
            aud: audience.into(),
            sub: Some(text.to_owned()),
            lifetime_secs: 60,
            now: 1_700_000_000,
            ..Default::default()
        },
    );
    assert!(auth::verify_client_token(&token, &keys, audience, 1_700_000_010).is_ok());
});
