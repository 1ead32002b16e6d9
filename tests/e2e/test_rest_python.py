"""End-to-end: the official Python REST SDK (azure-messaging-webpubsubservice) drives the real
`sio-emu serve` binary while python-socketio clients watch the effect.

Covers `send_to_group` with `content_type="text/plain"` to a socket's own room, a room and a
namespace with a filter, `:addToGroups` / `:removeFromGroups` through `send_request` (the SDK has
no method for them), existence checks, and `close_connection` with a reason as seen by the
`disconnected` webhook. The SDK signs every call itself, so this also proves the emulator accepts
its Bearer tokens and URL encoding.

Run: cargo build && pip install -r tests/e2e/requirements.txt && pytest tests/e2e
The binary is $SIO_EMU_BIN, or <repo>/target/debug/sio-emu. The emulator runs on its default
host `localhost` (127.0.0.1 and ::1), because the connection string names `localhost`.
"""

import base64
import json
import os
import queue
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import socketio
from azure.core.rest import HttpRequest
from azure.messaging.webpubsubservice import WebPubSubServiceClient

HUB = "chat"
PATH = f"/clients/socketio/hubs/{HUB}"
WAIT = 5.0
# python-engineio runs each message handler in a thread of its own, so a handler started just
# before another may finish just after it: how long `expect_nothing` lets such a handler finish.
SETTLE = 0.05
BIN = os.environ.get("SIO_EMU_BIN") or str(
    Path(__file__).resolve().parents[2] / "target" / "debug" / "sio-emu"
)


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def ns_group(ns):
    return f"0~{b64url(ns)}~"


def room_group(ns, room):
    return f"0~{b64url(ns)}~{b64url(room)}"


class Webhook:
    """A recording event handler: 200 to every event, the abuse-protection preflight answered."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _preflight(self):
                self.send_response(200)
                self.send_header("WebHook-Allowed-Origin", "*")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_OPTIONS = _preflight
            do_GET = _preflight

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                with hook.lock:
                    hook.events.append((self.headers.get("ce-eventName"), dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, name):
        with self.lock:
            return [e for e in self.events if e[0] == name]

    def wait_for(self, name, count=1):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            got = self.named(name)
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"webhook got {len(self.named(name))} `{name}`, expected {count}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def env():
    """A webhook, `sio-emu serve` on port 0 pointed at it, and an SDK client for hub `chat`."""
    assert Path(BIN).exists(), f"sio-emu binary not found at {BIN}; run cargo build or set SIO_EMU_BIN"
    hook = Webhook()
    clean = {k: v for k, v in os.environ.items() if k not in ("SIO_EMU_ACCESS_KEY", "WebPubSubConnectionString")}
    proc = subprocess.Popen(
        [BIN, "serve", "--port", "0", "--format", "json", "--color", "never",
         "--webhook", f"http://127.0.0.1:{hook.port}/{{event}}"],
        stdout=subprocess.PIPE, env=clean, text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["type"] == "ready", ready
        # Keep draining the traffic log so the pipe never fills.
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        client = WebPubSubServiceClient.from_connection_string(ready["connectionString"], hub=HUB)
        clients = []
        try:
            yield {"hook": hook, "ready": ready, "client": client,
                   "endpoint": f"http://localhost:{ready['port']}", "clients": clients}
        finally:
            for sock in clients:
                sock.disconnect()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        hook.close()


class Sock:
    """A python-socketio client on one namespace that records every event it receives."""

    def __init__(self, env, ns, user=None):
        self.ns = ns
        self.received = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record, namespace=ns)
        token = env["client"].get_client_access_token(client_protocol="SocketIO", user_id=user)["token"]
        self.sio.connect(
            f"{env['endpoint']}?access_token={token}",
            socketio_path=PATH,
            transports=["websocket"],
            namespaces=[ns],
            wait_timeout=WAIT,
        )
        env["clients"].append(self)
        self.sid = self.sio.get_sid(namespace=ns)
        self.connection_id = self.sio.eio.sid

    def _record(self, event, *args):
        self.received.put([event, *args])

    def room(self):
        return room_group(self.ns, self.sid)

    def expect(self, *event):
        got = self.received.get(timeout=WAIT)
        assert got == list(event)

    def expect_nothing(self, client):
        """Nothing arrived. The positive control: a `control` event sent now by REST to this
        socket's own room must be the next event it receives, since REST sends reach one
        connection in order and anything sent to it earlier would come first."""
        prefix = "" if self.ns == "/" else f"{self.ns},"
        client.send_to_group(self.room(), f'42{prefix}["control"]', content_type="text/plain")
        self.expect("control")
        time.sleep(SETTLE)
        assert self.received.empty(), self.received.get_nowait()

    def disconnect(self):
        if self.sio.connected:
            self.sio.disconnect()


def test_send_to_a_socket_room_reaches_only_that_socket(env):
    a = Sock(env, "/ns")
    b = Sock(env, "/ns")
    env["client"].send_to_group(a.room(), '42/ns,["ev","x"]', content_type="text/plain")
    a.expect("ev", "x")
    b.expect_nothing(env["client"])


def test_add_and_remove_through_send_request(env):
    client = env["client"]
    a = Sock(env, "/ns")
    b = Sock(env, "/ns")
    room = room_group("/ns", "room")
    body = {"groups": [room], "filter": f"'{a.room()}' in groups"}
    add = client.send_request(
        HttpRequest("POST", f"/api/hubs/{HUB}/:addToGroups?api-version=2024-01-01", json=body))
    assert add.status_code == 200, add.text()
    assert client.group_exists(room)
    client.send_to_group(room, '42/ns,["room","1"]', content_type="text/plain")
    a.expect("room", "1")
    b.expect_nothing(client)

    remove = client.send_request(
        HttpRequest("POST", f"/api/hubs/{HUB}/:removeFromGroups?api-version=2024-01-01", json=body))
    assert remove.status_code == 200, remove.text()
    assert not client.group_exists(room)
    client.send_to_group(room, '42/ns,["room","2"]', content_type="text/plain")
    a.expect_nothing(client)


def test_namespace_broadcast_except_one_socket(env):
    a = Sock(env, "/ns")
    b = Sock(env, "/ns")
    other = Sock(env, "/other")
    env["client"].send_to_group(
        ns_group("/ns"), '42/ns,["news"]', content_type="text/plain",
        filter=f"not ('{b.room()}' in groups)")
    a.expect("news")
    b.expect_nothing(env["client"])
    other.expect_nothing(env["client"])


def test_users_and_exists(env):
    client = env["client"]
    alice = Sock(env, "/", user="alice")
    assert client.user_exists("alice")
    assert not client.user_exists("bob")
    assert client.connection_exists(alice.connection_id)
    client.add_user_to_group("vip", "alice")
    client.send_to_group("vip", '42["vip"]', content_type="text/plain")
    alice.expect("vip")
    client.send_to_user("alice", '42["direct"]', content_type="text/plain")
    alice.expect("direct")


def test_close_connection_with_a_reason(env):
    client = env["client"]
    a = Sock(env, "/ns")
    env["hook"].wait_for("connected")
    client.close_connection(a.connection_id, reason="bye")
    _, _, body = env["hook"].wait_for("disconnected")[0]
    assert json.loads(body)["reason"] == "closed by REST API: bye"
    assert not client.connection_exists(a.connection_id)
