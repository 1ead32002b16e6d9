// End-to-end: the official REST SDK (@azure/web-pubsub, WebPubSubServiceClient) drives the real
// `sio-emu serve` binary while real socket.io-client sockets watch the effect: sends to a
// socket's own room, to a room, to a namespace except one socket, DISCONNECT as a command, closes
// with a reason (seen in the `disconnected` webhook), and a client connecting with a token from
// the REST `:generateToken` route. The SDK signs every call itself, so these tests also prove the
// emulator accepts its Bearer tokens, URL encoding and status codes.
//
// Run: cargo build && (cd tests/e2e && npm install) && (cd tests/e2e && node --test)
// The binary is $SIO_EMU_BIN, or <repo>/target/debug/sio-emu.
//
// `serve` runs on its default host `localhost` (127.0.0.1 and ::1): the connection string names
// `http://localhost:<port>`, and Node may resolve localhost to ::1.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { io } from "socket.io-client";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { BIN, startWithWebhook, waitUntil, withTimeout } from "./harness.mjs";

const HUB = "chat";
const PATH = `/clients/socketio/hubs/${HUB}`;
const WAIT = 5_000;

const b64url = (s) => Buffer.from(s, "utf8").toString("base64url");
const nsGroup = (ns) => `0~${b64url(ns)}~`;
const roomGroup = (ns, room) => `0~${b64url(ns)}~${b64url(room)}`;
const TEXT = { contentType: "text/plain" };

/** A webhook, an emulator pointed at it and an SDK client; all stopped when the test ends. */
async function setup(t) {
  const { webhook, emu, endpoint } = await startWithWebhook(t);
  const client = new WebPubSubServiceClient(emu.ready.connectionString, HUB, {
    allowInsecureConnection: true,
  });
  return { webhook, emu, endpoint, client };
}

/**
 * A connected socket.io-client socket on `ns`, with every event it receives recorded in
 * `socket.received` as [event, ...args]. Closed when the test ends.
 */
async function connectSocket(t, endpoint, client, ns, { userId, token } = {}) {
  const accessToken =
    token ?? (await client.getClientAccessToken({ clientProtocol: "socketio", userId })).token;
  const socket = io(`${endpoint}${ns}`, {
    path: PATH,
    query: { access_token: accessToken },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: WAIT,
  });
  t.after(() => socket.disconnect());
  socket.received = [];
  socket.onAny((event, ...args) => socket.received.push([event, ...args]));
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
    }),
    WAIT,
    `socket on ${ns} to connect`,
  );
  return socket;
}

/** The Web PubSub connection id of a socket: its Engine.IO session id. */
const connectionId = (socket) => socket.io.engine.id;

/** Waits until `socket` received `event` with `args`. */
async function received(socket, event, ...args) {
  const want = JSON.stringify([event, ...args]);
  await waitUntil(() => socket.received.some((r) => JSON.stringify(r) === want), {
    timeout: WAIT,
    what: `socket ${socket.id} to receive ${want}`,
    describe: () => JSON.stringify(socket.received),
  });
}

let controls = 0;

/**
 * The positive control before asserting that something did not arrive: a `control` event sent
 * now by REST to the socket's own room must arrive. REST sends reach one connection in order, so
 * anything sent to the socket earlier has arrived by then.
 */
async function settle(client, socket) {
  const n = ++controls;
  const prefix = socket.nsp === "/" ? "" : `${socket.nsp},`;
  await client.group(roomGroup(socket.nsp, socket.id)).sendToAll(`42${prefix}["control",${n}]`, TEXT);
  await received(socket, "control", n);
}

/** Asserts that `socket` received nothing named `event` (after a positive control). */
async function silent(client, socket, event) {
  await settle(client, socket);
  assert.deepEqual(
    socket.received.filter(([e]) => e === event),
    [],
    `socket ${socket.id} should not have received \`${event}\``,
  );
}

test("sendToGroup to a socket's own room reaches only that socket", async (t) => {
  const { endpoint, client } = await setup(t);
  const a = await connectSocket(t, endpoint, client, "/ns");
  const b = await connectSocket(t, endpoint, client, "/ns");
  await client.group(roomGroup("/ns", a.id)).sendToAll('42/ns,["ev","x"]', TEXT);
  await received(a, "ev", "x");
  await silent(client, b, "ev");

  // sendToConnection and sendToAll deliver too.
  await client.sendToConnection(connectionId(b), '42/ns,["direct",1]', TEXT);
  await received(b, "direct", 1);
  await client.sendToAll('42/ns,["everyone",{"n":2}]', TEXT);
  await received(a, "everyone", { n: 2 });
  await received(b, "everyone", { n: 2 });
  await silent(client, a, "direct");
});

test("addConnectionsToGroups puts a socket in a room; removeConnectionsFromGroups takes it out", async (t) => {
  const { endpoint, client } = await setup(t);
  const a = await connectSocket(t, endpoint, client, "/ns");
  const b = await connectSocket(t, endpoint, client, "/ns");
  const room = roomGroup("/ns", "room");
  const filter = `'${roomGroup("/ns", a.id)}' in groups`;

  await client.addConnectionsToGroups([room], filter);
  assert.equal(await client.groupExists(room), true);
  await client.group(room).sendToAll('42/ns,["room","1"]', TEXT);
  await received(a, "room", "1");
  await silent(client, b, "room");

  // The single-connection form, then the 2024-12-01 member list.
  await client.group(room).addConnection(connectionId(b));
  // SDK 1.2 wraps the paged iterator in a promise.
  const members = [];
  for await (const m of await client.group(room).listConnections()) members.push(m.connectionId);
  assert.deepEqual(members.sort(), [connectionId(a), connectionId(b)].sort());
  await client.group(room).removeConnection(connectionId(b));

  await client.removeConnectionsFromGroups([room], filter);
  assert.equal(await client.groupExists(room), false);
  await client.group(room).sendToAll('42/ns,["room","2"]', TEXT);
  await settle(client, a);
  assert.deepEqual(
    a.received.filter(([e]) => e === "room"),
    [["room", "1"]],
  );
  await assert.rejects(
    client.group(room).addConnection("no-such-connection"),
    (err) => err.statusCode === 404,
  );
});

test("broadcast to a namespace except one socket, with an OData filter", async (t) => {
  const { endpoint, client } = await setup(t);
  const a = await connectSocket(t, endpoint, client, "/ns");
  const b = await connectSocket(t, endpoint, client, "/ns");
  const c = await connectSocket(t, endpoint, client, "/ns");
  const other = await connectSocket(t, endpoint, client, "/other");
  await client.group(nsGroup("/ns")).sendToAll('42/ns,["news","hello"]', {
    ...TEXT,
    filter: `not ('${roomGroup("/ns", b.id)}' in groups)`,
    excludedConnections: [connectionId(c)],
  });
  await received(a, "news", "hello");
  await silent(client, b, "news");
  await silent(client, c, "news");
  await silent(client, other, "news");
});

test("users: sendToUser, user groups, userExists", async (t) => {
  const { endpoint, client } = await setup(t);
  const alice = await connectSocket(t, endpoint, client, "/", { userId: "alice" });
  const bob = await connectSocket(t, endpoint, client, "/", { userId: "bob" });
  assert.equal(await client.userExists("alice"), true);
  assert.equal(await client.userExists("nobody"), false);
  assert.equal(await client.connectionExists(connectionId(bob)), true);
  await client.sendToUser("alice", '42["for alice"]', TEXT);
  await received(alice, "for alice");
  await client.group("vip").addUser("bob");
  await client.group("vip").sendToAll('42["vip"]', TEXT);
  await received(bob, "vip");
  await silent(client, alice, "vip");
  await client.group("vip").removeUser("bob");
  await client.removeUserFromAllGroups("alice");
});

test("a DISCONNECT packet disconnects the socket: `io server disconnect` and a `disconnected` webhook", async (t) => {
  const { webhook, endpoint, client } = await setup(t);
  const a = await connectSocket(t, endpoint, client, "/ns");
  const socketId = a.id; // socket.io-client forgets it on disconnect
  await webhook.waitFor("connected");
  const reason = withTimeout(
    new Promise((resolve) => a.once("disconnect", resolve)),
    WAIT,
    "the socket's disconnect",
  );
  await client.group(roomGroup("/ns", socketId)).sendToAll("41/ns,", TEXT);
  assert.equal(await reason, "io server disconnect");
  const [gone] = await webhook.waitFor("disconnected");
  assert.equal(gone.headers["ce-socketid"], socketId);
  assert.equal(JSON.parse(gone.body).reason, "disconnected by REST API");
});

test("closeConnection with a reason: the `disconnected` webhook carries it", async (t) => {
  const { webhook, endpoint, client } = await setup(t);
  const a = await connectSocket(t, endpoint, client, "/ns");
  const id = connectionId(a);
  await webhook.waitFor("connected");
  const closed = withTimeout(
    new Promise((resolve) => a.once("disconnect", resolve)),
    WAIT,
    "the socket's disconnect",
  );
  await client.closeConnection(id, { reason: "bye" });
  await closed;
  const [gone] = await webhook.waitFor("disconnected");
  assert.equal(JSON.parse(gone.body).reason, "closed by REST API: bye");
  assert.equal(await client.connectionExists(id), false);
});

test("a token from the REST :generateToken route lets a client connect", async (t) => {
  const { webhook, emu, endpoint, client } = await setup(t);
  const url = `${endpoint}/api/hubs/${HUB}/:generateToken?api-version=2024-12-01&userId=zoe&clientType=socketio`;
  const minted = spawnSync(BIN, ["token", "--rest", url, "--access-key", keyOf(emu)], {
    encoding: "utf8",
  });
  assert.equal(minted.status, 0, minted.stderr);
  const response = await fetch(url, {
    method: "POST",
    headers: { Authorization: `Bearer ${minted.stdout.trim()}` },
  });
  assert.equal(response.status, 200, await response.clone().text());
  const { token } = await response.json();
  const zoe = await connectSocket(t, endpoint, client, "/", { token });
  const [connect] = await webhook.waitFor("connect");
  assert.equal(connect.headers["ce-userid"], "zoe");
  await client.sendToUser("zoe", '42["hi zoe"]', TEXT);
  await received(zoe, "hi zoe");
});

test("errors come back as ErrorDetail the SDK surfaces", async (t) => {
  const { client } = await setup(t);
  await assert.rejects(client.sendToAll("42", TEXT), (err) => {
    assert.equal(err.statusCode, 400);
    assert.match(err.message, /EVENT must carry a payload/);
    return true;
  });
  await assert.rejects(
    client.sendToAll('42["a"]', { ...TEXT, filter: "userId eq" }),
    (err) => err.statusCode === 400 && /position 9/.test(err.message),
  );
  // Without contentType the SDK JSON-encodes a string: the hint names the fix.
  await assert.rejects(client.sendToAll('42["a"]'), (err) => {
    assert.equal(err.statusCode, 400);
    assert.match(err.message, /text\/plain/);
    return true;
  });
  await assert.rejects(
    client.grantPermission("c1", "sendToGroup", { targetName: "g" }),
    (err) => err.statusCode === 501,
  );
});

/** The access key of the running emulator, from its connection string. */
function keyOf(emu) {
  return /AccessKey=([^;]+)/.exec(emu.ready.connectionString)[1];
}

// Paging as Azure/azure-rest-api-specs
// `specification/webpubsub/data-plane/WebPubSub/stable/2024-12-01/examples/WebPubSub_ListConnectionsInGroup.json`
// defines it: `maxpagesize` and `top` query parameters, `{"value":[{connectionId,userId}],
// "nextLink"}` pages. The SDK follows each nextLink verbatim (it signs it as the token's `aud`).
test("listConnections pages through a group with maxPageSize and top, following nextLink", async (t) => {
  const { endpoint, client } = await setup(t);
  const users = ["ann", undefined, "cat", undefined, "eve"];
  const sockets = [];
  for (const userId of users) sockets.push(await connectSocket(t, endpoint, client, "/", { userId }));
  const expected = sockets
    .map((s, i) => ({ connectionId: connectionId(s), userId: users[i] ?? null }))
    .sort((a, b) => (a.connectionId < b.connectionId ? -1 : 1));
  const group = client.group(nsGroup("/"));

  // SDK 1.2 wraps the paged iterator in a promise.
  const pages = [];
  for await (const page of (await group.listConnections({ maxPageSize: 2 })).byPage()) {
    pages.push(page.map(({ connectionId, userId }) => ({ connectionId, userId })));
  }
  assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
  assert.deepEqual(pages.flat(), expected);

  // Item by item, `top` bounds the whole listing across pages.
  const top = [];
  for await (const m of await group.listConnections({ maxPageSize: 2, top: 3 })) top.push(m.connectionId);
  assert.deepEqual(top, expected.slice(0, 3).map((m) => m.connectionId));

  // A connection that does not exist: the service's code and message reach the caller.
  await assert.rejects(group.addConnection("no-such-connection"), (err) => {
    assert.equal(err.statusCode, 404);
    assert.equal(err.code, "Error.Connection.NotExisted");
    assert.equal(err.message, "Connection `no-such-connection` is not found.");
    return true;
  });
});
