// Idle memory per connection for any server, read from /proc/<pid>/status (VmRSS), so it
// works for sio-emu, which has no /stats endpoint. Same steps as the baseline's idle.js:
// prime with a few connections and drop them, read the baseline, connect N silent clients
// that each join "/" and answer pings, let them settle, read again, disconnect, read a third
// time. With --hold S the clients stay connected S seconds after the second reading and the
// result adds the RSS and the number of clients still open at the end of the hold (a client
// that lost its connection is an error). When --stats-url is given (the Node baseline server with --expose-gc), it is called
// with ?gc=1 before each reading so V8 garbage does not count against Node.
//
// With --storm S (a disconnect storm) the N clients close at once after the second reading;
// the script waits until the webhook behind --webhook-stats (webhook.js's /stats, which counts
// every request) has answered one more request per client (each client's `disconnected`),
// waits S seconds more and reads VmRSS again: `stormKiB`, beside `stormDrainMs` (close → last
// `disconnected` answered). The webhook's count must be still before the close, so the
// script first waits until it stops moving (the `connected` calls are asynchronous).
//
// Usage: node idle-proc.js --url http://127.0.0.1:38200 --path /clients/socketio/hubs/bench
//        --clients 1000 --server-pid PID [--transport websocket|polling] [--client sio|raw]
//        [--settle 5] [--hold 600] [--stats-url http://127.0.0.1:38201/stats] [--label name]
//        [--storm 10 --webhook-stats http://127.0.0.1:38271/stats]
"use strict";

const fs = require("node:fs");
const { io } = require("socket.io-client");
const WebSocket = require("ws");

const args = parseArgs(process.argv.slice(2));
const url = args.url ?? "http://127.0.0.1:3000";
const path = args.path ?? "/clients/socketio/hubs/bench";
const nClients = Number(args.clients ?? 1000);
const transport = args.transport ?? "websocket";
const clientKind = args.client ?? "sio";
const settleS = Number(args.settle ?? 5);
const holdS = Number(args.hold ?? 0);
const serverPid = Number(args["server-pid"]);
const statsUrl = args["stats-url"] ?? null;
const label = args.label ?? "";
const batch = Number(args.batch ?? (clientKind === "raw" ? 200 : 50));
const stormS = args.storm === undefined ? null : Number(args.storm);
const webhookStats = args["webhook-stats"] ?? null;
if (!serverPid) fail("--server-pid is required");
if (stormS !== null && !webhookStats) fail("--storm needs --webhook-stats (webhook.js's /stats)");
if (clientKind === "raw" && transport !== "websocket") fail("--client raw supports only websocket");

async function main() {
  const prime = await connect(10);
  prime.clients.forEach((c) => c.close());
  await sleep(1000);
  const before = await reading();
  const t0 = Date.now();
  const { clients, errors } = await connect(nClients);
  const connectMs = Date.now() - t0;
  await sleep(settleS * 1000);
  const during = await reading();
  const open = clients.filter((c) => c.isOpen()).length;
  let held = null;
  if (holdS > 0) {
    await sleep(holdS * 1000);
    const openAtEnd = clients.filter((c) => c.isOpen()).length;
    held = { holdS, heldKiB: await reading(), openAtEnd, lostDuringHold: open - openAtEnd };
  }
  const storm = stormS === null ? null : await disconnectStorm(clients, open);
  if (!storm) clients.forEach((c) => c.close());
  await sleep(2000);
  const after = await reading();
  const result = {
    label,
    transport,
    client: clientKind,
    clients: nClients,
    connected: clients.length,
    openAtReading: open,
    errors: errors.length,
    firstError: errors[0] ?? null,
    connectMs,
    baselineKiB: before,
    connectedKiB: during,
    afterDisconnectKiB: after,
    perConnectionKiB: round((during - before) / nClients, 2),
    ...(held ?? {}),
    ...(storm ?? {}),
  };
  console.log(JSON.stringify(result));
  console.error(
    `[idle] ${label} ${transport}/${clientKind} ${nClients} clients (${clients.length} connected, ` +
      `${errors.length} errors, ${connectMs} ms): RSS ${mib(before)} -> ${mib(during)} MiB ` +
      `(${result.perConnectionKiB} KiB/conn), after disconnect ${mib(after)} MiB` +
      (held ? `; held ${holdS} s: ${held.openAtEnd} open at the end, RSS ${mib(held.heldKiB)} MiB` : "") +
      (storm ? `; storm: every disconnected answered in ${storm.stormDrainMs} ms, RSS ${stormS} s later ${mib(storm.stormKiB)} MiB` : ""),
  );
  setTimeout(() => process.exit(0), 200).unref();
}

// Closes every client at once, waits until the webhook has answered one `disconnected` per
// open client, then `stormS` seconds, and reads VmRSS.
async function disconnectStorm(clients, open) {
  let count = await webhookRequests();
  for (;;) {
    await sleep(1000);
    const now = await webhookRequests();
    if (now === count) break;
    count = now;
  }
  const t0 = Date.now();
  clients.forEach((c) => c.close());
  const want = count + open;
  let answered = count;
  const giveUp = Date.now() + 300_000;
  while (answered < want && Date.now() < giveUp) {
    await sleep(100);
    answered = await webhookRequests();
  }
  const stormDrainMs = Date.now() - t0;
  await sleep(stormS * 1000);
  return { stormS, stormDrainMs, disconnectedAnswered: answered - count, stormKiB: await reading() };
}

async function webhookRequests() {
  const r = await fetch(webhookStats);
  return (await r.json()).requests;
}

async function reading() {
  if (statsUrl) {
    try {
      await fetch(`${statsUrl}?gc=1`);
      await sleep(300);
      await fetch(`${statsUrl}?gc=1`);
    } catch {}
  }
  await sleep(500);
  const m = fs.readFileSync(`/proc/${serverPid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
  return Number(m[1]);
}

async function connect(n) {
  const clients = [];
  const errors = [];
  for (let i = 0; i < n; i += batch) {
    const pending = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      const c = clientKind === "raw" ? rawClient() : sioClient();
      pending.push(
        c.ready.then(
          () => clients.push(c),
          (err) => errors.push(`client ${j}: ${err.message}`),
        ),
      );
    }
    await Promise.all(pending);
    if (errors.length > 20) break;
  }
  return { clients, errors };
}

function sioClient() {
  const sock = io(url, { path, transports: [transport], forceNew: true, reconnection: false, timeout: 60_000 });
  const ready = new Promise((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("connect_error", reject);
  });
  return { ready, close: () => sock.disconnect(), isOpen: () => sock.connected };
}

// Engine.IO v4 + Socket.IO v5 over WebSocket, just enough to open, join "/" and stay alive.
function rawClient() {
  const p = path.endsWith("/") ? path : `${path}/`;
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}${p}?EIO=4&transport=websocket`, {
    perMessageDeflate: false,
  });
  let open = false;
  const ready = new Promise((resolve, reject) => {
    ws.on("message", (data) => {
      const s = data.toString();
      if (s === "2") return ws.send("3");
      if (s[0] === "0") return ws.send("40");
      if (s.startsWith("40")) {
        open = true;
        return resolve();
      }
      if (s.startsWith("44")) reject(new Error(`refused: ${s}`));
    });
    ws.on("error", reject);
    ws.on("close", () => {
      open = false;
      reject(new Error("closed"));
    });
  });
  return { ready, close: () => ws.close(), isOpen: () => open };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
const mib = (kib) => round(kib / 1024, 1);

function fail(msg) {
  console.error(`idle-proc.js: ${msg}`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) {
      const key = argv[i].slice(2);
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) out[key] = true;
      else out[key] = argv[++i];
    }
  }
  return out;
}

main().catch((err) => {
  console.error(`idle-proc.js: ${err.stack || err}`);
  process.exit(1);
});
