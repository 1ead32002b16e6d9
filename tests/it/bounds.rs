//! What a client or handler can make the emulator keep, measured on the real binary: the
//! process's memory (VmRSS) stays within the sum of the documented bounds plus the README's
//! constant, however large the values a client controls (a token's `sub`, a namespace full of
//! control characters), whether or not the readers of `/_emu/events` and `/_emu/export` read,
//! and a `--record` file that stops taking lines holds up only the sessions whose lines wait.

use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::util::*;

const MIB: u64 = 1024;
/// The README's constant: what the process may hold beyond the sum of its documented bounds
/// (runtime, allocator slack, buffers of the connections a test opens), in KiB.
const CONSTANT_KIB: u64 = 16 * MIB;
/// The live log's buffer (README: 1 MiB of rendered lines).
const LOG_KIB: u64 = MIB;
/// One socket's lane at the default `--max-payload` (4 × 1,000,000 bytes).
const LANE_KIB: u64 = 4_000_000 / 1024;
/// The default `--inspector-buffer`.
const RING_KIB: u64 = 4 * MIB;

/// A `sub` of 45 KB: anyone holding the public development key can mint one.
fn long_sub() -> String {
    (0..45_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// A webhook that answers user events only once its gate is open (and every other call at
/// once), recording each call's event name, namespace and `ce-userId` length, in arrival order.
struct GatedHook {
    addr: std::net::SocketAddr,
    gate: watch::Sender<bool>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Debug, Clone)]
struct Seen {
    event: String,
    namespace: String,
    user_id_len: usize,
}

impl GatedHook {
    async fn start() -> GatedHook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (gate, open) = watch::channel(false);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (open, log) = (open.clone(), log.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (mut open, log) = (open.clone(), log.clone());
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                                    .unwrap_or_default()
                            };
                            let user = header("ce-type") == "azure.webpubsub.user.message";
                            let seen = Seen {
                                event: header("ce-eventname"),
                                namespace: header("ce-namespace"),
                                user_id_len: header("ce-userid").len(),
                            };
                            let _ = req.into_body().collect().await;
                            log.lock().unwrap().push(seen);
                            if user {
                                let _ = open.wait_for(|o| *o).await;
                            }
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(if user { 204 } else { 200 })
                                    .header("WebHook-Allowed-Origin", "*")
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        GatedHook { addr, gate, seen }
    }

    fn template(&self) -> String {
        format!("http://{}/api/{{hub}}/{{event}}", self.addr)
    }

    fn open(&self) {
        let _ = self.gate.send(true);
    }

    /// The calls so far that `pred` accepts.
    fn seen(&self, pred: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| pred(s))
            .cloned()
            .collect()
    }

    async fn wait_seen(&self, n: usize, wait: Duration, pred: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        let seen = poll_until(wait, || {
            Some(self.seen(&pred)).filter(|seen| seen.len() >= n)
        });
        seen.await.unwrap_or_else(|| {
            let all: Vec<_> = self.seen(|_| true).into_iter().map(|s| s.event).collect();
            let got = self.seen(&pred).len();
            panic!("the webhook saw {got} of {n} calls: {all:?}")
        })
    }
}

/// A connection that sends one GET to the admin surface and reads nothing until asked.
struct Unread {
    stream: TcpStream,
}

impl Unread {
    async fn open(emu: &Emu, path: &str) -> Unread {
        let mut stream = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            emu.port
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        Unread { stream }
    }

    /// Reads until the answer is complete (the server closes) or `until` is found.
    async fn read(&mut self, until: Option<&str>) -> String {
        let mut all = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut chunk))
                .await
                .expect("the answer stalled")
                .unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..n]);
            if let Some(needle) = until
                && String::from_utf8_lossy(&all).contains(needle)
            {
                break;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }
}

async fn health(emu: &Emu) {
    let reply = http("GET", &format!("{}/api/health", emu.base()), &[], "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn status(emu: &Emu) -> Value {
    http("GET", &format!("{}/_emu/status", emu.base()), &[], "")
        .await
        .json()
}

fn rss_kib(emu: &Emu) -> u64 {
    proc_status_kib(emu.pid(), "VmRSS")
}

/// Connects with a token for `sub` and joins `/`.
async fn join_as(emu: &Emu, hub: &str, sub: &str) -> WsClient {
    let token = emu.token(hub, Some(sub));
    let mut client = WsClient::connect(emu, hub, &format!("access_token={token}"))
        .await
        .expect("a token with a long sub still connects");
    assert!(client.join("/").await.starts_with("40"));
    client
}

/// Row 1: a 45 KB `sub` and thousands of tiny events waiting for a slow handler. The user id
/// is kept once for the socket, not once per waiting event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_user_id_is_kept_once_per_socket_not_once_per_waiting_event() {
    let hook = GatedHook::start().await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--no-preflight", "--quiet"]);
    let sub = long_sub();
    let mut client = join_as(&emu, "h", &sub).await;
    let idle = rss_kib(&emu);
    const EVENTS: usize = 3000;
    for i in 0..EVENTS {
        client.send(&format!("42[\"e{i}\"]")).await;
    }
    // A second namespace's CONNECT after the events: once its `connect` reaches the webhook,
    // every event before it has been read and waits in the first socket's lane.
    client.send("40/z,").await;
    hook.wait_seen(1, WAIT, |s| s.event == "connect" && s.namespace == "/z")
        .await;
    let held = rss_kib(&emu);
    eprintln!("RSS idle {idle} KiB, {EVENTS} events waiting {held} KiB");
    let bound = idle + LANE_KIB + RING_KIB + LOG_KIB + CONSTANT_KIB;
    assert!(
        held <= bound,
        "RSS {held} KiB with {EVENTS} tiny events waiting, bound {bound} KiB (idle {idle} KiB)"
    );
    // Positive control: every event was taken and reaches the handler, in order, with the
    // whole user id.
    hook.open();
    let seen = hook
        .wait_seen(EVENTS, Duration::from_secs(60), |s| {
            s.event.starts_with('e')
        })
        .await;
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.event, format!("e{i}"));
        assert_eq!(s.user_id_len, sub.len());
    }
}

/// Row 2: the same user id with the default ring; the ring counts it, and ten exports that
/// are not read cost an entry each while `/api/health` answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_and_ten_unread_exports_stay_bounded() {
    let hook = Webhook::start().await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--no-preflight", "--quiet"]);
    let sub = long_sub();
    let mut client = join_as(&emu, "h", &sub).await;
    let idle = rss_kib(&emu);
    const EVENTS: usize = 1500;
    for i in 0..EVENTS {
        client.send(&format!("42{i}[\"e\"]")).await;
    }
    for i in 0..EVENTS {
        assert_eq!(client.recv().await, format!("43{i}[\"ok\"]"));
    }
    let ring = status(&emu).await["ring"].clone();
    assert!(ring["bytes"].as_u64().unwrap() <= 4 << 20, "{ring}");
    let mut exports = Vec::new();
    for _ in 0..10 {
        exports.push(Unread::open(&emu, "/_emu/export").await);
    }
    // Serving carries on while the exports wait for their readers.
    health(&emu).await;
    let st = status(&emu).await;
    let during = rss_kib(&emu);
    eprintln!("RSS idle {idle} KiB, ring {ring}, ten exports waiting {during} KiB");
    // Each export may hold one entry (with its 45 KB user id) rendered, plus its socket's share.
    let bound = idle + RING_KIB + LANE_KIB + LOG_KIB + 10 * 256 + CONSTANT_KIB;
    assert!(
        during <= bound,
        "RSS {during} KiB with ten exports waiting, bound {bound} KiB (idle {idle} KiB)"
    );
    // Positive control: each export, read now, is a whole session file of what the ring holds,
    // webhook lines with the whole user id among them.
    for mut export in exports {
        let text = export.read(None).await;
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let body = dechunk(body);
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect();
        assert_eq!(lines[0]["type"], "header");
        let webhooks = lines.iter().filter(|l| l["type"] == "webhook").count();
        assert!(webhooks > 0, "{}", &body[..body.len().min(500)]);
        assert!(
            lines
                .iter()
                .filter(|l| l["type"] == "webhook")
                .all(|l| l["userId"] == sub.as_str())
        );
        assert!(lines.len() as u64 <= st["ring"]["entries"].as_u64().unwrap() + 1);
    }
}

/// The body of a chunked HTTP/1.1 answer.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

/// Row 3: readers of `/_emu/events` that never read while a client sends frames on a
/// namespace of control characters (each shown as a six-byte escape, twice per frame).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_event_streams_stay_bounded_and_are_told_what_they_lost() {
    let hook = Webhook::start().await;
    let emu = Emu::start(&[
        "--webhook",
        &hook.template(),
        "--no-preflight",
        "--anonymous",
        "--quiet",
        "--inspector-buffer",
        "1048576",
    ]);
    let mut client = WsClient::connect(&emu, "h", "").await.unwrap();
    let namespace = format!("/{}", "\u{1}".repeat(100_000));
    assert!(client.join(&namespace).await.starts_with("40"));
    let idle = rss_kib(&emu);
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(Unread::open(&emu, "/_emu/events").await);
    }
    const EVENTS: usize = 150;
    for i in 0..EVENTS {
        client.send(&format!("42{namespace},{i}[\"e\"]")).await;
        let ack = client.recv().await;
        assert!(ack.ends_with(&format!(",{i}[\"ok\"]")), "{}", &ack[..20]);
    }
    health(&emu).await;
    let during = rss_kib(&emu);
    eprintln!("RSS idle {idle} KiB, four unread streams {during} KiB");
    // Per reader (README): its queue, at most the ring's bound; three chunks of rendered text,
    // here one frame each (about 1.2 MB: its 100,000 control characters shown twice as
    // six-byte escapes); and the HTTP writer's buffer (about 400 KiB).
    let per_reader = MIB + 3 * 1200 + 400;
    let bound = idle + MIB + LANE_KIB + LOG_KIB + 4 * per_reader + CONSTANT_KIB;
    assert!(
        during <= bound,
        "RSS {during} KiB with four unread streams, bound {bound} KiB (idle {idle} KiB)"
    );
    // Positive control: a reader that reads now is told how many entries it lost, and gets
    // the namespace escaped.
    let mut reader = readers.remove(0);
    let text = reader.read(Some("event: dropped")).await;
    assert!(
        text.contains("\\u0001\\u0001"),
        "the namespace arrived escaped"
    );
    let more = reader.read(Some("\n\n")).await;
    let all = format!("{text}{more}");
    let dropped = all
        .split("event: dropped\ndata: ")
        .nth(1)
        .and_then(|d| d.split_once('\n'))
        .and_then(|(d, _)| serde_json::from_str::<Value>(d).ok())
        .and_then(|d| d["dropped"].as_u64())
        .expect("a dropped count");
    assert!(dropped > 0);
}

/// Row 7: `--record` into a FIFO whose reader stops. The session whose lines wait stops; the
/// health check, the inspector, another hub's idle connection and its heartbeats carry on, and
/// SIGTERM ends the process within the grace plus a few seconds, naming what was not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_recording_holds_up_only_its_sessions_and_sigterm_still_ends_it() {
    let dir = std::env::temp_dir().join(format!("sio-emu-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("session.jsonl");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // The reader takes the first line, then stops reading until the process is gone.
    let first_line = Arc::new(AtomicUsize::new(0));
    let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
    let reader = {
        let (fifo, first_line) = (fifo.clone(), first_line.clone());
        std::thread::spawn(move || {
            let mut file = std::io::BufReader::new(std::fs::File::open(&fifo).unwrap());
            let mut header = String::new();
            file.read_line(&mut header).unwrap();
            first_line.store(header.len(), Ordering::SeqCst);
            let _ = resume_rx.recv();
            let mut rest = String::new();
            let _ = file.read_to_string(&mut rest);
            (header, rest)
        })
    };
    let hook = Webhook::start().await;
    let mut emu = Watched::start(&[
        "--webhook",
        &hook.template(),
        "--no-preflight",
        "--anonymous",
        "--quiet",
        "--record",
        fifo.to_str().unwrap(),
        "--shutdown-grace",
        "1s",
        "--ping-interval",
        "300ms",
        "--ping-timeout",
        "2s",
    ]);
    let mut idle = WsClient::connect(&emu, "b", "").await.unwrap();
    assert!(idle.join("/").await.starts_with("40"));
    // The idle client answers every ping and counts them until its connection ends.
    let pings = Arc::new(AtomicUsize::new(0));
    let heartbeats = {
        let pings = pings.clone();
        tokio::spawn(async move {
            while let Some(message) = idle.next_raw(Duration::from_secs(60)).await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = message
                    && t.as_str() == "2"
                {
                    pings.fetch_add(1, Ordering::SeqCst);
                    idle.send("3").await;
                }
            }
        })
    };
    let mut busy = WsClient::connect(&emu, "a", "").await.unwrap();
    assert!(busy.join("/").await.starts_with("40"));
    let payload = "p".repeat(100_000);
    // 60 frames of 100 KB and their webhook exchanges: far more than the recording's queue
    // (4 MiB) and the pipe (64 KiB) hold.
    let sender = tokio::spawn(async move {
        for i in 0..60 {
            busy.send(&format!("42{i}[\"big\",\"{payload}\"]")).await;
        }
        busy
    });
    // The recording is full: its queue says so.
    let mut st = Value::Null;
    let filled = poll_until_async(WAIT, async || {
        st = status(&emu).await;
        let rec = &st["recording"];
        let (queued, capacity) = (&rec["queuedBytes"], &rec["capacityBytes"]);
        (queued.as_u64().unwrap_or(0) >= capacity.as_u64().unwrap_or(1)).then_some(())
    });
    assert!(filled.await.is_some(), "the recording never filled: {st}");
    assert!(first_line.load(Ordering::SeqCst) > 0, "the header was read");
    // Serving carries on: health, the inspector, and the idle client's heartbeats (three pings
    // answered, the connection still open).
    health(&emu).await;
    assert_eq!(
        http("GET", &format!("{}/_emu/", emu.base()), &[], "")
            .await
            .status,
        200
    );
    let before = pings.load(Ordering::SeqCst);
    eventually("three pings to the idle client", WAIT, || {
        assert!(!heartbeats.is_finished(), "the idle connection ended");
        (pings.load(Ordering::SeqCst) >= before + 3).then_some(())
    })
    .await;
    assert!(!heartbeats.is_finished(), "the idle connection ended");
    assert!(hook.named("big").len() < 60, "the busy session waits");
    // SIGTERM: the process ends within the grace plus a few seconds and says what is missing.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &emu.pid().to_string()])
        .status();
    let grace = Duration::from_secs(1 + 10);
    eventually("sio-emu ends after SIGTERM", grace, || {
        (!emu.alive()).then_some(())
    })
    .await;
    let _ = resume_tx.send(());
    let (header, rest) = reader.join().unwrap();
    let written = header.lines().count() + rest.matches('\n').count();
    let log = emu.log.lock().unwrap().join("\n");
    let message = emu
        .events()
        .into_iter()
        .filter_map(|v| v["message"].as_str().map(str::to_owned))
        .find(|m| m.contains("could not be written to"))
        .unwrap_or_else(|| panic!("no message naming the lost lines; log:\n{log}"));
    let number = |after: &str| -> u64 {
        let tail = message.split(after).nth(1).unwrap_or("");
        let digits: String = tail
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap_or_else(|_| panic!("{message}"))
    };
    let lost: String = message
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    assert!(lost.parse::<u64>().unwrap() > 0, "{message}");
    // Positive control: the file stops exactly where the message says, and what reached it
    // is the session (the header, then the busy client's frames).
    assert_eq!(number("after line") as usize, written, "{message}");
    assert!(header.contains("\"type\":\"header\""), "{header}");
    assert!(rest.contains("\"hub\":\"a\""));
    drop(sender);
    let _ = std::fs::remove_dir_all(&dir);
}
