//! Allocations per acknowledged event on the serving thread.
//!
//! Runs the real serve path in-process: the library's service (`Running::start`, as `sio-emu
//! serve` starts it) on its single-thread runtime, on a thread of its own; N raw WebSocket
//! clients (tokio-tungstenite, on another thread) each emitting a 64-byte event with an ack id
//! and waiting for its ack; a loopback HTTP webhook (hyper, on a third thread) that answers each
//! event with the ack packet, as the Node harness's `webhook.js --reply sio-ack` does. The
//! global allocator counts per thread (`allocation-counter`), and only the serving thread is
//! measured, only over the measured window: allocations and bytes allocated on it divided by
//! the acks the clients received in that window.
//!
//! ```sh
//! cargo bench --bench alloc                                # both settings, 50 clients, 5 s
//! cargo bench --bench alloc -- --clients 500 --seconds 10
//! cargo bench --bench alloc -- --only ring-off --json out.jsonl
//! ```
//!
//! Each setting gets a fresh service: `default` is `serve --quiet` (the inspector's ring on, at
//! its default size), `ring-off` is `serve --quiet --inspector-buffer 0`. The counts hardly
//! depend on timing, unlike CPU figures, but a busier machine batches more events per wake-up,
//! which can move them a little.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sio_emu::cli::running::Running;
use sio_emu::cli::{Cli, Command};
use sio_emu::traffic::ring::Ring;
use sio_emu::traffic::{Format, Traffic};
use tokio_tungstenite::tungstenite::Message;

/// The settings measured, by name: extra `serve` flags beside the common ones.
const SETTINGS: [(&str, &[&str]); 2] = [
    ("default", &["--quiet"]),
    ("ring-off", &["--quiet", "--inspector-buffer", "0"]),
];

#[derive(Parser, Debug)]
#[command(about = "Allocations per ack on sio-emu's serving thread")]
struct Args {
    /// Raw WebSocket clients, each with one event in flight.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Payload text bytes of each event.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measure only this setting (`default` or `ring-off`).
    #[arg(long)]
    only: Option<String>,
    /// Append one JSON line per setting to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one setting measured.
#[derive(Debug)]
struct Measured {
    setting: &'static str,
    flags: String,
    acks: u64,
    seconds: f64,
    allocations: u64,
    bytes: u64,
    /// Allocations still live at the end of the window minus at its start (growth).
    net_live: i64,
}

fn main() {
    let mut args = Args::parse();
    // `cargo test --all-targets` runs this without arguments (`cargo bench` passes `--bench`):
    // a short run then checks that the bench still works, without taking the time of one.
    let smoke = !args.bench && std::env::args().count() == 1;
    if smoke {
        (args.clients, args.seconds, args.warmup) = (5, 0.3, 0.2);
    }
    let hook = Webhook::start();
    let mut results = Vec::new();
    for (name, flags) in SETTINGS {
        if args.only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let m = measure(&args, name, flags, hook.port);
        eprintln!(
            "{name:>8} ({}): {} clients, {} acks in {:.1} s ({:.0}/s): {:.1} allocations and {:.0} bytes allocated per ack on the serving thread (net live allocations {:+})",
            m.flags,
            args.clients,
            m.acks,
            m.seconds,
            m.acks as f64 / m.seconds,
            m.allocations as f64 / m.acks.max(1) as f64,
            m.bytes as f64 / m.acks.max(1) as f64,
            m.net_live
        );
        assert!(!smoke || m.acks > 0, "no ack came back in the short run");
        results.push(m);
    }
    println!(
        "| setting | serve flags | clients | acks | allocations per ack | bytes allocated per ack |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for m in &results {
        println!(
            "| {} | `{}` | {} | {} | {:.1} | {:.0} |",
            m.setting,
            m.flags,
            args.clients,
            m.acks,
            m.allocations as f64 / m.acks.max(1) as f64,
            m.bytes as f64 / m.acks.max(1) as f64
        );
    }
    if let Some(path) = &args.json {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the --json file");
        for m in &results {
            let line = serde_json::json!({
                "bench": "alloc",
                "setting": m.setting,
                "flags": m.flags,
                "clients": args.clients,
                "size": args.size,
                "acks": m.acks,
                "seconds": m.seconds,
                "allocations": m.allocations,
                "bytes": m.bytes,
                "allocationsPerAck": m.allocations as f64 / m.acks.max(1) as f64,
                "bytesPerAck": m.bytes as f64 / m.acks.max(1) as f64,
                "netLive": m.net_live,
            });
            writeln!(file, "{line}").expect("write the --json file");
        }
    }
}

/// One setting: a fresh service, the clients connected, `warmup` seconds of load, then the
/// serving thread's allocations over `seconds`.
fn measure(args: &Args, setting: &'static str, flags: &[&str], hook_port: u16) -> Measured {
    let webhook = format!("http://127.0.0.1:{hook_port}/api/events");
    let mut argv = vec![
        "sio-emu",
        "serve",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--hub",
        "bench",
        "--anonymous",
        "--no-preflight",
        "--webhook",
        &webhook,
    ];
    argv.extend_from_slice(flags);
    let Command::Serve(command) = Cli::parse_from(&argv).command else {
        unreachable!("the argv names serve");
    };
    let serve = command.args;
    let config = serve.to_config().expect("bench settings resolve");
    // As `ServeArgs::traffic`, with the live log into a sink instead of stdout.
    let ring = (serve.inspector_buffer > 0).then(|| Ring::new(serve.inspector_buffer));
    let traffic = Traffic::live(
        Format::Pretty,
        serve.quiet,
        Box::new(std::io::sink()),
        None,
        ring,
    )
    .expect("live log");

    let acks = Arc::new(AtomicU64::new(0));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (warm_tx, warm_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let counted = acks.clone();
    let server = std::thread::Builder::new()
        .name("sio-emu-serve".into())
        .spawn(move || {
            let runtime = sio_emu::cli::serve::runtime().expect("runtime");
            let running = runtime
                .block_on(Running::start(config, traffic))
                .expect("service starts");
            port_tx.send(running.port).expect("main thread waits");
            let _ = runtime.block_on(warm_rx);
            let before = counted.load(Ordering::SeqCst);
            let started = Instant::now();
            // Only this thread, only this window.
            let info = allocation_counter::measure(|| {
                let _ = runtime.block_on(stop_rx);
            });
            let seconds = started.elapsed().as_secs_f64();
            let acks = counted.load(Ordering::SeqCst) - before;
            runtime.block_on(running.shutdown());
            (info, acks, seconds)
        })
        .expect("spawn the serving thread");
    let port: u16 = port_rx.recv().expect("the service reports its port");

    let stop = Arc::new(AtomicBool::new(false));
    let load = Load::start(args, port, acks, stop.clone());
    std::thread::sleep(Duration::from_secs_f64(args.warmup));
    let _ = warm_tx.send(());
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    let _ = stop_tx.send(());
    stop.store(true, Ordering::SeqCst);
    let (info, acks, seconds) = server.join().expect("serving thread");
    load.join();
    Measured {
        setting,
        flags: flags.join(" "),
        acks,
        seconds,
        allocations: info.count_total,
        bytes: info.bytes_total,
        net_live: info.count_current,
    }
}

/// The clients' thread.
struct Load {
    thread: std::thread::JoinHandle<()>,
}

impl Load {
    /// Connects every client (returns once all are in) and starts their loops.
    fn start(args: &Args, port: u16, acks: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Load {
        let url =
            format!("ws://127.0.0.1:{port}/clients/socketio/hubs/bench/?EIO=4&transport=websocket");
        let (clients, size) = (args.clients, args.size);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("clients".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("client runtime");
                runtime.block_on(async move {
                    let mut sockets = Vec::with_capacity(clients);
                    for _ in 0..clients {
                        sockets.push(connect(&url).await);
                    }
                    let _ = ready_tx.send(());
                    let payload = "x".repeat(size);
                    let mut tasks = Vec::new();
                    for ws in sockets {
                        let (acks, stop, payload) = (acks.clone(), stop.clone(), payload.clone());
                        tasks.push(tokio::spawn(emit_loop(ws, payload, acks, stop)));
                    }
                    for task in tasks {
                        let _ = task.await;
                    }
                });
            })
            .expect("spawn the clients' thread");
        ready_rx.recv().expect("clients connect");
        Load { thread }
    }

    fn join(self) {
        let _ = self.thread.join();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Engine.IO open, Socket.IO CONNECT to `/`, its `40{"sid":…}`.
async fn connect(url: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connects");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with('0') => break,
            Some(Ok(_)) => {}
            other => panic!("no Engine.IO open: {other:?}"),
        }
    }
    ws.send(Message::text("40")).await.expect("send CONNECT");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with("40") => return ws,
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                ws.send(Message::text("3")).await.expect("pong");
            }
            other => panic!("no Socket.IO CONNECT answer: {other:?}"),
        }
    }
}

/// Closed loop: one event with an ack id, wait for its ack, count it, next.
async fn emit_loop(mut ws: Ws, payload: String, acks: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mut id: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let frame = format!("42{id}[\"message\",\"{payload}\"]");
        if ws.send(Message::text(frame)).await.is_err() {
            return;
        }
        let ack = format!("43{id}[");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with(&ack) => break,
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    if ws.send(Message::text("3")).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
        acks.fetch_add(1, Ordering::Relaxed);
        id += 1;
    }
    let _ = ws.close(None).await;
}

/// The loopback webhook: answers `4` + `2<id>["message",…args]` with `4` + `3<id>[…args]`.
struct Webhook {
    port: u16,
}

impl Webhook {
    fn start() -> Webhook {
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("webhook runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("webhook binds");
                    port_tx
                        .send(listener.local_addr().expect("address").port())
                        .expect("main thread waits");
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service_fn(answer))
                                .await;
                        });
                    }
                });
            })
            .expect("spawn the webhook thread");
        Webhook {
            port: port_rx.recv().expect("the webhook reports its port"),
        }
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let text = std::str::from_utf8(&body).unwrap_or("");
    let response = match ack_for(text) {
        Some(ack) => Response::builder()
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(ack))),
        None => Response::builder()
            .status(204)
            .body(Full::new(Bytes::new())),
    };
    Ok(response.expect("a valid response"))
}

/// `42<id>["message",args…]` (with the Engine.IO `4` in front) → `43<id>[args…]`, the same
/// framing; `None` without an ack id.
fn ack_for(text: &str) -> Option<String> {
    let packet = text.strip_prefix('4')?.strip_prefix('2')?;
    let digits = packet.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (id, rest) = packet.split_at(digits);
    let args = rest.strip_prefix("[\"message\",")?;
    Some(format!("43{id}[{args}"))
}
