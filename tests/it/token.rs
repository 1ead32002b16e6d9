//! `sio-emu token` and `sio-emu token verify`, run as the real binary: minting in every format,
//! verification exit codes and the check each failure names, key and endpoint sources, and the
//! one-line errors for bad flags.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

const DEV_KEY: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH";

/// A `sio-emu` command with the secret environment variables cleared, so the developer's shell
/// cannot change the outcome.
fn sio_emu(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sio-emu"));
    cmd.args(args)
        .env_remove("SIO_EMU_ACCESS_KEY")
        .env_remove("WebPubSubConnectionString")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    sio_emu(args).output().expect("run sio-emu")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Mints with `args`, asserts success and returns the single output line.
fn mint(args: &[&str]) -> String {
    let mut full = vec!["token"];
    full.extend_from_slice(args);
    let out = run(&full);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    text.trim_end().to_string()
}

fn verify(token: &str, args: &[&str]) -> Output {
    let mut full = vec!["token", "verify", token, "--color", "never"];
    full.extend_from_slice(args);
    run(&full)
}

fn claims(token: &str) -> Map<String, Value> {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Asserts a usage error: exit 2, nothing on stdout, one `sio-emu: ` line plus optional hint.
fn assert_usage_error(args: &[&str], needle: &str) {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert_eq!(stdout(&out), "", "{args:?}");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("sio-emu: ") && lines[0].contains(needle),
        "{args:?}: {err}"
    );
    assert!(
        lines[1..].iter().all(|l| l.starts_with("hint: ")),
        "{args:?}: {err}"
    );
    assert!(lines.len() <= 2, "{args:?}: {err}");
}

#[test]
fn mint_then_verify_is_valid() {
    let token = mint(&["--hub", "chat", "--user", "alice"]);
    let c = claims(&token);
    assert_eq!(c["aud"], "http://localhost:8080/clients/socketio/hubs/chat");
    assert_eq!(c["sub"], "alice");
    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 3600);
    assert_eq!(c["nbf"], c["iat"]);
    assert!(iat.abs_diff(now()) <= 5);

    let out = verify(&token, &["--hub", "chat"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for line in ["alg ok", "signature ok", "exp ok", "nbf ok", "aud ok"] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(text.contains("\"sub\": \"alice\""), "{text}");
    assert!(text.contains("\"typ\": \"JWT\""), "{text}");
    assert!(text.lines().last().unwrap().starts_with("valid"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour with --color never");
}

#[test]
fn tampered_payload_fails_signature() {
    let token = mint(&["--user", "alice"]);
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut c = claims(&token);
    c.insert("sub".into(), "admin".into());
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
    let out = verify(&parts.join("."), &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("signature FAILED"), "{text}");
    assert!(text.contains("rejected by the `signature` check"), "{text}");
}

#[test]
fn expired_token_fails_exp() {
    let two_hours_ago = (now() - 7200).to_string();
    let token = mint(&["--issued-at", &two_hours_ago, "--expires-in", "1h"]);
    let out = verify(&token, &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("exp FAILED: expired"), "{text}");
    assert!(text.contains("signature ok"), "{text}");

    // RFC 3339 is accepted too; 2024 is long gone.
    let token = mint(&["--issued-at", "2024-01-01T00:00:00Z"]);
    assert_eq!(claims(&token)["iat"], 1_704_067_200);
    assert!(stdout(&verify(&token, &[])).contains("exp FAILED: expired"));
}

#[test]
fn future_token_fails_nbf() {
    let in_an_hour = (now() + 3600).to_string();
    let token = mint(&["--issued-at", &in_an_hour]);
    let out = verify(&token, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("nbf FAILED: not valid until"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn wrong_audience_fails_aud() {
    let token = mint(&["--hub", "chat"]);
    let out = verify(&token, &["--hub", "other"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("aud FAILED"), "{text}");
    assert!(text.contains("hub `chat`"), "{text}");

    let out = verify(
        &token,
        &["--hub", "chat", "--endpoint", "http://localhost:9999"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("aud FAILED"));
    // Hubs compare case-insensitively.
    assert_eq!(verify(&token, &["--hub", "CHAT"]).status.code(), Some(0));
}

#[test]
fn not_a_jwt_is_a_failed_check_not_a_usage_error() {
    let out = verify("not-a-token", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("malformed FAILED"),
        "{}",
        stdout(&out)
    );
    let out = verify("", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("missing FAILED"), "{}", stdout(&out));
}

#[test]
fn format_json_is_the_negotiate_shape() {
    let text = mint(&["--hub", "chat", "--user", "u1", "--format", "json"]);
    let v: Map<String, Value> = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.keys().map(String::as_str).collect();
    assert_eq!(keys, ["endpoint", "path", "token"]);
    assert_eq!(v["endpoint"], "http://localhost:8080/");
    assert_eq!(v["path"], "/clients/socketio/hubs/chat");
    let token = v["token"].as_str().unwrap();
    assert_eq!(claims(token)["sub"], "u1");
    assert_eq!(verify(token, &["--hub", "chat"]).status.code(), Some(0));
}

#[test]
fn format_url_is_the_polling_handshake() {
    let text = mint(&["--format", "url"]);
    let prefix =
        "http://localhost:8080/clients/socketio/hubs/hub/?EIO=4&transport=polling&access_token=";
    let token = text
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(verify(token, &[]).status.code(), Some(0));
}

#[test]
fn rest_tokens() {
    let url = "http://localhost:8080/api/hubs/hub/:send?api-version=2024-01-01";
    let token = mint(&["--rest", url]);
    let c = claims(&token);
    assert_eq!(c["aud"], url);
    assert!(!c.contains_key("sub"));
    assert_eq!(verify(&token, &["--rest", url]).status.code(), Some(0));
    // A token for the URL without its query is accepted too; a path is appended to the endpoint.
    let no_query = mint(&["--rest", "/api/hubs/hub/:send"]);
    assert_eq!(
        claims(&no_query)["aud"],
        "http://localhost:8080/api/hubs/hub/:send"
    );
    assert_eq!(verify(&no_query, &["--rest", url]).status.code(), Some(0));
    let out = verify(
        &token,
        &[
            "--rest",
            "http://localhost:8080/api/hubs/hub/:closeConnections",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("aud FAILED"));
    // A REST token is not a client token.
    assert!(stdout(&verify(&token, &[])).contains("aud FAILED"));

    let v: Map<String, Value> =
        serde_json::from_str(&mint(&["--rest", "/api/health", "--format", "json"])).unwrap();
    assert_eq!(v["url"], "http://localhost:8080/api/health");
    assert_usage_error(&["token", "--rest", url, "--format", "url"], "--format url");
}

#[test]
fn roles_and_groups() {
    let one = claims(&mint(&[
        "--role",
        "webpubsub.joinLeaveGroup",
        "--group",
        "g1",
    ]));
    assert_eq!(one["role"], "webpubsub.joinLeaveGroup");
    assert_eq!(one["webpubsub.group"], "g1");
    let many = claims(&mint(&[
        "--role", "a", "--role", "b", "--group", "g1", "--group", "g2",
    ]));
    assert_eq!(many["role"], serde_json::json!(["a", "b"]));
    assert_eq!(many["webpubsub.group"], serde_json::json!(["g1", "g2"]));
    let none = claims(&mint(&[]));
    assert!(!none.contains_key("role") && !none.contains_key("webpubsub.group"));
}

#[test]
fn connection_string_with_port() {
    let cs = "Endpoint=http://localhost;Port=9090;AccessKey=s3cret;Version=1.0;";
    let v: Map<String, Value> =
        serde_json::from_str(&mint(&["--connection-string", cs, "--format", "json"])).unwrap();
    assert_eq!(v["endpoint"], "http://localhost:9090/");
    let token = v["token"].as_str().unwrap();
    assert_eq!(
        claims(token)["aud"],
        "http://localhost:9090/clients/socketio/hubs/hub"
    );
    assert_eq!(
        verify(token, &["--connection-string", cs]).status.code(),
        Some(0)
    );
    assert_eq!(
        verify(
            token,
            &[
                "--access-key",
                "s3cret",
                "--endpoint",
                "http://localhost:9090"
            ]
        )
        .status
        .code(),
        Some(0)
    );
    // Signed with s3cret, so the development key rejects it.
    let out = verify(token, &["--endpoint", "http://localhost:9090"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("signature FAILED"));
    // --endpoint and --access-key override the matching part of the connection string.
    let token = mint(&[
        "--connection-string",
        cs,
        "--endpoint",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(
        claims(&token)["aud"],
        "http://127.0.0.1:1/clients/socketio/hubs/hub"
    );
}

#[test]
fn environment_is_a_fallback_and_flags_win() {
    let cs = "Endpoint=http://localhost:7000;AccessKey=from-env;Version=1.0;";
    let out = sio_emu(&["token"])
        .env("WebPubSubConnectionString", cs)
        .output()
        .unwrap();
    let token = stdout(&out).trim().to_string();
    assert_eq!(
        claims(&token)["aud"],
        "http://localhost:7000/clients/socketio/hubs/hub"
    );
    assert_eq!(
        verify(&token, &["--connection-string", cs]).status.code(),
        Some(0)
    );

    // A command-line --connection-string beats SIO_EMU_ACCESS_KEY from the environment.
    let out = sio_emu(&["token", "--connection-string", cs])
        .env("SIO_EMU_ACCESS_KEY", "env-key")
        .output()
        .unwrap();
    let token = stdout(&out).trim().to_string();
    assert_eq!(
        verify(&token, &["--connection-string", cs]).status.code(),
        Some(0)
    );

    // SIO_EMU_ACCESS_KEY works for verify, and the report says where the key came from.
    let token = mint(&["--access-key", "env-key"]);
    let out = sio_emu(&["token", "verify", &token, "--color", "never"])
        .env("SIO_EMU_ACCESS_KEY", "env-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("SIO_EMU_ACCESS_KEY"));
    assert!(
        !stdout(&out).contains("env-key"),
        "the key itself is never printed"
    );
}

#[test]
fn help_never_shows_secret_values() {
    for args in [["token", "--help"], ["token", "verify"]] {
        let mut args = args.to_vec();
        if args[1] == "verify" {
            args.push("--help");
        }
        let out = sio_emu(&args)
            .env("SIO_EMU_ACCESS_KEY", "super-secret-1")
            .env(
                "WebPubSubConnectionString",
                "Endpoint=http://x;AccessKey=super-secret-2",
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(text.contains("SIO_EMU_ACCESS_KEY"), "{text}");
        assert!(!text.contains("super-secret"), "{text}");
    }
}

#[test]
fn verify_reads_stdin_and_colours_on_request() {
    let token = mint(&[]);
    let mut child = sio_emu(&["token", "verify", "-", "--color", "always"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "Bearer {token}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains('\u{1b}'), "ANSI colour expected");
}

#[test]
fn the_development_key_is_the_default() {
    let token = mint(&[]);
    assert_eq!(
        verify(&token, &["--access-key", DEV_KEY]).status.code(),
        Some(0)
    );
}

#[test]
fn bad_flags_are_one_line_usage_errors() {
    assert_usage_error(&["token", "--hub", "1bad"], "--hub");
    assert_usage_error(&["token", "--expires-in", "10d"], "--expires-in");
    assert_usage_error(&["token", "--issued-at", "yesterday"], "--issued-at");
    assert_usage_error(&["token", "--endpoint", "localhost:8080"], "--endpoint");
    assert_usage_error(&["token", "--connection-string", "AccessKey=x"], "Endpoint");
    assert_usage_error(&["token", "--rest", "api/hubs"], "--rest");
    assert_usage_error(&["token", "--user", ""], "--user");
    assert_usage_error(&["token", "verify", "x.y.z", "--hub", "a b"], "--hub");
    // clap's own errors (unknown flag, bad enum value, conflicts) are usage errors too.
    for args in [
        &["token", "--bogus"][..],
        &["token", "--format", "xml"],
        &["token", "--rest", "/x", "--hub", "h"],
        &["token", "--hub", "h", "verify", "x"],
        &["token", "verify"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}
