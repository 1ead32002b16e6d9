#!/usr/bin/env bash
# The packages as users get them: builds both (from the debug build ./test.sh already made,
# unless --profile release), installs the npm tarball into a fresh project and the wheel into a
# fresh venv, each in a temporary directory outside the repository, and runs the examples and
# the packages' own tests there. Nothing of the repository is on the path but the built files.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
[ "${1:-}" = "--profile" ] && profile=${2:?--profile needs release or debug}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./packages/build.sh --profile "$profile" --out "$work/dist" >/dev/null
tgz=$(echo "$work"/dist/sio-emu-*.tgz)
whl=$(echo "$work"/dist/sio_emu-*.whl)
# The examples' client libraries, at the versions the end-to-end tests use.
socketio_client=$(node -p 'require("./tests/e2e/package-lock.json").packages["node_modules/socket.io-client"].version')

# Nothing from the repository's environment leaks in.
unset SIO_EMU_BINARY SIO_EMU_BIN SIO_EMU_ACCESS_KEY SIO_EMU_CONFIG NODE_PATH PYTHONPATH

echo "npm: installing $(basename "$tgz") into a fresh project"
project="$work/node-project"
mkdir -p "$project"
cp examples/node/echo.test.mjs packages/npm/test/package.test.mjs "$project/"
(
  cd "$project"
  echo '{ "name": "sio-emu-package-test", "private": true, "type": "module" }' >package.json
  npm install --no-audit --no-fund --loglevel=error "$tgz" "socket.io-client@$socketio_client"
  node --test --test-concurrency=2 ./*.test.mjs
)

echo "python: installing $(basename "$whl") into a fresh venv"
venv="$work/venv"
python3 -m venv "$venv"
mapfile -t python_deps < <(grep -E '^(pytest|python-socketio\[client\]|websocket-client|requests)$' tests/e2e/requirements.txt)
"$venv/bin/pip" install --quiet --disable-pip-version-check "$whl" "${python_deps[@]}"
suite="$work/python-tests"
mkdir -p "$suite"
cp examples/python/test_echo.py packages/python/tests/test_package.py "$suite/"
(
  cd "$suite"
  PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider -p pytester .
)
