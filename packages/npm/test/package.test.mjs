// The npm package as a user gets it: run from a project that installed the built tarball
// (./packages/test.sh does that). Covers the bin shim (exit codes, signals, SIO_EMU_BINARY,
// unsupported platforms) and start() / stop() (a taken port, no process left behind, none
// orphaned when the test runner goes away).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { start } from "sio-emu";

const require = createRequire(import.meta.url);
const cjs = require("sio-emu");
const shim = path.resolve("node_modules/.bin/sio-emu");
const packageDir = path.dirname(require.resolve("sio-emu/package.json"));
const version = require("sio-emu/package.json").version;
// Inside the project, so scripts written here resolve the installed package.
const tmp = fs.mkdtempSync(path.join(process.cwd(), ".sio-emu-test-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Is `pid` gone (no such process, or a zombie nobody reaped yet)? */
function gone(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code === "ESRCH") return true;
    throw error;
  }
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].startsWith("Z");
  } catch {
    return true;
  }
}

/** Waits (up to 20 s) until `pid` is gone. */
async function waitGone(pid) {
  const deadline = Date.now() + 20_000;
  while (!gone(pid)) {
    assert.ok(Date.now() < deadline, `process ${pid} is still running`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts the shim with `args`; resolves with the child and its first stdout line, parsed. */
async function spawnServe(args) {
  const child = spawn(shim, ["serve", "--port", "0", "--format", "json", "--color", "never", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const [first] = await once(lines, "line");
  const output = [first];
  lines.on("line", (line) => output.push(line));
  const exited = once(child, "exit");
  return { child, ready: JSON.parse(first), output, exited };
}

test("npx sio-emu runs the bundled binary", () => {
  const run = spawnSync("npx", ["--no-install", "sio-emu", "--version"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), `sio-emu ${version}`);
  assert.ok(fs.existsSync(path.join(packageDir, "platforms", `${process.platform}-${process.arch}`)));
});

test("the shim exits with the binary's exit code", () => {
  const invalid = spawnSync(shim, ["token", "verify", "not-a-jwt"], { encoding: "utf8" });
  assert.equal(invalid.status, 1, invalid.stderr);
  const usage = spawnSync(shim, ["serve", "--no-such-flag"], { encoding: "utf8" });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /^sio-emu: /);
});

test("SIGTERM to the shim reaches serve, which shuts down gracefully and exits 0", async () => {
  const { child, ready, output, exited } = await spawnServe(["--webhook", "builtin:echo"]);
  assert.equal(ready.type, "ready");
  child.kill("SIGTERM");
  const [code, signal] = await exited;
  assert.deepEqual([code, signal], [0, null]);
  assert.ok(output.some((line) => JSON.parse(line).type === "shuttingDown"), output.join("\n"));
  await assert.rejects(fetch(`http://127.0.0.1:${ready.port}/api/health`));
});

test("a signal that kills the binary kills the shim the same way", async () => {
  const { child, exited } = await spawnServe([]);
  child.kill("SIGHUP");
  const [code, signal] = await exited;
  assert.deepEqual([code, signal], [null, "SIGHUP"]);
});

test("SIO_EMU_BINARY overrides the binary", () => {
  const fake = path.join(tmp, "fake-sio-emu");
  fs.writeFileSync(fake, '#!/bin/sh\necho "fake $*"\nexit 7\n', { mode: 0o755 });
  const run = spawnSync(shim, ["serve", "--port", "0"], {
    encoding: "utf8",
    env: { ...process.env, SIO_EMU_BINARY: fake },
  });
  assert.equal(run.status, 7);
  assert.equal(run.stdout, "fake serve --port 0\n");
});

test("an unsupported platform gets a one-line error naming it", () => {
  const shimFile = fs.realpathSync(shim);
  const script = `Object.defineProperty(process, "platform", { value: "aix" }); require(${JSON.stringify(shimFile)});`;
  const run = spawnSync(process.execPath, ["-e", script, "serve"], { encoding: "utf8" });
  assert.equal(run.status, 1);
  const lines = run.stderr.trim().split("\n");
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0], /^sio-emu: no binary for aix-/);
  assert.match(lines[0], /build sio-emu from source/);
  assert.match(lines[0], /SIO_EMU_BINARY/);
});

test("start() resolves with the service's details, and stop() leaves no process behind", async () => {
  const emu = await start({ hubs: ["chat"], anonymous: true });
  assert.equal(emu.endpoint, `http://localhost:${emu.port}`);
  assert.match(emu.connectionString, new RegExp(`^Endpoint=http://localhost:${emu.port};AccessKey=.+;Version=1\\.0;$`));
  assert.equal(emu.inspector, `${emu.endpoint}/_emu/`);
  assert.deepEqual(emu.hubs, ["chat"]);
  assert.equal(emu.ready.anonymous, true);
  const health = await fetch(`http://127.0.0.1:${emu.port}/api/health`);
  assert.equal(health.status, 200);
  const token = emu.token({ hub: "chat", userId: "alice", groups: ["g1"], minutes: 5 });
  const check = spawnSync(shim, ["token", "verify", token, "--hub", "chat", "--connection-string", emu.connectionString], { encoding: "utf8" });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /"sub": "alice"/);
  await emu.stop();
  assert.ok(gone(emu.pid), "serve is still running after stop()");
  await emu.stop(); // a second stop() is harmless
});

test("require('sio-emu') exposes the same start()", () => {
  assert.equal(cjs.start, start);
});

test("start() on a taken port rejects with serve's own error line", async () => {
  const blocker = net.createServer();
  blocker.listen(0, "127.0.0.1");
  await once(blocker, "listening");
  const { port } = blocker.address();
  try {
    await assert.rejects(start({ port }), (error) => {
      assert.match(error.message, new RegExp(`^sio-emu: cannot listen on localhost:${port}: .*in use`, "i"));
      assert.match(error.hint, /--port 0/);
      assert.equal(error.exitCode, 2);
      return true;
    });
  } finally {
    blocker.close();
  }
});

test("start() with a bad config file rejects with serve's error line", async () => {
  const bad = path.join(tmp, "bad.toml");
  fs.writeFileSync(bad, "this is [not toml\n");
  await assert.rejects(start({ config: bad }), /^Error: sio-emu: invalid configuration /);
});

test("stop() rejects when serve did not exit cleanly", async () => {
  const emu = await start();
  process.kill(emu.pid, "SIGKILL");
  await assert.rejects(emu.stop(), /sio-emu serve was killed by SIGKILL/);
});

/** Runs `body` in a child Node.js process that starts an emulator and prints its pid. */
async function runnerThat(body) {
  const script = path.join(tmp, `runner-${Math.random().toString(36).slice(2)}.mjs`);
  fs.writeFileSync(
    script,
    `import { start } from "sio-emu";\nconst emu = await start();\nconsole.log(emu.pid);\n${body}\n`,
  );
  const child = spawn(process.execPath, [script], { cwd: process.cwd(), stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(readline.createInterface({ input: child.stdout }), "line");
  return { child, pid: Number(line) };
}

test("a runner that forgets stop() still exits, and serve goes with it", async () => {
  const { child, pid } = await runnerThat("");
  const [code] = await once(child, "exit");
  assert.equal(code, 0);
  await waitGone(pid);
});

test("a runner killed with SIGKILL takes serve with it", async () => {
  const { child, pid } = await runnerThat("setInterval(() => {}, 1000);");
  assert.ok(!gone(pid));
  child.kill("SIGKILL");
  await once(child, "exit");
  await waitGone(pid);
});
