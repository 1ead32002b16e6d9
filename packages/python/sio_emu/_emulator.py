"""``start()``: runs ``sio-emu serve`` for a test, waits for its ``ready`` line and returns an
:class:`Emulator` with the endpoint, port, connection string, inspector URL, a token minter and
``stop()``."""

import json
import os
import queue
import subprocess
import sys
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional

from ._binary import binary_path

DEFAULT_READY_TIMEOUT = 30.0
#: How long ``stop()`` waits for the exit after SIGTERM (serve's shutdown grace is 10 s).
DEFAULT_STOP_TIMEOUT = 30.0
#: How much of serve's stderr is kept to explain a failed start or stop.
STDERR_TAIL_CHARS = 8192


class ServeError(RuntimeError):
    """``serve`` could not start, or did not stop cleanly. ``str(error)`` is its own error line."""

    def __init__(self, message: str, hint: Optional[str] = None, stderr: str = "",
                 returncode: Optional[int] = None):
        super().__init__(message)
        self.hint = hint
        self.stderr = stderr
        self.returncode = returncode


def _serve_error(stderr: str, fallback: str, returncode: Optional[int]) -> ServeError:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    error_line = next((l for l in lines if l.startswith("sio-emu:")), lines[0] if lines else fallback)
    hint = next((l[len("hint:"):].strip() for l in lines if l.startswith("hint:")), None)
    return ServeError(error_line, hint=hint, stderr=stderr, returncode=returncode)


def _describe(returncode: Optional[int]) -> str:
    if returncode is not None and returncode < 0:
        return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def serve_args(hubs: Iterable[str] = (), webhook: Optional[str] = None, anonymous: bool = False,
               port: int = 0, access_key: Optional[str] = None, config: Optional[str] = None,
               record: Optional[str] = None, args: Iterable[str] = ()) -> List[str]:
    """The ``serve`` command line for these options."""
    argv = ["serve", "--port", str(port), "--format", "json", "--color", "never",
            # The service stops when this process goes away, however it goes (stdin is a pipe).
            "--stop-on-stdin-close"]
    for hub in hubs:
        argv += ["--hub", hub]
    if webhook is not None:
        argv += ["--webhook", webhook]
    if anonymous:
        argv.append("--anonymous")
    if access_key is not None:
        argv += ["--access-key", access_key]
    if config is not None:
        argv += ["--config", os.fspath(config)]
    if record is not None:
        argv += ["--record", os.fspath(record)]
    argv += list(args)
    return argv


class Emulator:
    """A running ``sio-emu serve``; a context manager that stops it on exit."""

    def __init__(self, process: subprocess.Popen, binary: str, ready: Dict[str, Any],
                 stderr_tail: Callable[[], str]):
        self._process = process
        self._binary = binary
        self._stderr_tail = stderr_tail
        self._stopped = False
        #: The whole ready line.
        self.ready = ready
        #: ``http://localhost:<port>``: the Socket.IO URL (plus the namespace) and REST endpoint.
        self.endpoint: str = ready["endpoint"]
        self.port: int = ready["port"]
        #: ``Endpoint=…;AccessKey=…;Version=1.0;``, for the Azure SDKs and Functions.
        self.connection_string: str = ready["connectionString"]
        #: The web inspector's URL (``<endpoint>/_emu/``).
        self.inspector: str = ready["inspector"]
        self.hubs: List[str] = list(ready.get("hubs") or [])
        self.pid: int = process.pid

    @property
    def _default_hub(self) -> str:
        return self.hubs[0] if self.hubs else "hub"

    def client_path(self, hub: Optional[str] = None) -> str:
        """The Socket.IO client ``path`` of a hub: ``/clients/socketio/hubs/<hub>``."""
        return f"/clients/socketio/hubs/{hub or self._default_hub}"

    def token(self, hub: Optional[str] = None, user_id: Optional[str] = None,
              groups: Iterable[str] = (), roles: Iterable[str] = (), minutes: int = 60) -> str:
        """A client access token for this service, minted by ``sio-emu token``."""
        argv = [self._binary, "token", "--connection-string", self.connection_string,
                "--hub", hub or self._default_hub, "--expires-in", f"{minutes}m"]
        if user_id is not None:
            argv += ["--user", str(user_id)]
        for group in groups:
            argv += ["--group", group]
        for role in roles:
            argv += ["--role", role]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise _serve_error(done.stderr, "sio-emu token failed", done.returncode)
        return done.stdout.strip()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGTERM, then wait for the exit; raises :class:`ServeError` unless it exited 0."""
        if not self._stopped:
            self._stopped = True
            if self._process.poll() is None:
                self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                raise ServeError(f"sio-emu serve did not exit within {timeout} s of SIGTERM; killed")
            finally:
                if self._process.stdin:
                    self._process.stdin.close()
        code = self._process.returncode
        if code != 0:
            raise _serve_error(self._stderr_tail(), f"sio-emu serve {_describe(code)}", code)

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<sio_emu.Emulator {self.endpoint} pid={self.pid}>"


def start(hubs: Iterable[str] = (), webhook: Optional[str] = None, anonymous: bool = False,
          port: int = 0, access_key: Optional[str] = None, config: Optional[str] = None,
          record: Optional[str] = None, args: Iterable[str] = (),
          env: Optional[Dict[str, str]] = None,
          log: Optional[Callable[[Dict[str, Any]], None]] = None,
          ready_timeout: float = DEFAULT_READY_TIMEOUT) -> Emulator:
    """Starts ``sio-emu serve`` (on a free port unless ``port`` is given) and returns once it
    listens. Raises :class:`ServeError` with serve's own error line when it cannot start.

    ``log`` is called (on a reader thread) with every live-log line after the ready line."""
    binary = binary_path()
    argv = [binary, *serve_args(hubs, webhook, anonymous, port, access_key, config, record, args)]
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})}, text=True, encoding="utf-8", errors="replace")
    except OSError as error:
        raise ServeError(f"sio-emu: cannot run {binary}: {error.strerror}") from None
    stderr: List[str] = []
    ready_event = threading.Event()
    lock = threading.Lock()

    def stderr_tail() -> str:
        with lock:
            return "".join(stderr)[-STDERR_TAIL_CHARS:]

    def read_stderr() -> None:
        for chunk in process.stderr:
            with lock:
                stderr.append(chunk)
                del stderr[:-256]
            if ready_event.is_set():
                sys.stderr.write(chunk)

    lines: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()

    def read_stdout() -> None:
        seen_ready = False
        for line in process.stdout:
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = {"type": "text", "line": line.rstrip("\n")}
            if seen_ready:
                if log is not None:
                    log(parsed)
            elif parsed.get("type") == "ready":
                seen_ready = True
                ready_event.set()
                lines.put(parsed)
        lines.put(None)

    err_reader = threading.Thread(target=read_stderr, name="sio-emu stderr", daemon=True)
    err_reader.start()
    threading.Thread(target=read_stdout, name="sio-emu stdout", daemon=True).start()
    try:
        parsed = lines.get(timeout=ready_timeout)
        if parsed is None:
            process.wait()
            err_reader.join()
            raise _serve_error(
                stderr_tail(), f"sio-emu serve {_describe(process.returncode)} before it was ready",
                process.returncode)
        return Emulator(process, binary, parsed, stderr_tail)
    except queue.Empty:
        process.kill()
        process.wait()
        raise ServeError(f"sio-emu serve printed no ready line within {ready_timeout} s") from None
