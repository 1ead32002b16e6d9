// `sio-emu client` against a stock Node `socket.io` 4 server (no emulator in between): the
// client's Engine.IO 4 / Socket.IO 5 speech is the one the reference server understands, over
// each transport choice, with acks, received events, the CONNECT payload and query, a refused
// namespace and a server-side disconnect.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { Server } from "socket.io";

import { BIN } from "./harness.mjs";

const RUN_TIMEOUT_MS = 20_000;

let http;
let io;
let url;

before(async () => {
  http = createServer();
  io = new Server(http);
  io.on("connection", (socket) => {
    socket.emit("welcome", { auth: socket.handshake.auth, room: socket.handshake.query.room ?? null });
    socket.on("say", (...args) => {
      const ack = typeof args.at(-1) === "function" ? args.pop() : null;
      if (ack) ack("got", ...args);
    });
    socket.on("ping-me", () => socket.emit("pong", "\u001b[31mred"));
    socket.on("bye", () => socket.disconnect(true));
  });
  io.of("/private").use((_socket, next) => next(new Error("members only")));
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${http.address().port}`;
});

after(async () => {
  io.close();
  await new Promise((resolve) => http.close(resolve));
});

/** Runs `sio-emu client --url <server> --path /socket.io --no-token <args>` with `input` on stdin. */
function client(args, input = "") {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ["client", "--url", url, "--path", "/socket.io", "--no-token", ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => {
      process.kill(child.pid, "SIGKILL");
      reject(new Error(`sio-emu client did not finish: ${out} ${err}`));
    }, RUN_TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
    child.stdin.end(input);
  });
}

for (const transport of [null, "websocket", "polling"]) {
  test(`emit with ack over ${transport ?? "polling then websocket"}`, async () => {
    const flags = transport ? ["--transport", transport] : [];
    const run = await client([...flags, "--emit", "say", '"hi"', '{"n":1}', "--ack"]);
    assert.equal(run.code, 0, run.err);
    assert.equal(run.out, '["got","hi",{"n":1}]\n');
  });
}

test("listen prints what the server emits, with the CONNECT payload and query it saw", async () => {
  const run = await client(["--auth", '{"name":"alice"}', "--query", "room=blue", "--listen", "--count", "1"]);
  assert.equal(run.code, 0, run.err);
  assert.deepEqual(JSON.parse(run.out), { event: "welcome", args: [{ auth: { name: "alice" }, room: "blue" }] });
});

test("a script waits for an event; control characters come out escaped", async () => {
  const run = await client([], "emit-noack ping-me\nwait pong 5s\nquit\n");
  assert.equal(run.code, 0, run.err);
  const lines = run.out.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.at(-1), { event: "pong", args: ["\u001b[31mred"] });
  assert.ok(!run.out.includes("\u001b"), JSON.stringify(run.out));
});

test("a refused namespace exits 1 with the server's message", async () => {
  const run = await client(["--namespace", "/private", "--emit", "say"]);
  assert.equal(run.code, 1);
  assert.match(run.err, /namespace \/private: connect refused: members only/);
});

test("a server-side disconnect ends --listen with exit 1 and the reason", async () => {
  const run = await client(["--emit", "bye", "--listen"]);
  assert.equal(run.code, 1);
  assert.match(run.err, /disconnected by the server: io server disconnect/);
});
