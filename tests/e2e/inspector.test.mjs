// End-to-end: the inspector page (`GET /_emu/`) in a real headless Chromium, driven through
// playwright-core, against the real `sio-emu serve` binary, a node:http webhook and real
// socket.io-client sockets. Each test starts its own emulator, webhook and page and stops them.
//
// The browser is Debian's chromium (`/usr/bin/chromium`, or $CHROMIUM); playwright-core never
// downloads one. UPDATE_SCREENSHOT=1 writes the README screenshot to docs/inspector.png.
//
// Run: cargo build && (cd tests/e2e && npm install) && (cd tests/e2e && node --test inspector.test.mjs)
// The binary is $SIO_EMU_BIN, or <repo>/target/debug/sio-emu.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { REPO, runReplay } from "./chat_handler.mjs";
import { mintToken, startEmu, startWebhook, waitUntil, withTimeout } from "./harness.mjs";

const HUB = "chat";
const PATH = `/clients/socketio/hubs/${HUB}`;
const USER = "alice";
const WAIT = 5_000;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});
after(async () => {
  await browser?.close();
});

/**
 * One emulator, webhook and inspector page for a test; everything is closed when the test ends
 * (in reverse order of creation). The page fails the test on any uncaught script error.
 */
async function setup(t) {
  const cleanups = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const webhook = await startWebhook();
  cleanups.push(() => webhook.close());
  const emu = await startEmu(["--webhook", webhook.template, "--hub", HUB]);
  cleanups.push(() => emu.stop());
  const endpoint = `http://localhost:${emu.ready.port}`;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(err));
  cleanups.push(() => assert.deepEqual(pageErrors, [], "the page raised script errors"));
  const violations = cspViolations(page);
  cleanups.push(() => assert.deepEqual(violations, [], "the page broke its Content-Security-Policy"));
  await page.goto(`${endpoint}/_emu/`);
  await page.locator('[data-testid="stream-status"]', { hasText: "live" }).waitFor({ timeout: WAIT });
  const token = mintToken({ hub: HUB, user: USER, endpoint });
  /** A connected socket.io-client socket on `nsp` (websocket only); closed when the test ends. */
  const connect = async (nsp = "/chat") => {
    const socket = connectSocket(endpoint, nsp, token);
    cleanups.push(() => socket.disconnect());
    await connected(socket, nsp);
    return socket;
  };
  return { webhook, emu, endpoint, page, token, connect, cleanups };
}

/** Collects the Content-Security-Policy violations Chromium reports on `page`'s console. */
function cspViolations(page) {
  const found = [];
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) found.push(message.text());
  });
  return found;
}

function connectSocket(endpoint, nsp, token) {
  return io(`${endpoint}${nsp}`, {
    path: PATH,
    query: { access_token: token },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: WAIT,
  });
}

/** Resolves on `connect`, rejects with the error on `connect_error`. */
function connected(socket, what) {
  return withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", (err) => reject(new Error(`${what}: connect_error ${err.message}`)));
    }),
    WAIT,
    `${what} to connect`,
  );
}

/** Emits `event` with `args` and resolves with every argument of the ack. */
function emitWithAck(socket, event, ...args) {
  return emitWithAckWithin(WAIT, socket, event, ...args);
}

/** The same with its own bound on the wait, for an ack queued behind a heavy load. */
function emitWithAckWithin(timeout, socket, event, ...args) {
  return withTimeout(
    new Promise((resolve) => socket.emit(event, ...args, (...ack) => resolve(ack))),
    timeout,
    `the ack of \`${event}\``,
  );
}

/** A timeline row of `type` whose text contains `text`. */
const row = (page, type, text) =>
  page.locator(`[data-testid="row"][data-type="${type}"]:not([hidden])`, text ? { hasText: text } : {});

const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);

/** Waits until `locator`'s text matches `pattern`; returns the text. */
async function waitText(locator, pattern, timeout = WAIT) {
  let text = "";
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    text = (await locator.textContent({ timeout }).catch(() => "")) ?? "";
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${pattern} in: ${text.slice(0, 500)}`);
}

/** JSON from one of the emulator's own routes. */
async function getJson(endpoint, path) {
  const res = await fetch(`${endpoint}${path}`);
  assert.equal(res.status, 200, `${path} → ${res.status}`);
  return res.json();
}

/** Selects a socket in the connections view (filling the action form with it). */
async function selectSocket(page, socketId) {
  await byTestId(page, "tab-connections").click();
  const item = page.locator(`[data-testid="socket"][data-socket="${socketId}"]`);
  await item.waitFor({ timeout: WAIT });
  await item.locator('[data-testid="socket-select"]').click();
  return item;
}

test("the timeline shows the handshake, the frame, the webhook call and the ack; details show the request and the answer", async (t) => {
  const { page, connect, webhook } = await setup(t);
  const socket = await connect("/chat");
  const ack = await emitWithAck(socket, "say", "hi");
  assert.deepEqual(ack, ["ack", "hi"]);

  await row(page, "handshake").first().waitFor({ timeout: WAIT });
  await row(page, "frame", "say").first().waitFor({ timeout: WAIT });
  await row(page, "webhook", "say").first().waitFor({ timeout: WAIT });
  await row(page, "ackForwarded").first().waitFor({ timeout: WAIT });
  // The ack also goes out to the client as a frame.
  await row(page, "frame", "ACK").first().waitFor({ timeout: WAIT });

  await row(page, "webhook", "say").first().click();
  const details = byTestId(page, "details");
  const headers = await waitText(details.locator('[data-testid="details-request-headers"]'), /ce-signature/i);
  assert.match(headers, /ce-eventName\s*say/i);
  assert.match(headers, /ce-signature\s*sha256=/i);
  const body = await waitText(details.locator('[data-testid="details-response-body"]'), /ack/);
  assert.match(body, /\["ack","hi"\]/);
  assert.match(await details.locator('[data-testid="details-request-body"]').textContent(), /"say","hi"/);
  assert.equal(webhook.events("say").length, 1);

  // The README screenshot (only written into the repo on request).
  const dir = mkdtempSync(join(tmpdir(), "sio-emu-inspector-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = process.env.UPDATE_SCREENSHOT === "1" ? join(REPO, "docs/inspector.png") : join(dir, "inspector.png");
  await page.screenshot({ path: file });

  // Resend: the same call once more, the new answer beside the old one.
  await details.locator('[data-testid="resend"]').click();
  assert.match(await waitText(details.locator('[data-testid="resend-new-body"]'), /ack/), /\["ack","hi"\]/);
  assert.match(await details.locator('[data-testid="resend-old-body"]').textContent(), /\["ack","hi"\]/);
  await webhook.waitFor("say", { count: 2 });
  await row(page, "webhook", "say").nth(1).waitFor({ timeout: WAIT });
});

test("emit to a socket from the page reaches the client's listener", async (t) => {
  const { page, connect } = await setup(t);
  const socket = await connect("/chat");
  const heard = withTimeout(
    new Promise((resolve) => socket.on("hello", (...args) => resolve(args))),
    WAIT,
    "the `hello` emitted from the page",
  );
  await selectSocket(page, socket.id);
  assert.equal(await byTestId(page, "action-socket").inputValue(), socket.id);
  await byTestId(page, "action-to").selectOption("socket");
  await byTestId(page, "action-event").fill("hello");
  await byTestId(page, "action-args").fill('["from the page", {"n": 1}]');
  await byTestId(page, "action-emit").click();
  assert.deepEqual(await heard, ["from the page", { n: 1 }]);
  await waitText(byTestId(page, "action-result"), /matched/);
  // The action is on the timeline as the inspector's.
  await row(page, "admin", "inspector").first().waitFor({ timeout: WAIT });
});

test("a room join from the page shows in the connections view and in GET /_emu/connections", async (t) => {
  const { page, connect, endpoint } = await setup(t);
  const socket = await connect("/chat");
  await selectSocket(page, socket.id);
  await byTestId(page, "action-room").fill("lobby");
  await byTestId(page, "action-join").click();
  await waitText(byTestId(page, "action-result"), /ok/);
  await page
    .locator(`[data-testid="socket"][data-socket="${socket.id}"] [data-testid="socket-rooms"] .chip`, { hasText: /^lobby$/ })
    .waitFor({ timeout: WAIT });
  const data = await getJson(endpoint, "/_emu/connections");
  const sockets = data.hubs.flatMap((h) => h.connections.flatMap((c) => c.sockets));
  const mine = sockets.find((s) => s.socketId === socket.id);
  assert.ok(mine, JSON.stringify(data));
  assert.ok(mine.rooms.includes("lobby"), JSON.stringify(mine));

  // And leaving takes it out again.
  await byTestId(page, "action-leave").click();
  await page
    .locator(`[data-testid="socket"][data-socket="${socket.id}"] [data-testid="socket-rooms"] .chip`, { hasText: /^lobby$/ })
    .waitFor({ state: "detached", timeout: WAIT });
});

test("a fault added on the page refuses new connects; removing it restores them", async (t) => {
  const { page, connect, endpoint, token, cleanups } = await setup(t);
  await byTestId(page, "tab-faults").click();
  await byTestId(page, "fault-input").fill("event=connect,status=500");
  await byTestId(page, "fault-add").click();
  const fault = page.locator('[data-testid="fault"]');
  await fault.first().waitFor({ timeout: WAIT });
  assert.match(await fault.first().getAttribute("data-rule"), /event=connect/);
  assert.deepEqual((await getJson(endpoint, "/_emu/faults")).faults.length, 1);

  const refused = connectSocket(endpoint, "/chat", token);
  cleanups.push(() => refused.disconnect());
  await assert.rejects(connected(refused, "/chat under the fault"), /connect_error/);
  await row(page, "fault").first().waitFor({ timeout: WAIT });

  await fault.first().locator('[data-testid="fault-remove"]').click();
  await fault.first().waitFor({ state: "detached", timeout: WAIT });
  assert.deepEqual((await getJson(endpoint, "/_emu/faults")).faults, []);
  await connect("/chat");
});

test("the downloaded session file replays clean against the same handler", async (t) => {
  const { page, connect, webhook } = await setup(t);
  const socket = await connect("/chat");
  assert.deepEqual(await emitWithAck(socket, "say", "hi"), ["ack", "hi"]);
  assert.deepEqual(await emitWithAck(socket, "say", { to: "lobby" }, 2), ["ack", { to: "lobby" }, 2]);
  socket.disconnect();
  await webhook.waitFor("disconnected");
  await row(page, "webhook", "disconnected").first().waitFor({ timeout: WAIT });

  const dir = mkdtempSync(join(tmpdir(), "sio-emu-inspector-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [download] = await Promise.all([page.waitForEvent("download"), byTestId(page, "download").click()]);
  const file = join(dir, download.suggestedFilename());
  await download.saveAs(file);
  assert.match(download.suggestedFilename(), /\.jsonl$/);

  const run = await runReplay([file, "--target", webhook.template, "--rest-port", "0"]);
  const all = `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
  assert.equal(run.code, 0, all);
  assert.match(run.stdout, /say/, all);
});

test("5,000 events while the page is open: clicks still answer and every ack arrives", async (t) => {
  const { page, connect } = await setup(t);
  // Four sockets (each has its own delivery lane), 1,250 acked events each.
  const sockets = await Promise.all([1, 2, 3, 4].map(() => connect("/chat")));
  const COUNT = 5_000;
  let acked = 0;
  const allAcked = new Promise((resolve) => {
    for (let i = 0; i < COUNT; i++) {
      sockets[i % sockets.length].emit("n", i, () => {
        if (++acked === COUNT) resolve();
      });
    }
  });
  // While the stream is busy, a user scrolls up a little and clicks a row.
  await waitUntil(() => acked >= COUNT / 10, { timeout: 30_000, what: "the first acks" });
  const timeline = byTestId(page, "timeline");
  await timeline.evaluate((el) => {
    el.scrollTop = Math.max(0, el.scrollTop - el.clientHeight);
  });
  const started = Date.now();
  await timeline.click({ position: { x: 300, y: 100 }, timeout: WAIT });
  const details = byTestId(page, "details");
  await page.waitForFunction(() => document.querySelector('[data-testid="details"]').dataset.seq, null, { timeout: WAIT });
  const seq = await details.getAttribute("data-seq");
  await details.locator("h2", { hasText: `#${seq}` }).waitFor({ timeout: WAIT });
  t.diagnostic(`a click opened details of #${seq} in ${Date.now() - started} ms (acks so far: ${acked})`);

  await withTimeout(allAcked, 60_000, `all ${COUNT} acks (got ${acked})`);
  // The page stays bounded: at most 5,000 entries kept, only the visible rows in the DOM.
  const kept = Number(await byTestId(page, "count-kept").textContent());
  assert.ok(kept <= 5_000, `kept ${kept}`);
  const rows = await page.locator('[data-testid="row"]').count();
  assert.ok(rows < 200, `${rows} row elements`);
  const discarded = Number(await byTestId(page, "count-discarded").textContent());
  t.diagnostic(`kept ${kept}, discarded ${discarded}, row elements ${rows}`);
});

test("under its Content-Security-Policy the page styles itself, streams and answers clicks, with no violation", async (t) => {
  const { page, endpoint, connect } = await setup(t);
  const policy = (await fetch(`${endpoint}/_emu/`)).headers.get("content-security-policy");
  assert.match(policy, /default-src 'self'/);
  assert.match(policy, /frame-ancestors 'none'/);
  // The stylesheet applied (the header is a flex row), the script runs (the stream is live)...
  assert.equal(await page.locator("header").evaluate((h) => getComputedStyle(h).display), "flex");
  // ...and handles clicks on rows it built from the stream.
  const socket = await connect("/chat");
  await emitWithAck(socket, "say", "csp");
  await row(page, "webhook", "say").first().click();
  await waitText(byTestId(page, "details").locator('[data-testid="details-request-body"]'), /"say","csp"/);
  await byTestId(page, "tab-faults").click();
  await byTestId(page, "fault-input").fill("event=nothing,status=500");
  await byTestId(page, "fault-add").click();
  await waitText(byTestId(page, "fault-list"), /event=nothing/);
  // The violations collected by setup() are checked when the test ends.
});

test("a page on another localhost origin cannot frame the inspector", async (t) => {
  const { page, endpoint } = await setup(t);
  const other = createServer((req, res) => {
    if (req.url === "/plain") {
      res.writeHead(200, { "content-type": "text/html" }).end("<p id=plain>framed fine</p>");
      return;
    }
    res.writeHead(200, { "content-type": "text/html" }).end(
      `<iframe id=plain src="/plain"></iframe><iframe id=emu src="${endpoint}/_emu/"></iframe>`,
    );
  });
  await new Promise((resolve) => other.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => other.close(resolve)));
  const framer = await page.context().newPage();
  t.after(() => framer.close());
  const blocked = [];
  framer.on("console", (m) => blocked.push(m.text()));
  await framer.goto(`http://localhost:${other.address().port}/`);
  // Positive control: a frame that allows it renders inside the same page.
  await framer.frameLocator("#plain").locator("#plain").waitFor({ timeout: WAIT });
  const emuFrame = await (await framer.$("#emu")).contentFrame();
  await waitUntil(() => blocked.some((text) => /frame-ancestors/.test(text)), {
    timeout: WAIT,
    what: "Chromium refusing to frame /_emu/",
    describe: () => blocked.join("\n"),
  });
  assert.equal(await emuFrame.locator('[data-testid="stream-status"]').count(), 0, "the inspector did not render");
  // The inspector itself, opened directly, still works.
  assert.match(await page.locator('[data-testid="stream-status"]').textContent(), /live/);
});

/** The webhook keeps no copy of big bodies (this process's memory is not under test). */
function forgetBigBodies(webhook) {
  webhook.hooks.beforeAnswer = (record) => {
    if (record.body.length > 1_000) record.body = "";
  };
}

/** A function that collects garbage in the page and returns its JS heap in use, in bytes. */
async function heapMeter(page) {
  const cdp = await page.context().newCDPSession(page);
  return async () => {
    await cdp.send("HeapProfiler.collectGarbage");
    return (await cdp.send("Runtime.getHeapUsage")).usedSize;
  };
}

test("400 events of 500 KB with the page open: the page keeps a bounded amount of text, says what it let go and shows all on demand", async (t) => {
  const { page, connect, webhook } = await setup(t);
  forgetBigBodies(webhook);
  const heapUsed = await heapMeter(page);
  const before = await heapUsed();
  const socket = await connect("/chat");
  const big = "x".repeat(500_000);
  for (let i = 0; i < 400; i++) socket.emit("big", i, big);
  await webhook.waitFor("big", { count: 400, timeout: 120_000 });
  // The emulator may still be answering the last big events and feeding them to the page: the
  // ack waits its turn on the socket's lane, so its bound is the heavy load's, not a quick one.
  assert.deepEqual(await emitWithAckWithin(120_000, socket, "done", "end"), ["ack", "end"]);
  // Positive control: the stream brought the events to the page.
  await row(page, "webhook", "done").first().waitFor({ timeout: 60_000 });
  await row(page, "frame", "big").first().waitFor({ timeout: WAIT });
  const letGo = await byTestId(page, "count-let-go").getAttribute("data-bytes");
  const dropped = Number(await byTestId(page, "count-dropped").textContent());
  t.diagnostic(`let go ${letGo} bytes of entry text; the server dropped ${dropped} entries for the page`);
  assert.ok(Number(letGo) + dropped * 500_000 >= 400 * 500_000, `let go ${letGo}, dropped ${dropped}`);
  assert.match(await byTestId(page, "count-let-go").textContent(), /\d+(\.\d+)? [KMG]iB/);

  const after = await heapUsed();
  t.diagnostic(`JS heap ${(before / 2 ** 20).toFixed(1)} MiB before, ${(after / 2 ** 20).toFixed(1)} MiB after`);
  assert.ok(after - before < (32 + 16) * 2 ** 20, `the heap grew by ${((after - before) / 2 ** 20).toFixed(1)} MiB`);

  // The newest big call: its body is cut on screen, and "show all" fetches the whole of it.
  await row(page, "webhook", "big").last().click();
  const details = byTestId(page, "details");
  const body = details.locator('[data-testid="details-request-body"]');
  await waitText(body, /big/);
  assert.ok((await body.textContent()).length < 100_000, "the body is cut on screen");
  await details.locator('[data-testid="details-request-body-show-all"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="details-request-body"]').textContent.length > 500_000,
    null,
    { timeout: WAIT },
  );
});

test("many mid-size entries: the page lets the oldest go at its 32 MiB text budget, before its entry cap", async (t) => {
  const { page, connect, webhook } = await setup(t);
  forgetBigBodies(webhook);
  const heapUsed = await heapMeter(page);
  const before = await heapUsed();
  const socket = await connect("/chat");
  // Each frame entry (packet and decoded args) stays under the size at which the page cuts one.
  const COUNT = 2_400;
  const mid = "y".repeat(7_500);
  for (let i = 0; i < COUNT; i++) socket.emit("mid", i, mid);
  await webhook.waitFor("mid", { count: COUNT, timeout: 120_000 });
  assert.deepEqual(await emitWithAckWithin(120_000, socket, "done", "end"), ["ack", "end"]);
  await row(page, "webhook", "done").first().waitFor({ timeout: 60_000 });
  const counter = byTestId(page, "count-let-go");
  const kept = Number(await counter.getAttribute("data-kept"));
  const keptEntries = Number(await byTestId(page, "count-kept").textContent());
  const discarded = Number(await byTestId(page, "count-discarded").textContent());
  const dropped = Number(await byTestId(page, "count-dropped").textContent());
  t.diagnostic(`kept ${keptEntries} entries, ${(kept / 2 ** 20).toFixed(1)} MiB of text; discarded ${discarded}, dropped ${dropped}`);
  // Positive control: more text arrived than the budget holds, in fewer entries than the cap.
  const letGo = Number(await counter.getAttribute("data-bytes"));
  assert.ok(kept + letGo > 32 * 2 ** 20, `${kept + letGo} characters arrived`);
  assert.ok(keptEntries + discarded < 5_000, `${keptEntries} + ${discarded} entries arrived`);
  assert.ok(discarded > 0, "the oldest entries were let go");
  assert.ok(kept <= 32 * 2 ** 20, `kept ${kept} characters`);
  assert.ok(kept > 24 * 2 ** 20, `kept ${kept} characters: close to the budget`);
  const after = await heapUsed();
  t.diagnostic(`JS heap ${(before / 2 ** 20).toFixed(1)} MiB before, ${(after / 2 ** 20).toFixed(1)} MiB after`);
  assert.ok(after - before < (2 * 32 + 16) * 2 ** 20, `the heap grew by ${((after - before) / 2 ** 20).toFixed(1)} MiB`);
});
