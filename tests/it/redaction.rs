//! Redaction by structure and by name, end to end: a hostile client sends its CONNECT `auth` in a
//! namespace holding `{` (with and without an ack id) and a CONNECT payload that does not parse,
//! puts secrets in query keys and headers whose names say so, and a handler's REST call carries
//! one in its query. None of them may reach the recording, `/_emu/export`, the timeline
//! (`/_emu/events`), an entry's details (`/_emu/entries/<seq>`, its `curl` included) or the live
//! log (`--format json` and pretty); each check also shows that the input did arrive and that
//! what is not secret is still shown.

use futures_util::SinkExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::inspector::Stream;
use crate::util::{Emu, WAIT, Webhook, Ws, http, next_text, poll_until};

/// Query parameters whose names say secret (none of them on the list of names redacted before
/// the word rule), with their secret values.
const QUERY: [(&str, &str); 10] = [
    ("sig", "q-secret-sig"),
    ("passwd", "q-secret-passwd"),
    ("sessionId", "q-secret-session"),
    ("jwt", "q-secret-jwt"),
    ("promoCode", "q-secret-code"),
    ("user_credential", "q-secret-credential"),
    ("principalId", "q-secret-principal"),
    ("keyring", "q-secret-key"),
    ("authz", "q-secret-auth"),
    ("MyCookie", "q-secret-cookie"),
];
/// Headers whose names say secret, with their secret values.
const HEADERS: [(&str, &str); 7] = [
    ("x-session-id", "h-secret-session"),
    ("x-ms-client-principal", "h-secret-principal"),
    ("x-jwt-assertion", "h-secret-jwt"),
    ("x-passwd", "h-secret-passwd"),
    ("x-request-sig", "h-secret-sig"),
    ("x-credential", "h-secret-credential"),
    ("x-promo-code", "h-secret-code"),
];
/// The CONNECT `auth` token in the namespace `/a{b`.
const NS_TOKEN: &str = "c-secret-brace";
/// The CONNECT `auth` token in the namespace `/c{d`, after an ack id.
const ACK_TOKEN: &str = "c-secret-ackid";
/// The token inside a CONNECT payload that is not valid JSON.
const BAD_TOKEN: &str = "c-secret-malformed";
/// The secret query value of the handler's REST call.
const REST_SIG: &str = "r-secret-sig";
/// What the violation warning says about the malformed CONNECT.
const MALFORMED: &str = "a CONNECT packet with an invalid payload";

fn secrets() -> Vec<&'static str> {
    let mut all: Vec<&str> = QUERY.iter().chain(&HEADERS).map(|(_, v)| *v).collect();
    all.extend([NS_TOKEN, ACK_TOKEN, BAD_TOKEN, REST_SIG]);
    all
}

/// Fails naming the first secret found in `text` (`what` says where it was).
fn assert_no_secret(what: &str, text: &str) {
    for secret in secrets() {
        assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
    }
}

/// A WebSocket client of hub `chat` with `query` and `headers` on its handshake.
async fn client(emu: &Emu, query: &str, headers: &[(&str, &str)]) -> Ws {
    let url = format!(
        "{}/clients/socketio/hubs/chat/?EIO=4&transport=websocket&{query}",
        emu.base()
    )
    .replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
    ws
}

/// Plays the hostile session against `emu` (hub `chat`, `--forward-auth`, `--rest-anonymous`)
/// and checks that every hostile input reached the handler. The caller then waits for the
/// malformed CONNECT's refusal (the last thing the session causes); the clients stay open
/// until it drops them.
async fn hostile_session(emu: &Emu, hook: &Webhook) -> [Ws; 2] {
    let mut query: Vec<String> = QUERY.iter().map(|(k, v)| format!("{k}={v}")).collect();
    query.push("room=lobby".into());
    let mut headers = HEADERS.to_vec();
    headers.push(("x-room", "lobby-header"));
    let mut ws = client(emu, &query.join("&"), &headers).await;

    // `auth` after a namespace holding `{`, then after a namespace holding `{` and an ack id.
    let connect = format!(r#"40/a{{b,{{"token":"{NS_TOKEN}","n":1}}"#);
    ws.send(Message::Text(connect.into())).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40/a{b,{\"sid\""));
    let connect = format!(r#"40/c{{d,7{{"token":"{ACK_TOKEN}"}}"#);
    ws.send(Message::Text(connect.into())).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40/c{d,{\"sid\""));

    // Positive control: the handler got both namespaces, the forwarded tokens, the query and
    // the headers.
    let connects = hook.wait_for("connect", 2).await;
    let first = connects
        .iter()
        .find(|r| r.header("ce-namespace") == "/a{b")
        .expect("the connect of /a{b");
    let body = first.json();
    assert_eq!(body["auth"]["token"], NS_TOKEN, "{body}");
    assert_eq!(body["query"]["sig"][0], QUERY[0].1, "{body}");
    assert_eq!(body["headers"]["x-session-id"][0], HEADERS[0].1, "{body}");
    let second = connects
        .iter()
        .find(|r| r.header("ce-namespace") == "/c{d")
        .expect("the connect of /c{d");
    assert_eq!(second.json()["auth"]["token"], ACK_TOKEN);

    // The handler's REST call, with a secret in its query.
    let url = format!(
        "{}/api/hubs/chat/:send?api-version=2024-01-01&sig={REST_SIG}",
        emu.base()
    );
    let sent = http("POST", &url, &[("content-type", "text/plain")], "42[\"x\"]").await;
    assert_eq!(sent.status, 202, "{}", sent.body);

    // A CONNECT whose payload is cut short: refused, the connection closed.
    let mut bad = client(emu, "", &[]).await;
    let connect = format!(r#"40/m{{n,{{"token":"{BAD_TOKEN}""#);
    bad.send(Message::Text(connect.into())).await.unwrap();
    [ws, bad]
}

/// Lines of a session file (or export) as JSON.
fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// What a session file (or export) must show: the frames with their namespaces, ack id and
/// `auth` keys, the malformed CONNECT's namespace, the connect body's non-secret query and
/// header, the REST call's non-secret query.
fn assert_session_shows_the_rest(what: &str, text: &str) {
    let lines = lines(text);
    let frames: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "frame" && l["direction"] == "in")
        .filter_map(|l| l["packet"].as_str())
        .collect();
    for want in [
        r#"40/a{b,{"n":"<redacted>","token":"<redacted>"}"#,
        r#"40/c{d,7{"token":"<redacted>"}"#,
        "40/m{n,<redacted>",
    ] {
        assert!(
            frames.contains(&want),
            "{what}: no frame {want} in {frames:?}"
        );
    }
    let connect = lines
        .iter()
        .find(|l| l["type"] == "webhook" && l["event"] == "connect" && l["namespace"] == "/a{b")
        .unwrap_or_else(|| panic!("{what}: no connect line:\n{text}"));
    let body: Value = serde_json::from_str(connect["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["query"]["room"][0], "lobby", "{what}: {body}");
    assert_eq!(body["query"]["sig"][0], "<redacted>", "{what}: {body}");
    assert_eq!(
        body["headers"]["x-room"][0], "lobby-header",
        "{what}: {body}"
    );
    assert_eq!(
        body["headers"]["x-session-id"][0], "<redacted>",
        "{what}: {body}"
    );
    assert_eq!(body["auth"]["token"], "<redacted>", "{what}: {body}");
    let handshake = lines
        .iter()
        .find(|l| l["type"] == "handshake" && l["query"]["room"] == "lobby")
        .unwrap_or_else(|| panic!("{what}: no handshake line:\n{text}"));
    assert_eq!(handshake["query"]["passwd"], "<redacted>", "{what}");
    let rest = lines
        .iter()
        .find(|l| l["type"] == "rest")
        .unwrap_or_else(|| panic!("{what}: no rest line:\n{text}"));
    assert_eq!(rest["query"]["api-version"][0], "2024-01-01", "{what}");
    assert_eq!(rest["query"]["sig"][0], "<redacted>", "{what}");
}

fn temp(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "sio-emu-redaction-{}-{name}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Waits until a live-log line (of either format) contains `text`.
async fn wait_line(emu: &Emu, text: &str) {
    let logged = || emu.log.lock().unwrap().iter().any(|l| l.contains(text));
    let seen = poll_until(WAIT, || logged().then_some(())).await;
    assert!(
        seen.is_some(),
        "no log line with {text}:\n{}",
        emu.log.lock().unwrap().join("\n")
    );
}

/// The hostile session against `serve --format <format>` with a recording, then every surface
/// checked: the timeline, each entry's details, the export, the live log, the recording.
async fn nothing_secret_anywhere(format: &str) {
    let file = temp(format);
    let hook = Webhook::start().await;
    let template = hook.template();
    let record = file.display().to_string();
    let args = [
        "--anonymous",
        "--rest-anonymous",
        "--forward-auth",
        "--webhook",
        &template,
        "--record",
        &record,
    ];
    let mut emu = match format {
        "pretty" => Emu::start_pretty(&args),
        _ => Emu::start(&args),
    };
    let clients = hostile_session(&emu, &hook).await;
    wait_line(&emu, MALFORMED).await;

    // The timeline, from its start to the refusal.
    let mut stream = Stream::open(&emu, "").await;
    let seen = stream
        .until(|v| v["type"] == "warning" && v["message"].as_str().unwrap().contains(MALFORMED))
        .await;
    let text = seen
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert_no_secret("the timeline", &text);
    let frame = |packet: &str| {
        seen.iter()
            .find(|v| v["type"] == "frame" && v["packet"] == packet)
            .unwrap_or_else(|| panic!("no frame {packet} on the timeline:\n{text}"))
    };
    let brace = frame(r#"40/a{b,{"n":"<redacted>","token":"<redacted>"}"#);
    assert_eq!(brace["socketio"]["namespace"], "/a{b");
    assert_eq!(brace["socketio"]["args"]["token"], "<redacted>");
    assert_eq!(
        frame(r#"40/c{d,7{"token":"<redacted>"}"#)["socketio"]["ackId"],
        7
    );
    frame("40/m{n,<redacted>");
    for namespace in ["/a{b", "/c{d"] {
        assert!(
            seen.iter()
                .any(|v| v["type"] == "namespaceConnect" && v["namespace"] == namespace),
            "{namespace} not on the timeline:\n{text}"
        );
    }

    // Every entry's details, the connect call's `curl` included.
    let mut connect_details = None;
    for entry in &seen {
        let url = format!("{}/_emu/entries/{}", emu.base(), entry["seq"]);
        let details = http("GET", &url, &[], "").await;
        assert_eq!(details.status, 200, "{}", details.body);
        assert_no_secret("an entry's details", &details.body);
        if entry["type"] == "webhook" && entry["event"] == "connect" {
            connect_details = Some(details.json());
        }
    }
    let details = connect_details.expect("the connect call's entry");
    let body: Value = serde_json::from_str(details["request"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["query"]["room"][0], "lobby", "{body}");
    assert_eq!(body["headers"]["x-room"][0], "lobby-header", "{body}");
    assert_eq!(body["auth"]["token"], "<redacted>", "{body}");
    assert!(details["curl"].as_str().unwrap().contains("lobby-header"));

    let export = http("GET", &format!("{}/_emu/export", emu.base()), &[], "").await;
    assert_eq!(export.status, 200);
    assert_no_secret("the export", &export.body);
    assert_session_shows_the_rest("the export", &export.body);

    drop(clients);
    assert_eq!(emu.terminate().await, 0);
    let log = emu.log.lock().unwrap().join("\n");
    assert_no_secret("the live log", &log);
    for namespace in ["/a{b", "/c{d"] {
        assert!(
            log.contains(namespace),
            "{namespace} not in the log:\n{log}"
        );
    }
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert_no_secret("the recording", &recorded);
    assert_session_shows_the_rest("the recording", &recorded);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_surface_with_the_json_log() {
    nothing_secret_anywhere("json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_surface_with_the_pretty_log() {
    nothing_secret_anywhere("pretty").await;
}
