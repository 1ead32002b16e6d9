// Token interoperability with the official JS SDK (@azure/web-pubsub): tokens the SDK mints are
// accepted by `sio-emu token verify`, and tokens `sio-emu token` mints carry the same aud, sub and
// lifetime as the SDK's. REST Bearer tokens are captured from real SDK calls against a local
// HTTP listener, so the check uses the SDK's own URL order and percent-encoding.
//
// Run: cargo build && (cd tests/e2e && npm install) && node --test tests/e2e/
// The binary is $SIO_EMU_BIN, or <repo>/target/debug/sio-emu.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { WebPubSubServiceClient } from "@azure/web-pubsub";

const BIN =
  process.env.SIO_EMU_BIN ??
  fileURLToPath(new URL("../../target/debug/sio-emu", import.meta.url));
const KEY = "e2e-interop-key-0123456789";
const ENDPOINT = "http://localhost:8080";
const HUB = "chat";
const CONN_STR = `Endpoint=${ENDPOINT};AccessKey=${KEY};Version=1.0;`;

/** Runs sio-emu with the secret environment variables cleared. */
function sioEmu(args) {
  assert.ok(existsSync(BIN), `sio-emu binary not found at ${BIN}; run cargo build or set SIO_EMU_BIN`);
  const env = { ...process.env };
  delete env.SIO_EMU_ACCESS_KEY;
  delete env.WebPubSubConnectionString;
  return spawnSync(BIN, args, { encoding: "utf8", env });
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
}

function lifetime(c) {
  return c.exp - (c.iat ?? c.nbf);
}

function sdk(connStr = CONN_STR, hub = HUB) {
  return new WebPubSubServiceClient(connStr, hub, { allowInsecureConnection: true });
}

test("a Socket.IO client token from the SDK passes `sio-emu token verify`", async () => {
  const { token } = await sdk().getClientAccessToken({
    clientProtocol: "socketio",
    userId: "alice",
    expirationTimeInMinutes: 30,
  });
  const r = sioEmu([
    "token", "verify", token, "--hub", HUB, "--endpoint", ENDPOINT, "--access-key", KEY,
    "--color", "never",
  ]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^signature ok/m);
  assert.match(r.stdout, /^aud ok/m);

  // The connection string works as well.
  const r2 = sioEmu(["token", "verify", token, "--hub", HUB, "--connection-string", CONN_STR]);
  assert.equal(r2.status, 0, r2.stdout + r2.stderr);
});

test("`sio-emu token` mints the same aud, sub and lifetime as the SDK", async () => {
  for (const minutes of [30, 60, 1]) {
    const { token: theirs } = await sdk().getClientAccessToken({
      clientProtocol: "socketio",
      userId: "alice",
      expirationTimeInMinutes: minutes,
    });
    const r = sioEmu([
      "token", "--hub", HUB, "--user", "alice", "--expires-in", `${minutes}m`,
      "--endpoint", ENDPOINT, "--access-key", KEY,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const ours = r.stdout.trim();
    const a = claims(theirs);
    const b = claims(ours);
    assert.equal(b.aud, a.aud);
    assert.equal(b.aud, `${ENDPOINT}/clients/socketio/hubs/${HUB}`);
    assert.equal(b.sub, a.sub);
    assert.ok(Math.abs(lifetime(b) - lifetime(a)) <= 1, `lifetimes ${lifetime(a)} vs ${lifetime(b)}`);
    assert.ok(Math.abs(b.exp - a.exp) <= 2, `exp ${a.exp} vs ${b.exp}`);
  }
});

test("roles and groups from the SDK are accepted; a Port= connection string gives the same aud", async () => {
  const { token } = await sdk("Endpoint=http://localhost;Port=8080;AccessKey=" + KEY + ";Version=1.0;")
    .getClientAccessToken({ clientProtocol: "socketio", roles: ["webpubsub.joinLeaveGroup"], groups: ["g1"] });
  const c = claims(token);
  assert.deepEqual(c.role, ["webpubsub.joinLeaveGroup"]);
  const r = sioEmu([
    "token", "verify", token, "--hub", HUB, "--connection-string",
    "Endpoint=http://localhost;Port=8080;AccessKey=" + KEY + ";Version=1.0;",
  ]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test("a generic Web PubSub client token or another key is rejected with the reason", async () => {
  const { token: generic } = await sdk().getClientAccessToken({ userId: "alice" });
  const r = sioEmu(["token", "verify", generic, "--hub", HUB, "--access-key", KEY, "--color", "never"]);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^aud FAILED: .*generic Web PubSub/m);

  const { token } = await sdk(`Endpoint=${ENDPOINT};AccessKey=another-key;Version=1.0;`)
    .getClientAccessToken({ clientProtocol: "socketio" });
  const r2 = sioEmu(["token", "verify", token, "--hub", HUB, "--access-key", KEY, "--color", "never"]);
  assert.equal(r2.status, 1, r2.stdout);
  assert.match(r2.stdout, /^signature FAILED/m);
});

test("REST Bearer tokens from real SDK calls pass `token verify --rest <URL as received>`", async () => {
  const seen = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url, auth: req.headers.authorization ?? "" });
    req.resume();
    req.on("end", () => {
      res.statusCode = 202; // both calls below are sends, which the SDK expects to answer 202
      res.end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    const client = sdk(`Endpoint=${endpoint};AccessKey=${KEY};Version=1.0;`);
    await client.sendToAll("hello", { contentType: "text/plain", filter: "userId ne 'bob' and 'g 1' in groups" });
    await client.group("room 1/ä").sendToAll("hi", { contentType: "text/plain" });
  } finally {
    server.close();
  }
  assert.ok(seen.length >= 2, JSON.stringify(seen));
  for (const { url, auth } of seen) {
    assert.match(auth, /^Bearer /);
    const requestUrl = `${endpoint}${url}`;
    const r = sioEmu([
      "token", "verify", auth, "--rest", requestUrl, "--access-key", KEY, "--color", "never",
    ]);
    assert.equal(r.status, 0, `${requestUrl}\n${r.stdout}${r.stderr}`);
    // The token is for this URL only.
    const other = sioEmu(["token", "verify", auth, "--rest", `${endpoint}/api/hubs/other/:send`, "--access-key", KEY]);
    assert.equal(other.status, 1);
  }
});
