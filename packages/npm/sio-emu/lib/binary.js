"use strict";
// Finds the sio-emu binary for this platform. In order: SIO_EMU_BINARY; a per-platform package
// `@sio-emu/<platform>-<arch>` (how a release ships one binary per platform, as optional
// dependencies); the binary bundled in this package under platforms/<platform>-<arch>/ (what
// ./packages/build.sh produces for the platform it runs on).

const fs = require("node:fs");
const path = require("node:path");

const PLATFORMS_DIR = path.join(__dirname, "..", "platforms");

/** The platform key, as used in package and directory names: `linux-x64`, `darwin-arm64`, … */
function platformKey() {
  return `${process.platform}-${process.arch}`;
}

function executableName() {
  return process.platform === "win32" ? "sio-emu.exe" : "sio-emu";
}

/** The platforms this installed package carries a binary for. */
function bundledPlatforms() {
  try {
    return fs.readdirSync(PLATFORMS_DIR).filter((dir) =>
      fs.existsSync(path.join(PLATFORMS_DIR, dir, dir.startsWith("win32-") ? "sio-emu.exe" : "sio-emu")),
    );
  } catch {
    return [];
  }
}

/** The path of the binary to run; throws an Error with a one-line message when there is none. */
function binaryPath() {
  const override = process.env.SIO_EMU_BINARY;
  if (override) return override;
  const key = platformKey();
  const exe = executableName();
  try {
    return require.resolve(`@sio-emu/${key}/bin/${exe}`);
  } catch {
    // Not installed: fall back to the bundled binary.
  }
  const bundled = path.join(PLATFORMS_DIR, key, exe);
  if (fs.existsSync(bundled)) return bundled;
  const have = bundledPlatforms();
  throw new Error(
    `sio-emu: no binary for ${key} in this package (it has: ${have.length ? have.join(", ") : "none"}); ` +
      "build sio-emu from source (`cargo install --path .` or ./install.sh in a clone of its repository) " +
      "and set SIO_EMU_BINARY to the built binary's path",
  );
}

module.exports = { binaryPath, platformKey, bundledPlatforms };
