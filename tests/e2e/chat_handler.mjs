// Helpers around the reference chat handler (examples/chat-handler/server.mjs) for the replay
// tests and for fixtures/record.mjs. Not a test file itself (node --test only runs *.test.mjs).
//
// - startChatHandler({ restEndpoint, port, edits }): copies the handler into a temporary folder
//   whose node_modules links to tests/e2e/node_modules (so `@azure/web-pubsub` resolves), optionally
//   applying exact-text edits (to make a "changed" handler), starts it with
//   `WebPubSubConnectionString` pointing at `restEndpoint`, and waits for its `listening on` line.
// - freePort(): a port that was free a moment ago (for --rest-port and the handler).
// - runReplay(args): runs `sio-emu replay` and resolves to { code, stdout, stderr }.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = process.env.SIO_EMU_BIN ?? join(REPO, "target/debug/sio-emu");
export const HANDLER_SOURCE = join(REPO, "examples/chat-handler/server.mjs");
/** The development access key (sio-emu's default for serve, token and replay). */
export const DEV_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH";

const START_TIMEOUT_MS = 10_000;
const E2E_DIR = fileURLToPath(new URL("./", import.meta.url));

export function assertBinary() {
  if (!existsSync(BIN)) {
    throw new Error(`sio-emu binary not found at ${BIN}; run \`cargo build\` or set SIO_EMU_BIN`);
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The environment for child processes, without variables that would change keys or endpoints. */
export function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.SIO_EMU_ACCESS_KEY;
  delete env.SIO_EMU_SECONDARY_KEY;
  if (!("WebPubSubConnectionString" in extra)) delete env.WebPubSubConnectionString;
  return env;
}

/**
 * Starts the chat handler. `edits` is a list of [from, to] exact replacements applied to the
 * source first; each `from` must occur, so a test never silently runs the unchanged handler.
 * Resolves to { port, template, output, stop() } where `template` is the webhook URL template.
 */
export async function startChatHandler({ restEndpoint, port = 0, accessKey = DEV_KEY, edits = [] }) {
  let source = readFileSync(HANDLER_SOURCE, "utf8");
  for (const [from, to] of edits) {
    if (!source.includes(from)) throw new Error(`edit not applicable, text not found: ${from}`);
    source = source.replace(from, to);
  }
  const modules = join(E2E_DIR, "node_modules");
  if (!existsSync(join(modules, "@azure/web-pubsub"))) {
    throw new Error("@azure/web-pubsub is not installed; run `cd tests/e2e && npm install`");
  }
  const dir = mkdtempSync(join(tmpdir(), "sio-emu-chat-handler-"));
  symlinkSync(modules, join(dir, "node_modules"), "dir");
  const file = join(dir, "server.mjs");
  writeFileSync(file, source);
  const child = spawn(process.execPath, [file, String(port)], {
    env: cleanEnv({
      WebPubSubConnectionString: `Endpoint=${restEndpoint};AccessKey=${accessKey};Version=1.0;`,
    }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const handler = {
    child,
    output: "",
    port: undefined,
    template: undefined,
    exited: new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal }))),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await handler.exited;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => (handler.output += chunk));
  const lines = createInterface({ input: child.stdout });
  const listening = new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      handler.output += `${line}\n`;
      const match = /^listening on http:\/\/localhost:(\d+)/.exec(line);
      if (match && handler.port === undefined) resolve(Number(match[1]));
    });
    child.once("exit", (code) =>
      reject(new Error(`chat handler exited (${code}) before listening:\n${handler.output}`)),
    );
  });
  let timer;
  try {
    handler.port = await Promise.race([
      listening,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`chat handler did not start within ${START_TIMEOUT_MS} ms`)),
          START_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (err) {
    await handler.stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  handler.template = `http://localhost:${handler.port}/eventhandler/{event}`;
  return handler;
}

/** Runs `sio-emu replay <args>`; resolves to { code, stdout, stderr } (never rejects on exit). */
export function runReplay(args, { timeout = 60_000 } = {}) {
  assertBinary();
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ["replay", "--color", "never", ...args], {
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sio-emu replay did not finish within ${timeout} ms:\n${stdout}\n${stderr}`));
    }, timeout);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
