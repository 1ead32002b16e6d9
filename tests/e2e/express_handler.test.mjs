// End-to-end: the official event handler middleware `@azure/web-pubsub-express`, mounted in an
// express app, as the webhook of the real `sio-emu serve` binary, with a real socket.io-client.
//
// Signature: @azure/web-pubsub-express 1.0.x never validates `ce-signature` (it only exposes it as
// `req.context.signature`; it takes no connection string or key), so these tests check the
// signature themselves: HMAC-SHA256(dev key, connectionId), docs/protocol.md §6.
//
// allowedEndpoints: express answers the preflight with `WebHook-Allowed-Origin: <host>` where
// host = `new URL(endpoint).host`, i.e. WITH the port (`localhost:<port>`), while sio-emu sends
// `WebHook-Request-Origin: localhost` (no port, docs/protocol.md §14 decision 16, so Azure Functions finds its
// key); sio-emu accepts the port form. Both forms are tested.
//
// Run: cargo build && (cd tests/e2e && npm install) && (cd tests/e2e && node --test)

import { test } from "node:test";
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { createHmac } from "node:crypto";
import express from "express";
import { WebPubSubEventHandler } from "@azure/web-pubsub-express";
import { io } from "socket.io-client";
import { DEV_KEY, mintToken, startEmu, waitUntil, withTimeout } from "./harness.mjs";

const HUB = "chat";
const PATH = `/clients/socketio/hubs/${HUB}`;
const USER = "alice";
const WAIT = 5_000;

const signature = (connectionId) =>
  `sha256=${createHmac("sha256", DEV_KEY).update(connectionId).digest("hex")}`;

/**
 * An express app on 127.0.0.1:0 whose event handler is created once sio-emu's port is known
 * (allowedEndpoints names it), then sio-emu pointed at `<app>/eventhandler`. Everything the
 * handler callbacks see is recorded in `seen`; every HTTP exchange in `http`.
 */
async function setup(t, { allowedEndpoints } = {}) {
  const seen = { connect: [], connected: [], user: [], disconnected: [] };
  const http = [];
  let handler;
  const app = express();
  app.use((req, res, next) => {
    const record = { method: req.method, url: req.url, headers: req.headers };
    http.push(record);
    res.on("finish", () => {
      record.status = res.statusCode;
      record.allowedOrigin = res.getHeader("WebHook-Allowed-Origin");
    });
    // The handler's ConnectRequest has no namespace (the library is for generic Web PubSub);
    // the Socket.IO namespace is only in the `ce-namespace` header, so pass it along.
    callHeaders.run(req.headers, next);
  });
  app.use((req, res, next) => handler.getMiddleware()(req, res, next));
  // Whatever the handler does not take is a 404 here, so a dispatch miss is visible.
  app.use((req, res) => res.status(404).type("text/plain").send("not handled by WebPubSubEventHandler"));

  const server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  let emu;
  t.after(async () => {
    await emu?.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const webhook = `http://127.0.0.1:${server.address().port}/eventhandler`;
  emu = await startEmu(["--webhook", webhook]);
  const endpoint = `http://localhost:${emu.ready.port}`;

  handler = new WebPubSubEventHandler(HUB, {
    path: "/eventhandler",
    allowedEndpoints: (allowedEndpoints ?? (() => ["http://localhost"]))(endpoint),
    handleConnect(req, res) {
      seen.connect.push(req);
      if (callHeaders.getStore()?.["ce-namespace"] === "/random") {
        res.fail(401, "Invalid namespace");
      } else {
        res.success();
      }
    },
    onConnected(req) {
      seen.connected.push(req);
    },
    handleUserEvent(req, res) {
      seen.user.push(req);
      const m = /^42\/chat,(\d+)\[/.exec(req.data);
      if (m) {
        res.success(`43/chat,${m[1]}["from express"]`, "text");
      } else {
        res.success(); // no ack id: 200 with an empty body, nothing is forwarded
      }
    },
    onDisconnected(req) {
      seen.disconnected.push(req);
    },
  });
  return { emu, endpoint, webhook, seen, http };
}

/** The raw headers of the webhook call being handled. */
const callHeaders = new AsyncLocalStorage();

function connectSocket(t, endpoint, nsp, token) {
  const socket = io(`${endpoint}${nsp}`, {
    path: PATH,
    query: { access_token: token },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: WAIT,
  });
  t.after(() => socket.disconnect());
  return socket;
}

function outcome(socket, what) {
  return withTimeout(
    new Promise((resolve) => {
      socket.once("connect", () => resolve({ connected: true }));
      socket.once("connect_error", (error) => resolve({ connected: false, error }));
    }),
    WAIT,
    what,
  );
}

test("express WebPubSubEventHandler: preflight, connect, connected, user event with ack, disconnected", async (t) => {
  const { emu, endpoint, seen, http } = await setup(t);
  const token = mintToken({ hub: HUB, user: USER, endpoint });
  const socket = connectSocket(t, endpoint, "/chat", token);
  const result = await outcome(socket, "/chat to connect through express");
  assert.ok(
    result.connected,
    `connect_error ${result.error?.message}; sio-emu log: ${JSON.stringify(emu.log.filter((l) => l.type === "webhook"))}`,
  );

  // The abuse-protection preflight went to the handler's path and was answered by express itself.
  const preflight = http.find((r) => r.method === "OPTIONS");
  assert.ok(preflight, "no OPTIONS preflight reached express");
  assert.equal(preflight.url, "/eventhandler");
  assert.equal(preflight.headers["webhook-request-origin"], "localhost");
  assert.equal(preflight.headers["ce-awpsversion"], "1.0");
  assert.equal(preflight.status, 200);
  assert.deepEqual([preflight.allowedOrigin].flat(), ["localhost"]);

  // connect: the parsed request the handler got.
  assert.equal(seen.connect.length, 1);
  const connect = seen.connect[0];
  const connectionId = socket.io.engine.id;
  assert.equal(connect.context.connectionId, connectionId);
  assert.equal(connect.context.hub, HUB);
  assert.equal(connect.context.userId, USER);
  assert.equal(connect.context.eventName, "connect");
  assert.equal(connect.context.origin, "localhost");
  assert.equal(connect.context.signature, signature(connectionId));
  assert.deepEqual(connect.claims.sub, [USER]);
  assert.deepEqual(connect.claims.aud, [`${endpoint}${PATH}`]);
  assert.deepEqual(connect.queries.transport, ["websocket"]);
  assert.deepEqual(connect.subprotocols, []);
  assert.deepEqual(connect.clientCertificates, []);

  await waitUntil(() => seen.connected.length === 1, { what: "onConnected" });
  assert.equal(seen.connected[0].context.connectionId, connectionId);
  assert.equal(seen.connected[0].context.eventName, "connected");

  // A user event with an ack: express answers the ack packet, the client's emitWithAck gets it.
  const reply = await withTimeout(socket.emitWithAck("hello", "world", { n: 1 }), WAIT, "the ack from express");
  assert.equal(reply, "from express");
  assert.equal(seen.user.length, 1);
  const user = seen.user[0];
  assert.equal(user.dataType, "text");
  assert.match(user.data, /^42\/chat,\d+\["hello","world",\{"n":1\}\]$/);
  assert.equal(user.context.eventName, "hello");
  assert.equal(user.context.userId, USER);
  assert.equal(user.context.connectionId, connectionId);
  assert.equal(user.context.signature, signature(connectionId));

  // An event without ack: express answers 200 with an empty body; nothing reaches the client.
  socket.emit("note", "no ack");
  await waitUntil(() => seen.user.length === 2, { what: "the second user event" });
  assert.equal(seen.user[1].data, '42/chat,["note","no ack"]');

  socket.disconnect();
  await waitUntil(() => seen.disconnected.length === 1, { what: "onDisconnected" });
  assert.equal(seen.disconnected[0].reason, "");
  assert.equal(seen.disconnected[0].context.connectionId, connectionId);
  await emu.stop();
  assert.equal(seen.disconnected.length, 1, "exactly one disconnected");
  // sio-emu saw every answer as a success.
  const failures = emu.log.filter((l) => l.type === "webhook" && !l.ok);
  assert.deepEqual(failures, []);
  assert.ok(
    emu.log.some((l) => l.type === "ackForwarded" && /\["from express"\]$/.test(l.packet)),
    "the ack was forwarded",
  );
  // Every POST was taken by the handler (no 404 from the fallback).
  assert.deepEqual(http.filter((r) => r.status === 404), []);
});

test("express WebPubSubEventHandler: res.fail(401, text) refuses the namespace with that message", async (t) => {
  const { emu, endpoint, seen } = await setup(t);
  const token = mintToken({ hub: HUB, user: USER, endpoint });
  // handleConnect reads the namespace from the call's ce-namespace header (AsyncLocalStorage).
  const socket = connectSocket(t, endpoint, "/random", token);
  const result = await outcome(socket, "/random to be refused");
  assert.equal(result.connected, false);
  assert.equal(result.error.message, "Invalid namespace");
  assert.equal(seen.connect.length, 1);
  await emu.stop();
  assert.equal(seen.connected.length, 0);
  assert.equal(seen.disconnected.length, 0);
});

test(
  "express WebPubSubEventHandler with allowedEndpoints = the emulator endpoint (with port) passes the preflight",
  async (t) => {
    const { emu, endpoint, http } = await setup(t, { allowedEndpoints: (ep) => [ep] });
    const token = mintToken({ hub: HUB, user: USER, endpoint });
    const socket = connectSocket(t, endpoint, "/chat", token);
    const result = await outcome(socket, "/chat to connect");
    const preflight = http.find((r) => r.method === "OPTIONS");
    assert.deepEqual([preflight?.allowedOrigin].flat(), [`localhost:${emu.ready.port}`]);
    assert.ok(
      result.connected,
      `connect_error "${result.error?.message}": ${
        emu.log.find((l) => l.type === "webhook" && !l.ok)?.detail ?? "(no failed webhook logged)"
      }`,
    );
  },
);
