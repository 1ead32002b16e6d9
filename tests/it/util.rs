//! Shared test harness: runs the real `sio-emu` binary on port 0 (reading its `--format json`
//! ready line), a real recording webhook server, and a minimal Engine.IO / Socket.IO client
//! over real WebSocket and long-polling connections on loopback. Everything started here is
//! stopped by pid or dropped with the test.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// The development key `serve` uses by default.
pub const KEY: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH";
/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often [`poll_until`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// The suite's one poll loop: asks `check` every few milliseconds until it gives a value, for at
/// most `limit`; `None` when it never did (the caller then says what it saw). `check` may await
/// (an HTTP request, say); [`poll_until`] is this loop for a check that does not.
pub async fn poll_until_async<T>(
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// [`poll_until_async`] for a check that does not await.
pub async fn poll_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    poll_until_async(limit, async || check()).await
}

/// [`poll_until_async`], failing the test with `what` when `check` gives nothing within `limit`.
pub async fn eventually_async<T>(
    what: &str,
    limit: Duration,
    check: impl AsyncFnMut() -> Option<T>,
) -> T {
    match poll_until_async(limit, check).await {
        Some(found) => found,
        None => panic!("{what}: not within {limit:?}"),
    }
}

/// [`eventually_async`] for a check that does not await.
pub async fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    eventually_async(what, limit, async || check()).await
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sio-emu")
}

// ---------------------------------------------------------------------------------------------
// The binary under test
// ---------------------------------------------------------------------------------------------

/// A running `sio-emu` process, the one runner behind [`Emu`], [`Watched`] and exec.rs's
/// `Exec`: a thread collects its stdout lines into `lines`, stderr is captured into `stderr` or
/// inherited, and dropping it kills and reaps the process.
pub struct Process {
    child: Option<Child>,
    /// Every stdout line (after the head that [`Process::start_after`] read).
    pub lines: Arc<Mutex<Vec<String>>>,
    /// Everything the process wrote to stderr, when it is captured.
    pub stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `sio-emu <args>` and collects every stdout line.
    pub fn start(args: &[&str], stdin: Stdio, capture_stderr: bool) -> Process {
        let (mut process, stdout) = Process::launch(args, stdin, capture_stderr);
        process.collect(stdout.lines());
        process
    }

    /// Starts `sio-emu <args>`, reads stdout lines until `head` makes something of one (the
    /// ready line, the banner's port), then collects the lines after it. `None` when stdout
    /// ended first.
    pub fn start_after<T>(
        args: &[&str],
        stdin: Stdio,
        capture_stderr: bool,
        head: impl FnMut(&str) -> Option<T>,
    ) -> (Process, Option<T>) {
        let (mut process, stdout) = Process::launch(args, stdin, capture_stderr);
        let mut lines = stdout.lines();
        let mut head = head;
        let found = lines.by_ref().map_while(Result::ok).find_map(|l| head(&l));
        process.collect(lines);
        (process, found)
    }

    fn launch(
        args: &[&str],
        stdin: Stdio,
        capture_stderr: bool,
    ) -> (Process, BufReader<std::process::ChildStdout>) {
        let stderr_to = if capture_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        };
        let mut child = Command::new(bin())
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(stderr_to)
            .spawn()
            .expect("start sio-emu");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = child.stderr.take().map(|pipe| {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut s = sink.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            })
        });
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let process = Process {
            child: Some(child),
            lines: Arc::new(Mutex::new(Vec::new())),
            stderr,
            stderr_reader,
        };
        (process, stdout)
    }

    fn collect(&mut self, lines: std::io::Lines<BufReader<std::process::ChildStdout>>) {
        let sink = self.lines.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The writing end of the process's stdin, when it was started with `Stdio::piped()`.
    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.as_mut()?.stdin.take()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().map(|s| s.is_none()).unwrap_or(false),
            None => false,
        }
    }

    /// Waits up to `limit` for the process to exit, and returns how; kills it and fails the
    /// test with `what` otherwise.
    pub async fn exited(&mut self, what: &str, limit: Duration) -> std::process::ExitStatus {
        let child = self
            .child
            .as_mut()
            .expect("the process was already waited for");
        match poll_until(limit, || child.try_wait().unwrap()).await {
            Some(status) => {
                self.child = None;
                status
            }
            None => panic!("{what}: not within {limit:?}"),
        }
    }

    /// Kills the process and returns all it wrote to stderr (read to the end).
    pub fn kill_and_read_stderr(&mut self) -> String {
        self.kill();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        self.stderr.lock().unwrap().clone()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `sio-emu serve`.
pub struct Emu {
    process: Process,
    pub port: u16,
    pub ready: Value,
    /// Every stdout line after the ready line.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Emu {
    /// Starts `serve --port 0 --format json --color never` plus `args`.
    pub fn start(args: &[&str]) -> Emu {
        Emu::spawn(args, Stdio::inherit())
    }

    /// Like [`Emu::start`], with stdin on a pipe whose writing end is returned.
    pub fn start_with_stdin(args: &[&str]) -> (Emu, std::process::ChildStdin) {
        let mut emu = Emu::spawn(args, Stdio::piped());
        let stdin = emu.process.take_stdin().unwrap();
        (emu, stdin)
    }

    fn spawn(args: &[&str], stdin: Stdio) -> Emu {
        let (process, first) =
            Process::start_after(&serve_json(args), stdin, false, |l| Some(l.to_owned()));
        Emu::ready(process, first.expect("sio-emu printed nothing"))
    }

    /// The emulator whose first stdout line was `first`, which must be its ready line.
    fn ready(process: Process, first: String) -> Emu {
        let ready: Value = serde_json::from_str(&first).expect("ready line is JSON");
        assert_eq!(ready["type"], "ready", "first line: {first}");
        let port = ready["port"].as_u64().unwrap() as u16;
        let log = process.lines.clone();
        Emu {
            process,
            port,
            ready,
            log,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Log lines parsed as JSON.
    pub fn events(&self) -> Vec<Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a log event satisfies `pred`.
    pub async fn wait_log(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_logs(what, 1, pred).await.remove(0)
    }

    /// Waits until `n` log events satisfy `pred`, and returns them.
    pub async fn wait_logs(
        &self,
        what: &str,
        n: usize,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let found = poll_until(WAIT, || {
            let found: Vec<Value> = self.events().into_iter().filter(|v| pred(v)).collect();
            (found.len() >= n).then_some(found)
        });
        found.await.unwrap_or_else(|| {
            panic!(
                "no log line for {what}; log:\n{}",
                self.log.lock().unwrap().join("\n")
            )
        })
    }

    /// Sends SIGTERM and waits for the exit code (without blocking the test's runtime, which
    /// may be serving the webhook).
    pub async fn terminate(&mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.exit_code("SIGTERM").await
    }

    /// Waits up to 30 s for the process to exit after `cause`, and returns its exit code.
    pub async fn exit_code(&mut self, cause: &str) -> i32 {
        let what = format!("sio-emu exits after {cause}");
        let status = self.process.exited(&what, Duration::from_secs(30)).await;
        status.code().unwrap_or(-1)
    }

    /// Mints a client token for `hub` with the `token` command.
    pub fn token(&self, hub: &str, user: Option<&str>) -> String {
        mint(
            &[
                "--hub",
                hub,
                "--endpoint",
                &format!("http://localhost:{}", self.port),
            ],
            user,
        )
    }
}

/// `serve --port 0 --format json --color never` plus `args`.
fn serve_json<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "serve", "--port", "0", "--format", "json", "--color", "never",
    ];
    all.extend_from_slice(args);
    all
}

/// Runs `sio-emu token` with `args` (and `--user`).
pub fn mint(args: &[&str], user: Option<&str>) -> String {
    let mut cmd = Command::new(bin());
    cmd.arg("token").args(args);
    if let Some(u) = user {
        cmd.args(["--user", u]);
    }
    let out = cmd.output().expect("run sio-emu token");
    assert!(
        out.status.success(),
        "token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

// ---------------------------------------------------------------------------------------------
// A recording webhook
// ---------------------------------------------------------------------------------------------

/// One request a test webhook ([`Webhook`] or [`RawHook`]) received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or("")
    }
    pub fn event(&self) -> &str {
        self.header("ce-eventName")
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// What the webhook answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::status(200, "")
    }
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A real HTTP server that records every request and answers with a programmable reply. It can
/// be killed: the listener and every open keep-alive connection close, so later calls are
/// refused.
pub struct Webhook {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The default reply: accept every connect, ack every event that carries an ack id with `["ok"]`.
pub fn echo_ack(r: &Recorded) -> Reply {
    if r.header("ce-type") == "azure.webpubsub.user.message" {
        if let Some(ack) = ack_for(&r.body, &serde_json::json!(["ok"])) {
            return Reply::status(200, &ack);
        }
        return Reply::status(204, "");
    }
    Reply::ok()
}

/// The ack packet for an event packet with an id (`42/ns,7[...]` → `43/ns,7<args>`).
pub fn ack_for(event_packet: &str, args: &Value) -> Option<String> {
    let rest = event_packet.strip_prefix("42")?;
    let (nsp, rest) = if rest.starts_with('/') {
        let (n, r) = rest.split_once(',')?;
        (format!("{n},"), r)
    } else {
        (String::new(), rest)
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    Some(format!("43{nsp}{digits}{args}"))
}

impl Webhook {
    /// On a free port, answering with [`echo_ack`].
    pub async fn start() -> Webhook {
        Webhook::with(echo_ack).await
    }

    /// On a free port, answering with `f`.
    pub async fn with(f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Webhook::serve(listener, f)
    }

    /// On a given port (e.g. one the emulator already failed to reach).
    pub async fn on_port(
        port: u16,
        f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Webhook {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        Webhook::serve(listener, f)
    }

    fn serve(
        listener: TcpListener,
        f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Webhook {
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let responder: Arc<Mutex<Responder>> = Arc::new(Mutex::new(Arc::new(f)));
        let stop = tokio_util::sync::CancellationToken::new();
        let (reqs, resp, stopped) = (requests.clone(), responder.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stopped.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let (reqs, resp, stopped) = (reqs.clone(), resp.clone(), stopped.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (reqs, resp) = (reqs.clone(), resp.clone());
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                record_and_answer(req, &reqs, &resp).await,
                            )
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = stopped.cancelled() => {}
                        _ = conn => {}
                    }
                });
            }
        });
        Webhook {
            addr,
            requests,
            stop,
        }
    }

    /// Closes the listener and every connection; later calls find nothing listening.
    pub fn kill(&self) {
        self.stop.cancel();
    }

    /// The `--webhook` template for this server.
    pub fn template(&self) -> String {
        format!("http://{}/api/{{hub}}/{{event}}", self.addr)
    }

    /// Event (POST) requests so far.
    pub fn events(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST")
            .cloned()
            .collect()
    }

    /// Events named `name` so far.
    pub fn named(&self, name: &str) -> Vec<Recorded> {
        self.events()
            .into_iter()
            .filter(|r| r.event() == name)
            .collect()
    }

    /// Waits up to `wait` until `n` events named `name` arrived, and returns them.
    pub async fn wait_for_within(&self, name: &str, n: usize, wait: Duration) -> Vec<Recorded> {
        let got = poll_until(wait, || Some(self.named(name)).filter(|got| got.len() >= n));
        got.await.unwrap_or_else(|| {
            panic!(
                "webhook got {} `{name}` event(s) within {wait:?}, expected {n}; all: {:?}",
                self.named(name).len(),
                self.events()
                    .iter()
                    .map(|r| r.event().to_owned())
                    .collect::<Vec<_>>()
            )
        })
    }

    /// Waits up to [`WAIT`] until `n` events named `name` arrived, and returns them.
    pub async fn wait_for(&self, name: &str, n: usize) -> Vec<Recorded> {
        self.wait_for_within(name, n, WAIT).await
    }
}

/// Records one request and answers it: the abuse-protection preflight (OPTIONS or GET) with
/// `WebHook-Allowed-Origin: *`, every other request with the responder's reply.
async fn record_and_answer(
    req: Request<Incoming>,
    reqs: &Mutex<Vec<Recorded>>,
    resp: &Mutex<Responder>,
) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let rec = Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let reply = if rec.method == "OPTIONS" || rec.method == "GET" {
        None
    } else {
        let f = resp.lock().unwrap().clone();
        Some(f(&rec))
    };
    reqs.lock().unwrap().push(rec);
    let mut response = Response::builder();
    let body = match reply {
        None => {
            response = response.header("WebHook-Allowed-Origin", "*");
            String::new()
        }
        Some(reply) => {
            tokio::time::sleep(reply.delay).await;
            response = response
                .status(reply.status)
                .header("content-type", reply.content_type);
            reply.body
        }
    };
    response.body(Full::new(Bytes::from(body))).unwrap()
}

/// Starts a webhook and an emulator pointed at it (anonymous clients allowed unless `args`
/// says otherwise).
pub async fn pair(args: &[&str]) -> (Webhook, Emu) {
    let hook = Webhook::start().await;
    let template = hook.template();
    let mut all = vec!["--webhook", template.as_str()];
    all.extend_from_slice(args);
    let emu = Emu::start(&all);
    (hook, emu)
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP
// ---------------------------------------------------------------------------------------------

/// A response: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl HttpReply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> HttpReply {
    let uri: hyper::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", authority);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = tokio::time::timeout(WAIT, sender.send_request(req))
        .await
        .expect("HTTP request timed out")
        .unwrap();
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal Engine.IO client
// ---------------------------------------------------------------------------------------------

/// The client path for a hub with a query.
pub fn client_url(base: &str, hub: &str, query: &str) -> String {
    format!("{base}/clients/socketio/hubs/{hub}/?EIO=4&{query}")
}

/// A raw WebSocket from `tokio_tungstenite::connect_async`.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame on a raw WebSocket, answering pings.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                ws.send(Message::Text("3".into())).await.unwrap();
            }
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(_))) => {}
            other => panic!("no frame within {WAIT:?}: {other:?}"),
        }
    }
}

/// An Engine.IO session over WebSocket.
pub struct WsClient {
    ws: Ws,
    /// The open packet's JSON.
    pub open: Value,
    pub sid: String,
}

/// Why a WebSocket handshake failed: the HTTP status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl WsClient {
    /// Opens a WebSocket session (`transport=websocket`) with extra query parameters.
    pub async fn connect(emu: &Emu, hub: &str, query: &str) -> Result<WsClient, Refused> {
        let url = client_url(&emu.base(), hub, &format!("transport=websocket&{query}"))
            .replacen("http://", "ws://", 1);
        let (ws, _) = match tokio_tungstenite::connect_async(url).await {
            Ok(pair) => pair,
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                return Err(Refused {
                    status: res.status().as_u16(),
                    body: res
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                });
            }
            Err(e) => panic!("websocket connect failed: {e}"),
        };
        let mut client = WsClient {
            ws,
            open: Value::Null,
            sid: String::new(),
        };
        let open = client.recv().await;
        let json = open.strip_prefix('0').expect("open packet first");
        client.open = serde_json::from_str(json).unwrap();
        client.sid = client.open["sid"].as_str().unwrap().to_owned();
        Ok(client)
    }

    /// Upgrades an existing polling session.
    pub async fn upgrade(emu: &Emu, hub: &str, sid: &str) -> WsClient {
        let url = client_url(&emu.base(), hub, &format!("transport=websocket&sid={sid}"))
            .replacen("http://", "ws://", 1);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        WsClient {
            ws,
            open: Value::Null,
            sid: sid.to_owned(),
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .send(Message::Binary(Bytes::copy_from_slice(data)))
            .await
            .unwrap();
    }

    /// The next text packet, answering pings on the way.
    pub async fn recv(&mut self) -> String {
        loop {
            match self.next_raw(WAIT).await {
                Some(Message::Text(t)) if t.as_str() == "2" => self.send("3").await,
                Some(Message::Text(t)) => return t.to_string(),
                Some(Message::Close(_)) | None => panic!("connection closed while waiting"),
                Some(_) => {}
            }
        }
    }

    /// The next text packet without answering pings, or None when closed / nothing within `wait`.
    pub async fn next_raw(&mut self, wait: Duration) -> Option<Message> {
        match tokio::time::timeout(wait, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            _ => None,
        }
    }

    /// Waits until the server closes the connection (answering pings meanwhile).
    pub async fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "connection still open");
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => self.send("3").await,
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
                Ok(Some(Ok(_))) => {}
                Err(_) => panic!("connection still open"),
            }
        }
    }

    /// Asserts that nothing but pings arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => self.send("3").await,
                Ok(Some(Ok(m))) => panic!("unexpected packet {m:?}"),
                _ => return,
            }
        }
    }

    /// Joins a namespace (`40` / `40/ns,`) and returns the server's answer.
    pub async fn join(&mut self, nsp: &str) -> String {
        let prefix = if nsp == "/" {
            String::new()
        } else {
            format!("{nsp},")
        };
        self.send(&format!("40{prefix}")).await;
        self.recv().await
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Opens a polling session; returns the open JSON.
pub async fn poll_handshake(emu: &Emu, hub: &str, query: &str) -> (HttpReply, Value) {
    let reply = http(
        "GET",
        &client_url(&emu.base(), hub, &format!("transport=polling&{query}")),
        &[],
        "",
    )
    .await;
    let open = reply
        .body
        .strip_prefix('0')
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null);
    (reply, open)
}

/// A long-poll GET on a session.
pub async fn poll_get(emu: &Emu, hub: &str, sid: &str) -> HttpReply {
    http(
        "GET",
        &client_url(&emu.base(), hub, &format!("transport=polling&sid={sid}")),
        &[],
        "",
    )
    .await
}

/// A POST of packets on a session.
pub async fn poll_post(emu: &Emu, hub: &str, sid: &str, body: &str) -> HttpReply {
    http(
        "POST",
        &client_url(&emu.base(), hub, &format!("transport=polling&sid={sid}")),
        &[("content-type", "text/plain;charset=UTF-8")],
        body,
    )
    .await
}

/// Splits a polling payload into packets.
pub fn packets(payload: &str) -> Vec<&str> {
    payload.split('\x1e').collect()
}

// =============================================================================================
// Fault-injection helpers (used by tests/it/faults.rs)
//
// Everything below is self-contained: an emulator whose stderr is captured (to prove it never
// panicked), a recording webhook that can be killed outright (listener and every keep-alive
// connection), a raw TCP "webhook" that answers with garbage, and raw HTTP for bodies the
// hyper client would not send.
// =============================================================================================

/// A running `sio-emu serve` whose stderr is captured.
pub struct Watched {
    pub emu: Emu,
    pub stderr: Arc<Mutex<String>>,
}

impl std::ops::Deref for Watched {
    type Target = Emu;
    fn deref(&self) -> &Emu {
        &self.emu
    }
}

impl std::ops::DerefMut for Watched {
    fn deref_mut(&mut self) -> &mut Emu {
        &mut self.emu
    }
}

impl Watched {
    /// Like [`Emu::start`], with stderr captured instead of inherited.
    pub fn start(args: &[&str]) -> Watched {
        let (mut process, first) =
            Process::start_after(&serve_json(args), Stdio::inherit(), true, |l| {
                Some(l.to_owned())
            });
        let Some(first) = first else {
            let stderr = process.kill_and_read_stderr();
            panic!("sio-emu printed no ready line; stderr:\n{stderr}");
        };
        let stderr = process.stderr.clone();
        Watched {
            emu: Emu::ready(process, first),
            stderr,
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.emu.process.alive()
    }

    /// Fails unless the process never printed a panic to stderr.
    pub fn assert_no_panic(&self) {
        let err = self.stderr.lock().unwrap().clone();
        assert!(!err.contains("panicked"), "sio-emu panicked:\n{err}");
    }

    /// The process is alive, `GET /api/health` answers 200, and stderr shows no panic.
    pub async fn assert_healthy(&mut self) {
        self.assert_no_panic();
        assert!(
            self.alive(),
            "sio-emu exited; stderr:\n{}",
            self.stderr.lock().unwrap()
        );
        let health = http("GET", &format!("{}/api/health", self.base()), &[], "").await;
        assert_eq!(health.status, 200, "{health:?}");
        self.assert_no_panic();
    }

    /// VmRSS of the process in KiB (0 once it exited).
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS")
    }

    /// JSON log lines of `type`.
    pub fn lines_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|v| v["type"] == kind)
            .collect()
    }

    /// Waits up to `wait` for a log line satisfying `pred`.
    pub async fn wait_log_within(
        &self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let found = poll_until(wait, || self.events().into_iter().find(|v| pred(v)));
        found.await.unwrap_or_else(|| {
            panic!(
                "no log line for {what} within {wait:?}; last lines:\n{}",
                tail(&self.log.lock().unwrap(), 40)
            )
        })
    }
}

/// The last `n` lines, joined.
pub fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, …); 0 when unreadable.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(&format!("{field}:")))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A free loopback port (bound, then released: nothing listens there afterwards).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Checks the "exactly one `disconnected` per accepted socket" rule against any recording of
/// webhook requests: waits (up to `wait`) until every socket in `accepted` has one, then asserts
/// that every accepted socket got exactly one distinct `disconnected` event (retries of one event
/// share its `ce-id`) and that no other socket got any. Returns the reason of each, in `accepted`
/// order. The caller first waits on a sentinel that arrives after any duplicate would have.
pub async fn assert_one_disconnected_each(
    events: impl Fn() -> Vec<Recorded>,
    accepted: &[String],
    wait: Duration,
) -> Vec<String> {
    let disconnected = || -> Vec<Recorded> {
        events()
            .into_iter()
            .filter(|r| r.event() == "disconnected")
            .collect()
    };
    let missing = || {
        let got = disconnected();
        let has = |id: &&String| got.iter().any(|r| r.header("ce-socketId") == id.as_str());
        accepted.iter().filter(|id| !has(id)).count()
    };
    if poll_until(wait, || (missing() == 0).then_some(()))
        .await
        .is_none()
    {
        panic!(
            "{} of {} accepted socket(s) got no `disconnected` within {wait:?}",
            missing(),
            accepted.len()
        );
    }
    let got = disconnected();
    let mut by_socket: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for r in &got {
        by_socket
            .entry(r.header("ce-socketId").to_owned())
            .or_default()
            .push((
                r.header("ce-id").to_owned(),
                r.json()["reason"].as_str().unwrap_or("?").to_owned(),
            ));
    }
    for (socket, seen) in &by_socket {
        assert!(
            accepted.contains(socket),
            "`disconnected` for socket {socket}, which was never accepted: {seen:?}"
        );
        let mut ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            1,
            "socket {socket} got {} distinct `disconnected` events: {seen:?}",
            ids.len()
        );
    }
    accepted
        .iter()
        .map(|id| by_socket[id][0].1.clone())
        .collect()
}

/// What [`RawHook`] does with one request.
#[derive(Debug, Clone)]
pub enum RawAnswer {
    /// `200 OK`, empty body, then close.
    Ok,
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// Close without a word.
    Close,
    /// Reset the connection (zero linger).
    Reset,
    /// A valid 200 whose body is `n` bytes.
    Huge(usize),
}

/// A "webhook" on raw TCP that misbehaves on demand: it reads one request (head and
/// Content-Length body) per connection, records it, and answers as its closure decides.
pub struct RawHook {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawHook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawHook {
    pub async fn with(f: impl Fn(&Recorded) -> RawAnswer + Send + Sync + 'static) -> RawHook {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let f = Arc::new(f);
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (reqs, f) = (reqs.clone(), f.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or("").split(' ');
                    let method = first.next().unwrap_or("").to_owned();
                    let path = first.next().unwrap_or("").to_owned();
                    let headers: HashMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
                    let request = Recorded {
                        method,
                        path,
                        headers,
                        body,
                    };
                    let answer = if request.method == "OPTIONS" {
                        RawAnswer::Bytes(
                            b"HTTP/1.1 200 OK\r\nWebHook-Allowed-Origin: *\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
                        )
                    } else {
                        f(&request)
                    };
                    reqs.lock().unwrap().push(request);
                    match answer {
                        RawAnswer::Ok => {
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                            let _ = stream.shutdown().await;
                        }
                        RawAnswer::Bytes(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.shutdown().await;
                        }
                        RawAnswer::Close => {
                            let _ = stream.shutdown().await;
                        }
                        RawAnswer::Reset => {
                            let _ = stream.set_zero_linger();
                            drop(stream);
                        }
                        RawAnswer::Huge(n) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n43"
                            );
                            let _ = stream.write_all(head.as_bytes()).await;
                            let block = vec![b'1'; 64 * 1024];
                            let mut left = n.saturating_sub(2);
                            while left > 0 {
                                let take = left.min(block.len());
                                if stream.write_all(&block[..take]).await.is_err() {
                                    break;
                                }
                                left -= take;
                            }
                            let _ = stream.shutdown().await;
                        }
                    }
                });
            }
        });
        RawHook {
            addr,
            requests,
            task,
        }
    }

    pub fn template(&self) -> String {
        format!("http://{}/api/{{hub}}/{{event}}", self.addr)
    }

    /// POSTed events so far.
    pub fn events(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST")
            .map(Recorded::clone)
            .collect()
    }

    pub fn named(&self, name: &str) -> Vec<Recorded> {
        self.events()
            .into_iter()
            .filter(|r| r.event() == name)
            .collect()
    }
}

/// Writes `request` (raw bytes, sent in pieces of `piece` bytes; write errors ignored because
/// the server may answer and close early) on a fresh connection and returns the status code and
/// body of the answer, or `None` when the server closed without a complete status line.
pub async fn raw_exchange(addr: &str, request: &[u8], piece: usize) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    for part in request.chunks(piece.max(1)) {
        if stream.write_all(part).await.is_err() {
            break;
        }
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&chunk[..n]);
                // Enough once the head and a Content-Length body are in.
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())
                                .flatten()
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            Err(_) => panic!("no answer within {WAIT:?}"),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

// =============================================================================================
// Engine.IO edge helpers (used by tests/it/engineio_edges.rs)
// =============================================================================================

/// How a WebSocket connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEnd {
    /// The server sent a close frame with this code (`None`: a frame without a code, 1005).
    CloseFrame(Option<u16>),
    /// The connection ended without a close frame (what browsers report as 1006).
    Dropped,
}

impl WsClient {
    /// Sends any message, even one a well-behaved client never sends (e.g. a raw text frame
    /// carrying invalid UTF-8); the server may already have closed, so the result is returned.
    pub async fn send_message(
        &mut self,
        message: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(message).await
    }

    /// Reads (answering nothing) until the connection ends, and says how it ended.
    pub async fn ended(&mut self) -> WsEnd {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "connection still open");
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return WsEnd::CloseFrame(frame.map(|f| u16::from(f.code)));
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) | Ok(None) => return WsEnd::Dropped,
                Err(_) => panic!("connection still open"),
            }
        }
    }
}

/// Samples VmRSS of `pid` every 50 ms until dropped; `max()` is the peak seen.
pub struct RssSampler {
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let p = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                p.fetch_max(
                    proc_status_kib(pid, "VmRSS"),
                    std::sync::atomic::Ordering::Relaxed,
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        RssSampler { peak, task }
    }
    pub fn max_kib(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// =============================================================================================
// The pretty live log
// =============================================================================================

impl Emu {
    /// Starts `serve --port 0 --format pretty --color never` plus `args`; the port comes from
    /// the banner's `listening` line, and every stdout line after it lands in `log`.
    pub fn start_pretty(args: &[&str]) -> Emu {
        let mut all = vec![
            "serve", "--port", "0", "--format", "pretty", "--color", "never",
        ];
        all.extend_from_slice(args);
        let (process, port) = Process::start_after(&all, Stdio::inherit(), false, |line| {
            let url = line.trim().strip_prefix("listening")?.trim();
            let port = url.split_whitespace().next()?.rsplit(':').next()?;
            port.trim_end_matches('/').parse::<u16>().ok()
        });
        let log = process.lines.clone();
        Emu {
            process,
            port: port.expect("a `listening` line with the port"),
            ready: Value::Null,
            log,
        }
    }
}
