// Time from exec to "ready" and the process's memory at that moment, median of N runs.
//
// Spawns the command N times (one at a time), measures wall time from spawn until a stdout
// line matches --ready, reads VmRSS from /proc/<pid>/status right then ("empty process") and
// again --settle-ms later, stops the process with SIGTERM (SIGKILL after 5 s) and waits for it.
// Prints one JSON object on stdout.
//
// Usage: node startup.js --runs 21 --ready '"type":"ready"' [--settle-ms 300] [--label x] -- CMD ARGS...
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");

const dash = process.argv.indexOf("--");
if (dash < 0 || dash === process.argv.length - 1) {
  console.error("usage: node startup.js --runs N --ready REGEX [--settle-ms MS] [--label L] -- CMD ARGS...");
  process.exit(2);
}
const args = parseArgs(process.argv.slice(2, dash));
const cmd = process.argv[dash + 1];
const cmdArgs = process.argv.slice(dash + 2);
const runs = Number(args.runs ?? 21);
const ready = new RegExp(args.ready ?? '"type":"ready"');
const settleMs = Number(args["settle-ms"] ?? 300);

function once() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    let done = false;
    let result = null;
    const timer = setTimeout(() => {
      if (!done) {
        child.kill("SIGKILL");
        reject(new Error(`no ready line within 20 s; stdout so far: ${buf.slice(0, 300)}`));
      }
    }, 20_000);
    child.stdout.on("data", (chunk) => {
      if (done) return;
      buf += chunk.toString();
      if (!ready.test(buf)) return;
      done = true;
      const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const rssKiB = rss(child.pid);
      setTimeout(() => {
        result = { readyMs, rssKiB, rssSettledKiB: rss(child.pid) };
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }, settleMs);
    });
    child.stderr.on("data", () => {});
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (result) resolve({ ...result, exitCode: code, signal });
      else if (!done) reject(new Error(`exited (${code ?? signal}) before ready: ${buf.slice(0, 300)}`));
    });
    child.on("error", reject);
  });
}

function rss(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

async function main() {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    samples.push(await once());
    await new Promise((r) => setTimeout(r, 100));
  }
  const r = (x, d = 2) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);
  const out = {
    label: args.label ?? cmd,
    runs,
    readyMs: {
      median: r(median(samples.map((s) => s.readyMs))),
      min: r(Math.min(...samples.map((s) => s.readyMs))),
      max: r(Math.max(...samples.map((s) => s.readyMs))),
    },
    rssAtReadyKiB: median(samples.map((s) => s.rssKiB)),
    rssSettledKiB: median(samples.map((s) => s.rssSettledKiB)),
    exitCodes: [...new Set(samples.map((s) => s.exitCode))],
  };
  console.log(JSON.stringify(out));
  console.error(
    `[startup] ${out.label}: ready median ${out.readyMs.median} ms (${out.readyMs.min}..${out.readyMs.max}), ` +
      `RSS at ready ${out.rssAtReadyKiB} KiB, ${settleMs} ms later ${out.rssSettledKiB} KiB`,
  );
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
  console.error(`startup.js: ${err.stack || err}`);
  process.exit(1);
});
