"use strict";
// `start()`: runs `sio-emu serve` for a test, waits for its `ready` line and hands back the
// endpoint, port, connection string, inspector URL, a token minter and `stop()`.

const { spawn, execFileSync } = require("node:child_process");
const readline = require("node:readline");
const { binaryPath } = require("./binary.js");

const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** How much of serve's stderr is kept to explain a failed start or stop. */
const STDERR_TAIL_BYTES = 8192;

/** The `serve` command line for `options`. */
function serveArgs(options) {
  const argv = ["serve", "--port", String(options.port ?? 0), "--format", "json", "--color", "never"];
  // The service stops when this process goes away, however it goes (stdin is a pipe from here).
  argv.push("--stop-on-stdin-close");
  for (const hub of options.hubs ?? []) argv.push("--hub", hub);
  if (options.webhook != null) argv.push("--webhook", options.webhook);
  if (options.anonymous) argv.push("--anonymous");
  if (options.accessKey != null) argv.push("--access-key", options.accessKey);
  if (options.config != null) argv.push("--config", options.config);
  if (options.record != null) argv.push("--record", options.record);
  argv.push(...(options.args ?? []));
  return argv;
}

/** An Error carrying serve's own error line as its message, its hint and exit status. */
function serveError(stderr, fallback, status) {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  const errorLine = lines.find((l) => l.startsWith("sio-emu:")) ?? lines[0] ?? fallback;
  const error = new Error(errorLine);
  const hint = lines.find((l) => l.startsWith("hint:"));
  if (hint) error.hint = hint.slice("hint:".length).trim();
  error.stderr = stderr;
  Object.assign(error, status);
  return error;
}

function describeExit({ exitCode, signal }) {
  return signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
}

/**
 * Starts `sio-emu serve` (on a free port unless `port` is given) and resolves once it listens.
 * Rejects with serve's own error line when it cannot start (port taken, bad config, bad flag).
 */
function start(options = {}) {
  let binary;
  try {
    binary = binaryPath();
  } catch (error) {
    return Promise.reject(error);
  }
  const child = spawn(binary, serveArgs(options), {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...(options.env ?? {}) },
  });
  let stderr = "";
  let ready = null;
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
    if (ready) process.stderr.write(chunk);
  });
  const exited = new Promise((resolve) => {
    child.on("exit", (exitCode, signal) => resolve({ exitCode, signal }));
  });
  const lines = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });

  return new Promise((resolve, reject) => {
    const timeoutMs = options.readyTimeout ?? DEFAULT_READY_TIMEOUT_MS;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sio-emu serve printed no ready line within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`sio-emu: cannot run ${binary}: ${error.message}`));
    });
    exited.then(async (status) => {
      if (ready) return;
      clearTimeout(timer);
      // stderr may still hold the last bytes: wait for the stream to end.
      if (!child.stderr.readableEnded) await new Promise((r) => child.stderr.once("close", r));
      reject(serveError(stderr, `sio-emu serve ${describeExit(status)} before it was ready`, status));
    });
    lines.on("line", (line) => {
      if (ready) {
        if (options.log) options.log(parseLine(line));
        return;
      }
      const parsed = parseLine(line);
      if (parsed.type !== "ready") return;
      ready = parsed;
      clearTimeout(timer);
      // A test that forgets stop() must not keep the runner alive; the service still goes
      // when this process exits (its stdin closes).
      child.unref();
      for (const stream of [child.stdin, child.stdout, child.stderr]) stream.unref?.();
      resolve(emulator(child, binary, ready, exited, () => stderr));
    });
  });
}

function parseLine(line) {
  try {
    return JSON.parse(line);
  } catch {
    return { type: "text", line };
  }
}

/** The handle `start()` resolves with. */
function emulator(child, binary, ready, exited, stderr) {
  let stopping = null;
  const defaultHub = ready.hubs?.[0] ?? "hub";
  return {
    endpoint: ready.endpoint,
    port: ready.port,
    connectionString: ready.connectionString,
    inspector: ready.inspector,
    hubs: ready.hubs ?? [],
    pid: child.pid,
    ready,
    /** The Socket.IO client `path` of a hub. */
    clientPath(hub = defaultHub) {
      return `/clients/socketio/hubs/${hub}`;
    },
    /** A client access token minted by `sio-emu token` with this service's key and endpoint. */
    token({ hub = defaultHub, userId, groups = [], roles = [], minutes = 60 } = {}) {
      const argv = ["token", "--connection-string", ready.connectionString, "--hub", hub];
      argv.push("--expires-in", `${minutes}m`);
      if (userId != null) argv.push("--user", String(userId));
      for (const group of groups) argv.push("--group", group);
      for (const role of roles) argv.push("--role", role);
      try {
        return execFileSync(binary, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
      } catch (error) {
        throw serveError(String(error.stderr ?? ""), `sio-emu token failed: ${error.message}`, {
          exitCode: error.status,
        });
      }
    },
    /** SIGTERM, then the exit: resolves when serve exited 0, rejects when it failed. */
    stop() {
      if (!stopping) {
        child.ref();
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        stopping = exited.then((status) => {
          if (status.exitCode === 0) return;
          throw serveError(stderr(), `sio-emu serve ${describeExit(status)}`, status);
        });
      }
      return stopping;
    },
  };
}

module.exports = { start, binaryPath };
