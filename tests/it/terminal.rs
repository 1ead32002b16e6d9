//! Nothing a peer controls reaches a terminal raw: a namespace, an event name and a token `sub`
//! full of terminal escape sequences (OSC 52 clipboard write, OSC 0 title, CSI 2J), BEL, CR, a
//! C1 control and a bidi override are shown by the pretty live log as visible escapes, and the
//! only escape sequences on stdout are the colours sio-emu adds itself.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::util::{WAIT, Webhook, bin, eventually, free_port, mint, poll_until};

/// What a hostile peer puts in every string it controls.
const HOSTILE: &str =
    "\x1b]52;c;cHduZWQ=\x07\x1b]0;owned\x07\x1b[2J\x07\rX\u{9b}31m\u{202e}gnp.exe\u{200b}\x7f";
/// How the live log must show it.
const SHOWN: &str =
    r"\e]52;c;cHduZWQ=\x07\e]0;owned\x07\e[2J\x07\rX\u{9b}31m\u{202e}gnp.exe\u{200b}\x7f";

/// A `serve --format pretty` whose stdout and stderr bytes are kept as they come.
struct Pretty {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Pretty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keep(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let sink = bytes.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    bytes
}

impl Pretty {
    async fn start(color: &str, webhook: &str) -> Pretty {
        let port = free_port();
        let mut child = Command::new(bin())
            .args(["serve", "--port", &port.to_string(), "--format", "pretty"])
            .args(["--color", color, "--webhook", webhook, "--hub", "h"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sio-emu");
        let stdout = keep(child.stdout.take().unwrap());
        let stderr = keep(child.stderr.take().unwrap());
        let pretty = Pretty {
            child,
            port,
            stdout,
            stderr,
        };
        // The banner names the endpoint once the listeners are bound.
        pretty.wait_for(&format!("localhost:{port}")).await;
        pretty
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Waits until stdout contains `text`.
    async fn wait_for(&self, text: &str) {
        let shown = poll_until(WAIT, || self.stdout().contains(text).then_some(())).await;
        assert!(
            shown.is_some(),
            "stdout never showed {text:?}; it holds:\n{:?}",
            self.stdout()
        );
    }

    /// SIGTERM, then waits for the exit and for both pipes to be read to the end.
    async fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        eventually("sio-emu exits", WAIT, || self.child.try_wait().unwrap()).await;
    }
}

/// A WebSocket session on hub `h` with `token`; `None` when the handshake is refused.
async fn open(
    base: &str,
    token: &str,
) -> Option<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let url = format!(
        "{}/clients/socketio/hubs/h/?EIO=4&transport=websocket&access_token={token}",
        base.replacen("http://", "ws://", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    let open = ws.next().await?.ok()?;
    assert!(open.to_text().unwrap().starts_with('0'), "{open:?}");
    Some(ws)
}

/// The next text packet other than a ping.
async fn next_text(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a packet in time")
            .expect("connection open")
            .unwrap();
        if let Message::Text(t) = message
            && t.as_str() != "2"
        {
            return t.to_string();
        }
    }
}

/// Every escape sequence in `text` that sio-emu did not add (its colours are `ESC [ digits;… m`),
/// and every other control, DEL, C1 or invisible format character, with its byte offset.
fn raw_controls(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c == '\n' {
            continue;
        }
        if c == '\x1b' {
            let rest = &text[at + 1..];
            let sgr = rest.strip_prefix('[').and_then(|r| {
                let end = r.find(|ch: char| !(ch.is_ascii_digit() || ch == ';'))?;
                (r.as_bytes()[end] == b'm').then_some(end + 2)
            });
            if let Some(len) = sgr {
                for _ in 0..len {
                    chars.next();
                }
                continue;
            }
        }
        let invisible = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{061c}');
        if c.is_control() || invisible {
            found.push((
                at,
                format!("{c:?} in {:?}", &text[at.saturating_sub(20)..at]),
            ));
        }
    }
    found
}

async fn peer_strings_are_escaped(color: &str) {
    let hook = Webhook::start().await;
    let mut emu = Pretty::start(color, &hook.template()).await;
    let endpoint = format!("http://localhost:{}", emu.port);
    let token = mint(&["--hub", "h", "--endpoint", &endpoint], Some(HOSTILE));
    let mut ws = open(&emu.base(), &token).await.expect("accepted");
    let namespace = format!("/ns{HOSTILE}");
    ws.send(Message::Text(format!("40{namespace},").into()))
        .await
        .unwrap();
    let joined = next_text(&mut ws).await;
    assert!(joined.starts_with(&format!("40{namespace},")), "{joined:?}");
    let event = serde_json::json!([HOSTILE, 1]).to_string();
    ws.send(Message::Text(format!("42{namespace},7{event}").into()))
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.starts_with("43"));
    // The hostile strings did arrive where the log shows them.
    let sent = hook
        .events()
        .into_iter()
        .filter(|r| r.header("ce-type") == "azure.webpubsub.user.message")
        .map(|r| r.body)
        .collect::<Vec<_>>();
    assert_eq!(
        sent,
        [format!("42{namespace},7{event}")],
        "the event reached the webhook"
    );

    // A token whose signature is wrong is refused, and the log shows its claims.
    let (head, _) = token.rsplit_once('.').unwrap();
    assert!(open(&emu.base(), &format!("{head}.AAAA")).await.is_none());

    // Positive control: each string is shown, escaped, where the log puts it.
    emu.wait_for("refused").await;
    if color == "never" {
        emu.wait_for(&format!("user={SHOWN} accepted")).await;
        emu.wait_for(&format!("/ns{SHOWN}#")).await;
        emu.wait_for(&format!("webhook    {SHOWN} hub=h")).await;
    } else {
        emu.wait_for(&format!("user={SHOWN}")).await;
        emu.wait_for(&format!("/ns{SHOWN}#")).await;
        emu.wait_for(&format!("{SHOWN} hub=h")).await;
    }
    drop(ws);
    emu.stop().await;
    let stdout = emu.stdout();
    assert!(stdout.contains(r"\u{202e}gnp.exe"), "{stdout:?}");
    let bad = raw_controls(&stdout);
    assert!(bad.is_empty(), "raw controls on stdout: {bad:#?}");
    let stderr = String::from_utf8_lossy(&emu.stderr.lock().unwrap()).into_owned();
    let bad = raw_controls(&stderr);
    assert!(bad.is_empty(), "raw controls on stderr: {bad:#?}");
    if color == "never" {
        assert!(!stdout.contains('\x1b'), "no colour asked: {stdout:?}");
    } else {
        assert!(stdout.contains("\x1b["), "colours asked: {stdout:?}");
    }
}

#[tokio::test]
async fn pretty_log_escapes_peer_strings_without_colour() {
    peer_strings_are_escaped("never").await;
}

#[tokio::test]
async fn pretty_log_escapes_peer_strings_with_colour() {
    peer_strings_are_escaped("always").await;
}

/// A recording is peer data too: replay's warnings on stderr quote its lines escaped.
#[test]
fn replay_warnings_escape_recorded_text() {
    let path = std::env::temp_dir().join(format!(
        "sio-emu-terminal-{}-hostile.jsonl",
        std::process::id()
    ));
    let header = serde_json::json!({
        "type": "header", "format": "sio-emu-session", "version": 1,
        "sioEmuVersion": "0.1.0", "hubs": [], "endpoint": "http://localhost:1",
        "startedAt": "2026-01-01T00:00:00.000Z",
    });
    let hostile = serde_json::json!({ "type": HOSTILE });
    std::fs::write(&path, format!("{header}\n{hostile}\n")).unwrap();
    let out = Command::new(bin())
        .args([
            "replay",
            "--target",
            "http://127.0.0.1:9/",
            "--color",
            "never",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Positive control: the warning quotes the line's type, escaped.
    assert!(
        stderr.contains(&format!("unknown line type `{SHOWN}`")),
        "{stderr:?}"
    );
    let bad = raw_controls(&stderr);
    assert!(bad.is_empty(), "raw controls on stderr: {bad:#?}");
}
