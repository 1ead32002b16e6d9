// sio-emu from a node:test suite: start the emulator on a free port, connect socket.io-client
// with a token from emu.token(), check the handler's ack, stop. `builtin:echo` plays the handler
// here; point `webhook` at yours (e.g. "http://localhost:7071/runtime/webhooks/socketio").
//
//   npm install --save-dev sio-emu socket.io-client
//   node --test
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { start } from "sio-emu";

let emu;

before(async () => {
  emu = await start({ hubs: ["chat"], webhook: "builtin:echo" });
});

after(async () => {
  await emu?.stop();
});

test("the handler acks an event", async () => {
  const socket = io(`${emu.endpoint}/chat`, {
    path: emu.clientPath("chat"),
    query: { access_token: emu.token({ hub: "chat", userId: "alice" }) },
    transports: ["websocket"],
  });
  try {
    const reply = await socket.timeout(5000).emitWithAck("say", "hello");
    assert.equal(reply, "hello");
  } finally {
    socket.disconnect();
  }
});
