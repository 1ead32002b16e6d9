"""sio-emu from a pytest suite: the `sio_emu` fixture starts the emulator on a free port for
the test (options from the `sio_emu` marker) and stops it afterwards. `builtin:echo` plays the
handler here; point `webhook` at yours (e.g. "http://localhost:7071/runtime/webhooks/socketio").

    pip install sio-emu "python-socketio[client]" pytest
    pytest
"""

import pytest
import socketio


@pytest.mark.sio_emu(hubs=["chat"], webhook="builtin:echo")
def test_the_handler_acks_an_event(sio_emu):
    client = socketio.Client()
    token = sio_emu.token(hub="chat", user_id="alice")
    client.connect(
        f"{sio_emu.endpoint}?access_token={token}",
        namespaces=["/chat"],
        socketio_path=sio_emu.client_path("chat"),
        transports=["websocket"],
        wait_timeout=5,
    )
    try:
        assert client.call("say", "hello", namespace="/chat", timeout=5) == "hello"
    finally:
        client.disconnect()
