// End-to-end: a webhook answers a user event with several Engine.IO packets in one body, and the
// real socket.io-client receives each of them, over long-polling only and over WebSocket only.
//
// The service documents that answer as a payload, not a single packet (MicrosoftDocs/azure-docs,
// articles/azure-web-pubsub/socket-io-serverless-protocol.md, "Message Event", Response: "The
// data in body is directly sent to corresponding client. Usually it's used for ack message.",
// body `UserResponsePayload (Engine.IO serialized payload)`). An Engine.IO payload joins packets
// with the record separator \x1e, so `43/chat,<id>["ok"]\x1e42/chat,["extra",1]` is an ack and
// an event; each must reach the client as a packet of its own (docs/protocol.md §5.4).
//
// Run: cargo build && npm ci --prefix tests/e2e && node --test tests/e2e/multi_packet_reply.test.mjs

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { mintToken, startWithWebhook, tick, waitUntil, withTimeout } from "./harness.mjs";

const HUB = "chat";
const PATH = `/clients/socketio/hubs/${HUB}`;
const WAIT = 5_000;
const RS = "\x1e";

const MODES = [
  { name: "polling only", transports: ["polling"] },
  { name: "WebSocket only", transports: ["websocket"] },
];

/**
 * The webhook's answers: `multi` gets its ack and an `extra` event in one body; `broken` the
 * same with a packet that is not an Engine.IO packet between them. Other events get the
 * harness's default ack.
 */
function reply(record, packet) {
  if (!packet || packet.id === undefined) return undefined;
  const [, n] = packet.data;
  const ack = `43/chat,${packet.id}["ok",${n}]`;
  const extra = `42/chat,["extra",${n}]`;
  if (record.event === "multi") return { body: [ack, extra].join(RS) };
  if (record.event === "broken") return { body: [ack, "hello", extra].join(RS) };
  return undefined;
}

async function setup(t, mode) {
  const { webhook, emu, endpoint } = await startWithWebhook(t, { webhook: { reply } });
  const token = mintToken({ hub: HUB, user: "alice", endpoint });
  const socket = io(`${endpoint}/chat`, {
    path: PATH,
    query: { access_token: token },
    transports: mode.transports,
    reconnection: false,
    forceNew: true,
    timeout: WAIT,
  });
  t.after(() => socket.disconnect());
  const seen = { extras: [], disconnects: [] };
  socket.on("extra", (n) => seen.extras.push({ n, at: tick() }));
  socket.on("disconnect", (reason) => seen.disconnects.push(reason));
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }),
    WAIT,
    "/chat to connect",
  );
  return { emu, socket, seen };
}

/** Emits `event` with `n` and resolves with the ack's arguments and the tick it arrived at. */
function emitAcked(socket, event, n) {
  return withTimeout(
    new Promise((resolve) => socket.emit(event, n, (...args) => resolve({ args, at: tick() }))),
    WAIT,
    `the ack of \`${event}\``,
  );
}

/** The connection still carries a round trip through the webhook (the harness's default ack). */
async function assertStillConnected(socket, seen) {
  const after = await withTimeout(socket.emitWithAck("hello", 9), WAIT, "the ack of a later `hello`");
  assert.equal(after, "ack");
  assert.ok(socket.connected, "the client is still connected");
  assert.deepEqual(seen.disconnects, []);
}

for (const mode of MODES) {
  describe(`a reply of several packets, ${mode.name}`, () => {
    test("the ack and the extra event both arrive, in order, and the client stays connected", async (t) => {
      const { socket, seen } = await setup(t, mode);
      assert.equal(socket.io.engine.transport.name, mode.transports[0]);
      const ack = await emitAcked(socket, "multi", 1);
      assert.deepEqual(ack.args, ["ok", 1]);
      await waitUntil(() => seen.extras.length >= 1, {
        what: "the `extra` event",
        describe: () => JSON.stringify(seen),
      });
      assert.deepEqual(seen.extras.map((e) => e.n), [1]);
      assert.ok(ack.at < seen.extras[0].at, "the ack comes first, as in the body");
      await assertStillConnected(socket, seen);
      assert.deepEqual(seen.extras.map((e) => e.n), [1], "nothing else arrived");
    });

    test("an invalid middle packet is dropped with a warning and a finding; the others go", async (t) => {
      const { emu, socket, seen } = await setup(t, mode);
      const ack = await emitAcked(socket, "broken", 2);
      assert.deepEqual(ack.args, ["ok", 2]);
      await waitUntil(() => seen.extras.length >= 1, {
        what: "the `extra` event after the dropped packet",
        describe: () => JSON.stringify(seen),
      });
      assert.deepEqual(seen.extras.map((e) => e.n), [2]);
      assert.ok(ack.at < seen.extras[0].at, "the ack comes first, as in the body");
      const warning = await waitUntil(
        () => emu.log.find((l) => l.type === "warning" && /packet 2 of the 3/.test(l.message)),
        { what: "the warning about packet 2", describe: () => JSON.stringify(emu.log.slice(-10)) },
      );
      assert.match(warning.message, /`broken`.*not forwarded.*not an Engine\.IO packet/);
      const finding = await waitUntil(
        () => emu.log.find((l) => l.type === "lint" && l.rule === "reply-not-packet"),
        { what: "the reply-not-packet finding", describe: () => JSON.stringify(emu.log.slice(-10)) },
      );
      assert.match(finding.message, /packet 2 of the 3/);
      await assertStillConnected(socket, seen);
    });
  });
}
