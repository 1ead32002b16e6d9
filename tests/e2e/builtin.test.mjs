// End-to-end: the built-in handlers (`--webhook builtin:echo`, `--webhook builtin:chat`) with the
// real socket.io-client (v4) against the real `sio-emu serve` binary: the ack round trip, and the
// chat broadcast to the rest of the namespace (made by the handler through sio-emu's own REST API).
//
// Run: cargo build && (cd tests/e2e && npm install) && (cd tests/e2e && node --test)
// The binary is $SIO_EMU_BIN, or <repo>/target/debug/sio-emu.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { mintToken, startEmu, waitUntil, withTimeout } from "./harness.mjs";

const HUB = "hub";
const PATH = `/clients/socketio/hubs/${HUB}`;
const WAIT = 5_000;

/** Starts `sio-emu serve --webhook builtin:<name>`; stopped when the test ends. */
async function setup(t, name, args = []) {
  const emu = await startEmu(["--webhook", `builtin:${name}`, ...args]);
  t.after(() => emu.stop());
  return { emu, endpoint: `http://localhost:${emu.ready.port}` };
}

/** A connected socket.io-client socket on namespace `nsp`; closed when the test ends. */
async function connect(t, endpoint, nsp, { transports = ["websocket"], token } = {}) {
  const socket = io(`${endpoint}${nsp}`, {
    path: PATH,
    query: token === undefined ? {} : { access_token: token },
    transports,
    reconnection: false,
    forceNew: true,
    timeout: WAIT,
  });
  t.after(() => socket.disconnect());
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", (err) => reject(new Error(`${nsp}: connect_error ${err.message}`)));
    }),
    WAIT,
    `${nsp} to connect`,
  );
  return socket;
}

/** Emits with an ack callback and resolves with every ack argument. */
function emitWithAllAcks(socket, event, ...args) {
  return withTimeout(
    new Promise((resolve) => socket.emit(event, ...args, (...ack) => resolve(ack))),
    WAIT,
    `the ack for \`${event}\``,
  );
}

describe("builtin:echo", () => {
  for (const transports of [["websocket"], ["polling"]]) {
    test(`acks every event with its own arguments (${transports[0]})`, async (t) => {
      const { endpoint } = await setup(t, "echo");
      // Not anonymous: the client needs a token, as against the cloud.
      const token = mintToken({ hub: HUB, endpoint });
      const socket = await connect(t, endpoint, "/chat", { transports, token });
      const payload = { text: "hello", n: [1, 2.5, null], nested: { ok: true } };
      assert.deepEqual(await emitWithAllAcks(socket, "say", "x", 42, payload), ["x", 42, payload]);
      assert.deepEqual(await emitWithAllAcks(socket, "nothing"), []);
      const root = await connect(t, endpoint, "/", { transports, token });
      assert.deepEqual(await emitWithAllAcks(root, "ping", "pong"), ["pong"]);
    });
  }
});

describe("builtin:chat", () => {
  test("broadcasts each event to the rest of its namespace, and acks the sender", async (t) => {
    const { emu, endpoint } = await setup(t, "chat", ["--anonymous"]);
    const sender = await connect(t, endpoint, "/chat");
    const listener = await connect(t, endpoint, "/chat");
    const elsewhere = await connect(t, endpoint, "/");
    const received = { sender: [], listener: [], elsewhere: [] };
    sender.on("msg", (...args) => received.sender.push(args));
    listener.on("msg", (...args) => received.listener.push(args));
    elsewhere.on("msg", (...args) => received.elsewhere.push(args));

    const ack = await emitWithAllAcks(sender, "msg", "alice", "hi there");
    assert.deepEqual(ack, ["alice", "hi there"]);
    await waitUntil(() => received.listener.length === 1, {
      timeout: WAIT,
      what: "the broadcast at the other /chat socket",
      describe: () => JSON.stringify(received),
    });
    assert.deepEqual(received.listener[0], ["alice", "hi there"]);

    // Without an ack callback the others still get it.
    sender.emit("msg", "alice", "again");
    await waitUntil(() => received.listener.length === 2, {
      timeout: WAIT,
      what: "the second broadcast",
      describe: () => JSON.stringify(received),
    });
    assert.deepEqual(received.listener[1], ["alice", "again"]);

    // The sender never hears its own message; another namespace hears nothing. Positive
    // controls: a later broadcast that must reach each of them (the listener's to /chat, a
    // peer's to /). One connection gets its REST sends in order, so a stray copy of the
    // sender's messages would have arrived before the control.
    assert.deepEqual(await emitWithAllAcks(listener, "msg", "bob", "control"), ["bob", "control"]);
    const peer = await connect(t, endpoint, "/");
    assert.deepEqual(await emitWithAllAcks(peer, "msg", "carol", "control"), ["carol", "control"]);
    await waitUntil(() => received.sender.length > 0 && received.elsewhere.length > 0, {
      timeout: WAIT,
      what: "the control broadcasts at the sender and at the other namespace",
      describe: () => JSON.stringify(received),
    });
    assert.deepEqual(received.sender, [["bob", "control"]]);
    assert.deepEqual(received.elsewhere, [["carol", "control"]]);

    // The four broadcasts were real REST calls, visible in the live log.
    const rest = () => emu.log.filter((l) => l.type === "rest");
    await waitUntil(() => rest().length >= 4, {
      timeout: WAIT,
      what: "a rest log line per broadcast",
      describe: () => JSON.stringify(rest()),
    });
    assert.equal(rest().length, 4, JSON.stringify(rest()));
    assert.ok(rest().every((r) => r.status === 202 && r.matched === 1), JSON.stringify(rest()));
  });
});
