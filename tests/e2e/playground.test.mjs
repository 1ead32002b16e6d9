// End-to-end: the inspector's virtual clients ("Clients" tab, /_emu/playground.js) in a real
// headless Chromium driven through playwright-core, against the real `sio-emu serve` binary
// with the built-in chat handler (`builtin:chat`, a loopback HTTP handler that acks each event
// with its arguments and broadcasts it to the rest of the namespace through the REST API).
//
// The browser is Debian's chromium (`/usr/bin/chromium`, or $CHROMIUM). UPDATE_SCREENSHOT=1
// writes the README screenshot to docs/playground.png.
//
// Run: cargo build && (cd tests/e2e && npm install) && (cd tests/e2e && node --test playground.test.mjs)

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { REPO } from "./chat_handler.mjs";
import { startEmu } from "./harness.mjs";

const WAIT = 10_000;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});
after(async () => {
  await browser?.close();
});

/** An emulator with the chat handler and a page; closed when the test ends. */
async function setup(t) {
  const cleanups = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const emu = await startEmu(["--webhook", "builtin:chat", "--hub", "chat"]);
  cleanups.push(() => emu.stop());
  const endpoint = `http://localhost:${emu.ready.port}`;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(err));
  cleanups.push(() => assert.deepEqual(pageErrors, [], "the page raised script errors"));
  return { emu, endpoint, page };
}

const byTestId = (scope, id) => scope.locator(`[data-testid="${id}"]`);

/** Fills the "New client" form and creates a client; resolves to its panel. */
async function newClient(page, user) {
  await byTestId(page, "vc-hub").fill("chat");
  await byTestId(page, "vc-namespace").fill("/");
  await byTestId(page, "vc-user").fill(user);
  await byTestId(page, "vc-create").click();
  const panel = page.locator(`[data-testid="vc-panel"][data-user="${user}"]`);
  await panel.waitFor({ timeout: WAIT });
  return panel;
}

/** Alice emits with an ack, sees it, and Bob receives the handler's broadcast. */
async function chat(page) {
  const alice = await newClient(page, "alice");
  const bob = await newClient(page, "bob");
  await byTestId(alice, "vc-event").fill("say");
  await byTestId(alice, "vc-args").fill('["hi bob", {"n": 1}]');
  assert.equal(await byTestId(alice, "vc-ack").isChecked(), true);
  await byTestId(alice, "vc-emit").click();
  await byTestId(alice, "vc-outcome").filter({ hasText: 'ack ["hi bob",{"n":1}]' }).waitFor({ timeout: WAIT });
  await byTestId(bob, "vc-received").locator("li", { hasText: 'say ["hi bob",{"n":1}]' }).waitFor({ timeout: WAIT });
  // The sender is not in its own broadcast.
  assert.equal(await byTestId(alice, "vc-received").locator("li").count(), 0);
  return { alice, bob };
}

test("two virtual clients chat through the handler from the inspector page", async (t) => {
  const { endpoint, page, emu } = await setup(t);
  await page.goto(`${endpoint}/_emu/`);
  await byTestId(page, "stream-status").filter({ hasText: "live" }).waitFor({ timeout: WAIT });
  const assets = await Promise.all(
    ["playground.js", "playground.css"].map((f) => fetch(`${endpoint}/_emu/${f}`)),
  );
  assert.match(assets[0].headers.get("content-type"), /^text\/javascript/);
  assert.match(assets[1].headers.get("content-type"), /^text\/css/);
  await byTestId(page, "tab-clients").click();
  const { alice, bob } = await chat(page);

  // The connections view marks them virtual.
  const connections = await (await fetch(`${endpoint}/_emu/connections`)).json();
  const listed = connections.hubs.find((h) => h.hub === "chat").connections;
  assert.deepEqual(listed.map((c) => [c.userId, c.virtual]).sort(), [["alice", true], ["bob", true]]);

  // The timeline marks their traffic too.
  await byTestId(page, "tab-clients").waitFor({ timeout: WAIT });
  const virtualRow = page.locator('[data-testid="row"][data-type="frame"]:not([hidden])', { hasText: "virtual client · " });
  await virtualRow.first().waitFor({ timeout: WAIT });

  // The README screenshot (only written into the repo on request).
  const dir = mkdtempSync(join(tmpdir(), "sio-emu-playground-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = process.env.UPDATE_SCREENSHOT === "1" ? join(REPO, "docs/playground.png") : join(dir, "playground.png");
  await page.screenshot({ path: file });

  // Peer text lands as text: markup in an event stays visible characters.
  await byTestId(bob, "vc-event").fill("say");
  await byTestId(bob, "vc-args").fill('["<img src=x onerror=alert(1)>"]');
  await byTestId(bob, "vc-emit").click();
  const shown = byTestId(alice, "vc-received").locator("li", { hasText: "<img src=x" });
  await shown.waitFor({ timeout: WAIT });
  assert.equal(await byTestId(alice, "vc-received").locator("img").count(), 0);

  // Disconnect: the handler's `disconnected` goes out, the panel says so.
  await byTestId(alice, "vc-disconnect").click();
  await byTestId(alice, "vc-state").filter({ hasText: "disconnected" }).waitFor({ timeout: WAIT });
  const deadline = Date.now() + WAIT;
  while (!emu.log.some((l) => l.type === "webhook" && l.event === "disconnected")) {
    assert.ok(Date.now() < deadline, "no disconnected webhook in the log");
    await new Promise((r) => setTimeout(r, 20));
  }
});

test("the panel works under a strict Content-Security-Policy", async (t) => {
  const { endpoint, page } = await setup(t);
  // A bare page that only mounts the panel, served with the policy the inspector will use.
  await page.route(`${endpoint}/_emu/`, (route) =>
    route.fulfill({
      status: 200,
      headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": "default-src 'self'" },
      body: `<!doctype html><html><head><link rel="stylesheet" href="/_emu/playground.css"></head>
<body><nav class="tabs"></nav><div class="pane" data-pane="clients" id="playground"></div>
<script src="/_emu/playground.js"></script></body></html>`,
    }),
  );
  const violations = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  await page.goto(`${endpoint}/_emu/`);
  await byTestId(page, "tab-clients").click();
  await chat(page);
  assert.deepEqual(violations, []);
});
