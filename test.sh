#!/usr/bin/env bash
# The one test command: lints, Rust unit and integration tests, then the end-to-end tests with
# real Socket.IO clients and Azure SDKs (their npm and pip packages are installed on first use
# into tests/e2e/node_modules and tests/e2e/.venv).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo doc --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

step "inspector page: tsc --noEmit over src/admin/page/*.js (// @ts-check, JSDoc types)"
page=src/admin/page
if [ ! -d $page/node_modules ] || [ $page/package-lock.json -nt $page/node_modules ]; then
  npm ci --prefix $page --no-audit --no-fund --loglevel=error
fi
(cd $page && npx --no-install tsc --noEmit -p jsconfig.json)

step "cargo test"
cargo test --all-targets --quiet
cargo build --quiet
export SIO_EMU_BIN="$PWD/target/debug/sio-emu"

step "end-to-end: node (socket.io-client, @azure/web-pubsub, @azure/web-pubsub-express)"
if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]; then
  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi
(cd tests/e2e && node --test --test-concurrency=2 ./*.test.mjs)

step "end-to-end: python (python-socketio, azure-messaging-webpubsubservice)"
venv=tests/e2e/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$venv/.installed" ] || [ tests/e2e/requirements.txt -nt "$venv/.installed" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
  touch "$venv/.installed"
fi
"$venv/bin/python" -m pytest tests/e2e -q -p no:cacheprovider

step "packages: the npm tarball and the Python wheel, installed into a fresh project and venv"
./packages/test.sh
