// End-to-end: `sio-emu replay` replays the recorded fixtures (fixtures/*.jsonl, recorded with
// real socket.io-client sockets by fixtures/record.mjs) against the reference chat handler
// (examples/chat-handler/server.mjs, built on @azure/web-pubsub), and against copies of it changed
// the way a regression would change it.
//
// Run: cargo build && (cd tests/e2e && npm install) && (cd tests/e2e && node --test replay.test.mjs)
// The binary is $SIO_EMU_BIN, or <repo>/target/debug/sio-emu.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, freePort, runReplay, startChatHandler } from "./chat_handler.mjs";

const fixture = (name) => join(REPO, "fixtures", `${name}.jsonl`);

/** The recorded lines of a fixture, by type. */
function lines(name, type) {
  return readFileSync(fixture(name), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((l) => l.type === type);
}

/**
 * Starts the handler (with `edits` applied) wired to a fresh REST port and replays `name`
 * against it; resolves to { code, stdout, stderr }.
 */
async function replay(t, name, { edits = [], args = [] } = {}) {
  const restPort = await freePort();
  const handler = await startChatHandler({ restEndpoint: `http://localhost:${restPort}`, edits });
  t.after(() => handler.stop());
  const result = await runReplay([
    fixture(name),
    "--target",
    handler.template,
    "--rest-port",
    String(restPort),
    ...args,
  ]);
  result.all = `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}\n--- handler\n${handler.output}`;
  return result;
}

/** The ✗ lines of a pretty report. */
const mismatches = (stdout) => stdout.split("\n").filter((l) => l.startsWith("✗"));

for (const name of ["chat-rooms", "refused-and-kick"]) {
  test(`${name}: the reference handler replays clean`, async (t) => {
    const run = await replay(t, name, { args: ["--format", "json"] });
    assert.equal(run.code, 0, run.all);
    const out = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const events = out.filter((l) => l.type === "event");
    assert.equal(events.length, lines(name, "webhook").length, run.all);
    assert.ok(events.every((e) => e.verdict === "matched"), run.all);
    // Every recorded REST call was made again, and the SDK's calls were signed correctly.
    const calls = events.reduce((n, e) => n + e.rest.length, 0);
    assert.equal(calls, lines(name, "rest").length, run.all);
    assert.ok(!out.some((l) => l.type === "warning"), run.all);
    const summary = out.at(-1);
    assert.equal(summary.type, "summary");
    assert.equal(summary.mismatched, 0);
  });
}

test("chat-rooms: a handler that acks `join` differently fails on `join`", async (t) => {
  const run = await replay(t, "chat-rooms", {
    edits: [['return reply(["joined", room]);', 'return reply(["joined", room, "welcome"]);']],
  });
  assert.equal(run.code, 1, run.all);
  const bad = mismatches(run.stdout);
  assert.equal(bad.length, lines("chat-rooms", "webhook").filter((l) => l.event === "join").length, run.all);
  assert.ok(bad.every((l) => /\bjoin\b/.test(l)), run.all);
  assert.match(run.stdout, /body differs/);
  assert.match(run.stdout, /payload \$\[2\]: unexpected "welcome"/);
  assert.match(run.stdout, /event\(s\) mismatched/);
});

test("chat-rooms: a handler that skips the room join fails on `join`, naming the call", async (t) => {
  const run = await replay(t, "chat-rooms", {
    // The call's arguments are still evaluated, the REST call is not made.
    edits: [["await rest.addConnectionsToGroups(", "(() => {})("]],
  });
  assert.equal(run.code, 1, run.all);
  const bad = mismatches(run.stdout);
  assert.ok(bad.length > 0 && bad.every((l) => /\bjoin\b/.test(l)), run.all);
  assert.match(run.stdout, /recorded REST call\(s\) missing/);
  assert.match(run.stdout, /- AddConnectionsToGroups \[all connections\] body \{"filter":"'0~L2NoYXQ~/);
});

test("refused-and-kick: a handler that acks `kick` differently fails on `kick`", async (t) => {
  const run = await replay(t, "refused-and-kick", {
    edits: [['return reply(["kicked", target]);', 'return reply(["kicked"]);']],
  });
  assert.equal(run.code, 1, run.all);
  const bad = mismatches(run.stdout);
  assert.equal(bad.length, 1, run.all);
  assert.match(bad[0], /\bkick\b/);
  assert.match(run.stdout, /payload \$\[1\]: expected "[\w-]+", missing/);
});

test("refused-and-kick: a handler that lets mallory in fails on her `connect`", async (t) => {
  const run = await replay(t, "refused-and-kick", {
    edits: [['req.headers["ce-userid"] === "mallory"', "false"]],
  });
  assert.equal(run.code, 1, run.all);
  const bad = mismatches(run.stdout);
  assert.equal(bad.length, 1, run.all);
  assert.match(bad[0], /\bconnect\b/);
  assert.match(run.stdout, /status: expected 401 \(4xx\), got 200 \(2xx\)/);
});

test("a closed port is exit 2: the target could not be reached", async () => {
  const closed = await freePort();
  const run = await runReplay([
    fixture("chat-rooms"),
    "--target",
    `http://localhost:${closed}/eventhandler/{event}`,
    "--rest-port",
    "0",
  ]);
  assert.equal(run.code, 2, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stderr, /could not be reached/);
  assert.match(run.stderr, /^hint: /m);
});
