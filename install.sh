#!/usr/bin/env bash
# Builds sio-emu in release mode and installs it into ~/.cargo/bin. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

fail() {
  echo "install.sh: $*" >&2
  exit 1
}

command -v cargo >/dev/null 2>&1 || fail "cargo was not found; install the Rust toolchain (https://rustup.rs) and run ./install.sh again"

echo "Building sio-emu (release)…"
cargo install --path . --locked --force --quiet ||
  fail "the release build failed (see the compiler output above)"

bin="${CARGO_HOME:-$HOME/.cargo}/bin"
[ -x "$bin/sio-emu" ] || fail "the build finished but $bin/sio-emu is missing"

echo "Installed: $("$bin/sio-emu" --version) at $bin/sio-emu"
case ":$PATH:" in
  *":$bin:"*) echo "Run it with: sio-emu serve" ;;
  *) echo "Add $bin to your PATH (e.g. export PATH=\"$bin:\$PATH\"), then run: sio-emu serve" ;;
esac
