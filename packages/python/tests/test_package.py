"""The wheel as a user gets it: run from a fresh venv that installed the built wheel
(./packages/test.sh does that). Covers the `sio-emu` console script (exit codes, signals),
start() / stop() (a taken port, a bad config, no process left behind, none orphaned when the
test process goes away) and the pytest plugin (the fixture, the marker, the session fixture)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

import sio_emu


def gone(pid: int) -> bool:
    """Is `pid` gone (no such process, or a zombie nobody reaped yet)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 20
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


def default_signals() -> None:
    """A signal this test process ignores (SIGHUP under `nohup`) is not ignored by serve."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def spawn_serve(*args: str) -> "tuple[subprocess.Popen, dict]":
    process = subprocess.Popen(
        ["sio-emu", "serve", "--port", "0", "--format", "json", "--color", "never", *args],
        stdout=subprocess.PIPE, text=True, preexec_fn=default_signals)
    return process, json.loads(process.stdout.readline())


def test_the_console_script_runs_the_bundled_binary():
    script = shutil.which("sio-emu")
    assert script is not None and Path(script).parent == Path(sys.executable).parent
    run = subprocess.run(["sio-emu", "--version"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("sio-emu ")
    assert Path(sio_emu.binary_path()).is_relative_to(Path(sio_emu.__file__).parent)


def test_the_console_script_exits_with_the_binarys_code():
    assert subprocess.run(["sio-emu", "token", "verify", "not-a-jwt"], capture_output=True).returncode == 1
    usage = subprocess.run(["sio-emu", "serve", "--no-such-flag"], capture_output=True, text=True)
    assert usage.returncode == 2
    assert usage.stderr.startswith("sio-emu: ")


def test_sigterm_reaches_serve_which_shuts_down_gracefully():
    process, ready = spawn_serve("--webhook", "builtin:echo")
    assert ready["type"] == "ready"
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read()
    assert process.wait(30) == 0
    assert any(json.loads(line)["type"] == "shuttingDown" for line in rest.splitlines()), rest


def test_a_signal_that_kills_the_binary_kills_the_command_the_same_way():
    process, _ = spawn_serve()
    process.send_signal(signal.SIGHUP)
    try:
        assert process.wait(30) == -signal.SIGHUP
    finally:
        process.kill()
        process.stdout.read()


def test_sio_emu_binary_overrides_the_binary(tmp_path):
    fake = tmp_path / "fake-sio-emu"
    fake.write_text('#!/bin/sh\necho "fake $*"\nexit 7\n')
    fake.chmod(0o755)
    run = subprocess.run(["sio-emu", "serve", "--port", "0"], capture_output=True, text=True,
                         env={**os.environ, "SIO_EMU_BINARY": str(fake)})
    assert (run.returncode, run.stdout) == (7, "fake serve --port 0\n")


def test_start_returns_the_details_and_stop_leaves_no_process():
    emu = sio_emu.start(hubs=["chat"], anonymous=True)
    try:
        assert emu.endpoint == f"http://localhost:{emu.port}"
        assert emu.connection_string.startswith(f"Endpoint=http://localhost:{emu.port};AccessKey=")
        assert emu.inspector == f"{emu.endpoint}/_emu/"
        assert emu.hubs == ["chat"] and emu.ready["anonymous"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{emu.port}/api/health") as health:
            assert health.status == 200
        token = emu.token(hub="chat", user_id="alice", groups=["g1"], minutes=5)
        check = subprocess.run(["sio-emu", "token", "verify", token, "--hub", "chat",
                                "--connection-string", emu.connection_string],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert '"sub": "alice"' in check.stdout
    finally:
        emu.stop()
    assert gone(emu.pid)
    emu.stop()  # a second stop() is harmless


def test_start_is_a_context_manager():
    with sio_emu.start() as emu:
        assert not gone(emu.pid)
    assert gone(emu.pid)


def test_start_on_a_taken_port_raises_with_serves_error_line():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(sio_emu.ServeError) as raised:
            sio_emu.start(port=port)
    message = str(raised.value)
    assert message.startswith(f"sio-emu: cannot listen on localhost:{port}: "), message
    assert "in use" in message.lower()
    assert "--port 0" in raised.value.hint
    assert raised.value.returncode == 2


def test_start_with_a_bad_config_raises_with_serves_error_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is [not toml\n")
    with pytest.raises(sio_emu.ServeError, match=r"^sio-emu: invalid configuration "):
        sio_emu.start(config=bad)


def test_stop_raises_when_serve_did_not_exit_cleanly():
    emu = sio_emu.start()
    os.kill(emu.pid, signal.SIGKILL)
    with pytest.raises(sio_emu.ServeError, match="was killed by signal 9"):
        emu.stop()


@pytest.mark.parametrize("ending", ["", "os.kill(os.getpid(), signal.SIGKILL)"],
                         ids=["returns", "sigkill"])
def test_serve_goes_with_the_process_that_started_it(ending):
    script = f"import os, signal, sio_emu\nemu = sio_emu.start()\nprint(emu.pid, flush=True)\n{ending}\n"
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pid = int(runner.stdout.readline())
    runner.wait(30)
    wait_gone(pid)


def test_the_fixture_and_the_marker(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import pytest, urllib.request

        @pytest.mark.sio_emu(hubs=["chat"], webhook="builtin:echo", anonymous=True)
        def test_marked(sio_emu):
            assert sio_emu.hubs == ["chat"]
            assert sio_emu.ready["anonymous"] is True
            assert sio_emu.ready["webhook"].startswith("http://127.0.0.1:")
            open("marked", "w").write(f"{sio_emu.pid}\\n")
            with urllib.request.urlopen(f"http://127.0.0.1:{sio_emu.port}/api/health") as r:
                assert r.status == 200

        def test_plain(sio_emu):
            assert sio_emu.hubs == [] and sio_emu.ready["anonymous"] is False
            open("pids", "a").write(f"{sio_emu.pid}\\n")

        def test_shared_one(sio_emu_session):
            assert sio_emu_session.hubs == ["shared"]
            open("session", "a").write(f"{sio_emu_session.pid}\\n")

        def test_shared_two(sio_emu_session):
            open("session", "a").write(f"{sio_emu_session.pid}\\n")
    """))
    pytester.makeconftest(textwrap.dedent("""
        import pytest

        @pytest.fixture(scope="session")
        def sio_emu_session_options():
            return {"hubs": ["shared"]}
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    marked_pid = int((pytester.path / "marked").read_text())
    plain_pid = int((pytester.path / "pids").read_text())
    session_pids = set(map(int, (pytester.path / "session").read_text().split()))
    assert len(session_pids) == 1
    for pid in (marked_pid, plain_pid, *session_pids):
        assert gone(pid)
    assert marked_pid != plain_pid


def test_the_marker_is_registered(pytester):
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.sio_emu(**options)*"])
