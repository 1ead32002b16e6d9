"""End-to-end: the real python-socketio client against the real `sio-emu serve` binary.

Each test starts its own webhook (a stdlib `http.server` on a thread, 127.0.0.1, port 0) and its
own `sio-emu serve --port 0 --format json --color never --webhook ...`, and stops both by pid /
shutdown when it ends.

Run:
    cargo build
    python3 -m venv tests/e2e/.venv
    tests/e2e/.venv/bin/pip install -r tests/e2e/requirements.txt
    tests/e2e/.venv/bin/python -m pytest tests/e2e -q

The binary is $SIO_EMU_BIN, or <repo>/target/debug/sio-emu.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import socketio

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SIO_EMU_BIN", REPO / "target" / "debug" / "sio-emu"))
DEV_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
HUB = "chat"
SOCKETIO_PATH = f"/clients/socketio/hubs/{HUB}"
USER = "alice"
WAIT = 5.0

PACKET = re.compile(r"^4(\d)(?:(/[^,]*),)?(\d*)(.*)$", re.S)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("SIO_EMU_ACCESS_KEY", "SIO_EMU_SECONDARY_KEY", "WebPubSubConnectionString"):
        env.pop(name, None)
    return env


def wait_until(predicate, what: str, timeout: float = WAIT, describe=None):
    """Polls `predicate` until truthy (returned) or fails with a message naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"\n  seen: {describe()}" if describe else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{seen}")
        time.sleep(0.01)


def mint_token(endpoint: str, *, hub: str = HUB, user: str | None = USER, extra: list[str] = ()) -> str:
    if not BIN.exists():
        pytest.fail(f"sio-emu binary not found at {BIN}; run `cargo build` or set SIO_EMU_BIN")
    args = [str(BIN), "token", "--hub", hub, "--endpoint", endpoint, *extra]
    if user:
        args += ["--user", user]
    r = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def claims(jwt: str) -> dict:
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def signature(connection_id: str) -> str:
    digest = hmac.new(DEV_KEY.encode(), connection_id.encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# --------------------------------------------------------------------------------------------
# The webhook


class Webhook:
    """Records every request; OPTIONS → `WebHook-Allowed-Origin: *`; refuses connects to
    `/random` with 401 `Invalid namespace`; acks user events carrying an ack id with
    `43[/nsp,]<id>["ack", ...args]` (text/plain)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                record = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
                with webhook.lock:
                    webhook.requests.append(record)
                return record

            def _answer(self, status: int, body: str = "", content_type: str | None = None, extra=()):
                data = body.encode()
                self.send_response(status)
                for name, value in extra:
                    self.send_header(name, value)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_OPTIONS(self):
                self._record()
                self._answer(200, extra=[("WebHook-Allowed-Origin", "*")])

            do_GET = do_OPTIONS

            def do_POST(self):
                r = self._record()
                ce_type = r["headers"].get("ce-type", "")
                if ce_type == "azure.webpubsub.sys.connect":
                    if r["headers"].get("ce-namespace") == "/random":
                        self._answer(401, "Invalid namespace", "text/plain")
                    else:
                        self._answer(200)
                elif ce_type.startswith("azure.webpubsub.user."):
                    m = PACKET.match(r["body"])
                    if m and m.group(3):
                        nsp, ack_id, data = m.group(2) or "/", m.group(3), json.loads(m.group(4))
                        prefix = "" if nsp == "/" else f"{nsp},"
                        ack = f"43{prefix}{ack_id}{json.dumps(['ack', *data[1:]], separators=(',', ':'))}"
                        self._answer(200, ack, "text/plain")
                    else:
                        self._answer(204)
                else:
                    self._answer(200)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/{{event}}"

    def events(self, name: str, **headers) -> list[dict]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r["method"] == "POST"
                and r["headers"].get("ce-eventname") == name
                and all(r["headers"].get(k.replace("_", "-")) == v for k, v in headers.items())
            ]

    def wait_for(self, name: str, count: int = 1, **headers) -> list[dict]:
        return wait_until(
            lambda: len(self.events(name, **headers)) >= count and self.events(name, **headers),
            f"{count} `{name}` webhook request(s)",
            describe=lambda: [f"{r['method']} {r['path']}" for r in self.requests],
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------------------
# The emulator


class Emulator:
    """`sio-emu serve --port 0 --format json --color never ...`; a thread drains stdout (the
    NDJSON traffic log) so the pipe never fills."""

    def __init__(self, args: list[str]) -> None:
        if not BIN.exists():
            pytest.fail(f"sio-emu binary not found at {BIN}; run `cargo build` or set SIO_EMU_BIN")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--port", "0", "--format", "json", "--color", "never", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        self.log: list[dict] = []
        self.ready: dict | None = None
        self._ready = threading.Event()
        self.stderr = ""
        self._drains = [
            threading.Thread(target=self._drain_stdout, daemon=True),
            threading.Thread(target=self._drain_stderr, daemon=True),
        ]
        for drain in self._drains:
            drain.start()
        if not self._ready.wait(15) or self.ready is None:
            self.stop()
            pytest.fail(f"sio-emu serve did not become ready: {self.stderr}")

    def _drain_stdout(self) -> None:
        for line in self.proc.stdout:
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = {"raw": line}
            if self.ready is None and parsed.get("type") == "ready":
                self.ready = parsed
                self._ready.set()
            else:
                self.log.append(parsed)
        self._ready.set()

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr += line

    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.ready['port']}"

    def stop(self) -> int:
        """SIGTERM (graceful: pending `disconnected` deliveries are flushed), then wait."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # The process has exited, but its last lines may still be in the pipes: read them all
        # before a test looks at `log` or `stderr`.
        for drain in self._drains:
            drain.join(timeout=15)
        return self.proc.returncode


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def emu(webhook):
    # Depends on `webhook`, so it is torn down first: its shutdown deliveries still get through.
    e = Emulator(["--webhook", webhook.template])
    yield e
    e.stop()


@pytest.fixture
def client():
    clients = []

    def make(**kwargs) -> socketio.Client:
        c = socketio.Client(reconnection=False, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.disconnect()
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass


def connect(sio: socketio.Client, emu: Emulator, token: str | None, namespaces, transports):
    query = f"?access_token={token}" if token is not None else ""
    sio.connect(
        f"{emu.endpoint}{query}",
        namespaces=namespaces,
        transports=transports,
        socketio_path=SOCKETIO_PATH,
        wait_timeout=WAIT,
    )


TRANSPORTS = [pytest.param(["websocket"], id="websocket"), pytest.param(["polling"], id="polling")]


# --------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_call_gets_the_webhook_ack_and_disconnect_sends_one_disconnected(webhook, emu, client, transports):
    token = mint_token(emu.endpoint)
    assert claims(token)["aud"] == f"{emu.endpoint}{SOCKETIO_PATH}"
    sio = client()
    connect(sio, emu, token, ["/chat"], transports)
    assert sio.transport() == transports[0]
    connection_id = sio.eio.sid

    [connect_hook] = webhook.events("connect")
    assert connect_hook["headers"]["ce-namespace"] == "/chat"
    assert connect_hook["headers"]["ce-userid"] == USER
    assert connect_hook["headers"]["ce-connectionid"] == connection_id
    assert connect_hook["headers"]["ce-signature"] == signature(connection_id)
    body = json.loads(connect_hook["body"])
    assert body["claims"]["sub"] == [USER]
    assert "access_token" not in body["query"]
    webhook.wait_for("connected")

    data = {"text": "hi", "n": [1, 2]}
    reply = sio.call("hello", data, namespace="/chat", timeout=WAIT)
    # python-socketio returns a tuple when the ack carries several arguments.
    assert reply == ("ack", data)
    assert sio.call("hello", "once more", namespace="/chat", timeout=WAIT) == ("ack", "once more")

    hellos = webhook.events("hello")
    assert len(hellos) == 2
    m = re.fullmatch(r'42/chat,(\d+)\["hello",(.*)\]', hellos[0]["body"])
    assert m, hellos[0]["body"]
    assert json.loads(m.group(2)) == data
    for h in hellos:
        assert h["headers"]["ce-eventname"] == "hello"
        assert h["headers"]["ce-namespace"] == "/chat"
        assert h["headers"]["ce-userid"] == USER
        assert h["headers"]["ce-type"] == "azure.webpubsub.user.message"
        assert h["headers"]["content-type"].startswith("text/plain")
        assert h["path"] == "/api/hello"

    socket_id = webhook.events("connected")[0]["headers"]["ce-socketid"]
    sio.disconnect()
    [gone] = webhook.wait_for("disconnected")
    assert json.loads(gone["body"]) == {"reason": ""}
    assert gone["headers"]["ce-socketid"] == socket_id
    # Graceful shutdown waits for pending deliveries; after it, count.
    assert emu.stop() == 0, emu.stderr
    assert len(webhook.events("disconnected")) == 1, "exactly one disconnected webhook"


def test_refused_namespace_reports_the_webhook_message(webhook, emu, client):
    token = mint_token(emu.endpoint)
    sio = client()
    errors = []
    sio.on("connect_error", lambda data: errors.append(data), namespace="/random")
    with pytest.raises(socketio.exceptions.ConnectionError, match="/random"):
        connect(sio, emu, token, ["/random"], ["websocket"])
    assert errors == [{"message": "Invalid namespace"}]
    assert len(webhook.events("connect", ce_namespace="/random")) == 1
    emu.stop()
    assert webhook.events("connected") == []
    assert webhook.events("disconnected") == []


def test_one_connection_two_namespaces(webhook, emu, client):
    """Two namespaces share one Engine.IO connection (same ce-connectionid, distinct socket ids)."""
    token = mint_token(emu.endpoint)
    sio = client()
    connect(sio, emu, token, ["/chat", "/other"], ["websocket"])
    assert sio.call("hello", 1, namespace="/chat", timeout=WAIT) == ("ack", 1)
    assert sio.call("hello", 2, namespace="/other", timeout=WAIT) == ("ack", 2)
    bodies = sorted(h["body"] for h in webhook.events("hello"))
    assert re.fullmatch(r'42/chat,\d+\["hello",1\]', bodies[0]), bodies
    assert re.fullmatch(r'42/other,\d+\["hello",2\]', bodies[1]), bodies
    connects = webhook.wait_for("connected", count=2)
    assert {c["headers"]["ce-connectionid"] for c in connects} == {sio.eio.sid}
    assert len({c["headers"]["ce-socketid"] for c in connects}) == 2
    sio.disconnect()
    webhook.wait_for("disconnected", count=2)
    emu.stop()
    gone = webhook.events("disconnected")
    assert sorted(g["headers"]["ce-namespace"] for g in gone) == ["/chat", "/other"]
    assert all(json.loads(g["body"]) == {"reason": ""} for g in gone)


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize(
    "case",
    ["missing", "malformed", "expired", "other hub"],
)
def test_bad_token_fails_the_handshake(webhook, emu, client, transports, case):
    token = {
        "missing": None,
        "malformed": "not-a-jwt",
        "expired": lambda: mint_token(emu.endpoint, extra=["--issued-at", "2024-01-01T00:00:00Z"]),
        "other hub": lambda: mint_token(emu.endpoint, hub="other"),
    }[case]
    token = token() if callable(token) else token
    sio = client()
    errors = []
    sio.on("connect_error", lambda data: errors.append(data), namespace="/chat")
    with pytest.raises(socketio.exceptions.ConnectionError) as info:
        connect(sio, emu, token, ["/chat"], transports)
    if transports == ["polling"]:
        # python-engineio names the status and hands the JSON body to connect_error.
        assert "401" in str(info.value)
        assert errors and errors[0]["code"] == "Unauthorized", errors
        check = {"missing": "missing", "malformed": "malformed", "expired": "exp", "other hub": "aud"}[case]
        assert errors[0]["message"].startswith(f"{check} check failed"), errors
    else:
        # websocket-client's refused upgrade surfaces only as a generic connection error.
        assert str(info.value) == "Connection error"
    emu.stop()
    assert webhook.requests == [], "a refused handshake must not reach the webhook"
    assert [entry for entry in emu.log if entry.get("type") == "handshake" and entry.get("refused")]
