#!/usr/bin/env node
"use strict";
// `sio-emu …` from npm: runs the platform's binary with the same arguments and stdio, forwards
// SIGINT, SIGTERM and SIGHUP to it, and exits the way it exited (its exit code, or the same
// signal, so a shell sees 128 + the signal number).

const { spawn } = require("node:child_process");
const { binaryPath } = require("../lib/binary.js");

let binary;
try {
  binary = binaryPath();
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"];
const child = spawn(binary, process.argv.slice(2), { stdio: "inherit" });
const forward = (signal) => child.kill(signal);
for (const signal of FORWARDED) process.on(signal, forward);

child.on("error", (error) => {
  process.stderr.write(`sio-emu: cannot run ${binary}: ${error.message}\n`);
  process.exit(error.code === "ENOENT" ? 127 : 126);
});

child.on("exit", (code, signal) => {
  for (const name of FORWARDED) process.off(name, forward);
  if (signal) {
    process.kill(process.pid, signal);
    // Signals Node.js cannot die of (none of the forwarded ones): the shell convention.
    setTimeout(() => process.exit(128 + (require("node:os").constants.signals[signal] ?? 0)), 100);
  } else {
    process.exit(code ?? 1);
  }
});
