// Shared helpers for the end-to-end tests that drive the real `sio-emu serve` binary with real
// third-party clients. Not a test file itself (node --test only picks up *.test.mjs).
//
// - startEmu(args): spawns `sio-emu serve --port 0 --format json --color never ...`, waits for the
//   `ready` line and keeps draining stdout (the NDJSON traffic log) so the pipe never fills.
// - startWebhook(): a plain node `http` event handler on 127.0.0.1:0 that answers the
//   abuse-protection preflight, records every request and acks user events that carry an ack id.
// - mintToken(): runs `sio-emu token`.
// - waitUntil / withTimeout: bounded waits with a clear failure message (no fixed sleeps).

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const BIN =
  process.env.SIO_EMU_BIN ??
  fileURLToPath(new URL("../../target/debug/sio-emu", import.meta.url));

/** The development access key `serve` and `token` use when none is given (docs/protocol.md §6 vector 2). */
export const DEV_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH";

const READY_TIMEOUT_MS = 15_000;

function assertBinary() {
  if (!existsSync(BIN)) {
    throw new Error(`sio-emu binary not found at ${BIN}; run \`cargo build\` or set SIO_EMU_BIN`);
  }
}

/** The environment for sio-emu, without secrets that would change the key or endpoint. */
function cleanEnv() {
  const env = { ...process.env };
  delete env.SIO_EMU_ACCESS_KEY;
  delete env.SIO_EMU_SECONDARY_KEY;
  delete env.WebPubSubConnectionString;
  return env;
}

/** A promise that rejects with `message` after `ms`. */
export function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Polls `predicate` (cheap, synchronous) until it returns a truthy value, which is returned.
 * `describe` is called on failure to explain what was seen instead.
 */
export async function waitUntil(predicate, { timeout = 5_000, what, describe } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) {
      const seen = describe ? `\n  seen: ${describe()}` : "";
      throw new Error(`timed out after ${timeout} ms waiting for ${what ?? "a condition"}${seen}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits for one emission of `event` on an EventEmitter-like `target` and returns its arguments. */
export function once(target, event, ms, what) {
  return withTimeout(
    new Promise((resolve) => target.once(event, (...args) => resolve(args))),
    ms,
    what ?? `event \`${event}\``,
  );
}

/** Mints a client token with `sio-emu token`. */
export function mintToken({ hub, user, endpoint, expiresIn, issuedAt, accessKey } = {}) {
  assertBinary();
  const args = ["token"];
  if (hub) args.push("--hub", hub);
  if (user) args.push("--user", user);
  if (endpoint) args.push("--endpoint", endpoint);
  if (expiresIn) args.push("--expires-in", expiresIn);
  if (issuedAt) args.push("--issued-at", issuedAt);
  if (accessKey) args.push("--access-key", accessKey);
  const r = spawnSync(BIN, args, { encoding: "utf8", env: cleanEnv() });
  if (r.status !== 0) {
    throw new Error(`sio-emu ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  }
  return r.stdout.trim();
}

/** The decoded (unverified) claims of a JWT. */
export function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
}

/**
 * Starts `sio-emu serve --port 0 --format json --color never <args>` and resolves once its
 * `ready` line was read. The returned handle:
 *   ready  – the parsed ready object (endpoint, port, connectionString, token, ...)
 *   log    – every later stdout line, parsed (NDJSON traffic log); unparsable lines as {raw}
 *   stderr – what it wrote to stderr
 *   stop() – SIGTERM, wait for exit (SIGKILL after a bound); resolves to {code, signal}
 */
export async function startEmu(args = []) {
  assertBinary();
  const child = spawn(
    BIN,
    ["serve", "--port", "0", "--format", "json", "--color", "never", ...args],
    { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  const emu = {
    child,
    pid: child.pid,
    ready: undefined,
    log: [],
    stderr: "",
    exited: new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal }))),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        const result = await emu.exited;
        clearTimeout(killer);
        return result;
      }
      return emu.exited;
    },
  };
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => (emu.stderr += chunk));

  const lines = createInterface({ input: child.stdout });
  const ready = new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      let parsed;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = { raw: line };
      }
      if (!emu.ready && parsed.type === "ready") {
        emu.ready = parsed;
        resolve(parsed);
      } else {
        emu.log.push(parsed);
      }
    });
    child.once("exit", (code, signal) =>
      reject(new Error(`sio-emu serve exited (${code ?? signal}) before it was ready: ${emu.stderr}`)),
    );
    child.once("error", reject);
  });
  try {
    await withTimeout(ready, READY_TIMEOUT_MS, "the `ready` line of sio-emu serve");
  } catch (err) {
    await emu.stop();
    throw err;
  }
  return emu;
}

/** Parses an Engine.IO-framed Socket.IO packet `4<type>[/nsp,][id][json]`. */
export function parsePacket(text) {
  const m = /^4(\d)(?:(\/[^,]*),)?(\d*)([\s\S]*)$/.exec(text);
  if (!m) return undefined;
  return {
    type: Number(m[1]),
    nsp: m[2] ?? "/",
    id: m[3] === "" ? undefined : Number(m[3]),
    data: m[4] === "" ? undefined : JSON.parse(m[4]),
  };
}

/** The ack packet `43[/nsp,]<id><json args>` for an event packet. */
export function ackPacket(nsp, id, args) {
  return `43${nsp === "/" ? "" : `${nsp},`}${id}${JSON.stringify(args)}`;
}

/**
 * A webhook (event handler) on 127.0.0.1:0 built on node:http. Default behaviour:
 *  - OPTIONS → 200 with `WebHook-Allowed-Origin: *`
 *  - connect → 200 empty, unless `refuse(nsp)` returns {status, body}
 *  - connected / disconnected → 200
 *  - user event with an ack id → 200 text/plain `43[/nsp,]<id>["ack", ...args]`; without → 204,
 *    unless `reply(record, packet)` returns {status, contentType, body}, which is answered instead
 * Every request is recorded in `requests` as {method, url, headers, body, event, type, at}; the
 * answer waits for `hooks.beforeAnswer(record)` when that is set.
 * `at` is a process-wide sequence number shared with `tick()`, so tests can order webhook
 * arrivals against client-side events.
 */
export async function startWebhook({ refuse, reply } = {}) {
  const requests = [];
  const hooks = { beforeAnswer: undefined };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const record = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body,
        event: req.headers["ce-eventname"],
        type: req.headers["ce-type"],
        at: tick(),
      };
      requests.push(record);
      try {
        await hooks.beforeAnswer?.(record);
      } catch (err) {
        record.hookError = err;
      }
      if (req.method === "OPTIONS" || req.method === "GET") {
        res.writeHead(200, { "WebHook-Allowed-Origin": "*" }).end();
        return;
      }
      const type = record.type ?? "";
      if (type === "azure.webpubsub.sys.connect") {
        const verdict = refuse?.(req.headers["ce-namespace"], record);
        if (verdict) {
          res.writeHead(verdict.status, { "Content-Type": "text/plain" }).end(verdict.body ?? "");
        } else {
          res.writeHead(200).end();
        }
        return;
      }
      if (type.startsWith("azure.webpubsub.user.")) {
        const packet = parsePacket(body);
        const custom = reply?.(record, packet);
        if (custom) {
          res
            .writeHead(custom.status ?? 200, { "Content-Type": custom.contentType ?? "text/plain" })
            .end(custom.body ?? "");
          return;
        }
        if (packet && packet.id !== undefined && Array.isArray(packet.data)) {
          const [, ...args] = packet.data;
          res
            .writeHead(200, { "Content-Type": "text/plain" })
            .end(ackPacket(packet.nsp, packet.id, ["ack", ...args]));
        } else {
          res.writeHead(204).end();
        }
        return;
      }
      res.writeHead(200).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    server,
    port,
    requests,
    /** Set `beforeAnswer(record)` (may return a promise) to observe or hold a request. */
    hooks,
    /** `--webhook` value for sio-emu. */
    template: `http://127.0.0.1:${port}/api/{event}`,
    /** Recorded POSTs of one ce-eventName (optionally filtered further). */
    events(name, filter = () => true) {
      return requests.filter((r) => r.method === "POST" && r.event === name && filter(r));
    },
    /** Waits until at least `count` POSTs of event `name` (matching `filter`) were received. */
    async waitFor(name, { count = 1, filter, timeout = 5_000 } = {}) {
      await waitUntil(() => this.events(name, filter).length >= count, {
        timeout,
        what: `${count} \`${name}\` webhook request(s)`,
        describe: () => JSON.stringify(requests.map((r) => `${r.method} ${r.url} ${r.event ?? ""}`)),
      });
      return this.events(name, filter);
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Starts a webhook (`startWebhook(webhook)`) and an emulator pointed at it with `args`, for one
 * test; both stop when `t` ends, the emulator first, so its shutdown `disconnected` deliveries
 * still reach the webhook.
 */
export async function startWithWebhook(t, { webhook: options, args = [] } = {}) {
  const webhook = await startWebhook(options);
  let emu;
  t.after(async () => {
    await emu?.stop();
    await webhook.close();
  });
  emu = await startEmu(["--webhook", webhook.template, ...args]);
  return { webhook, emu, endpoint: `http://localhost:${emu.ready.port}` };
}

let sequence = 0;
/** A process-wide increasing counter to order events observed in this process. */
export function tick() {
  return ++sequence;
}
