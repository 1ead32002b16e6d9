#!/usr/bin/env bash
# Builds sio-emu for this platform and packs it twice: the npm package
# (target/packages/sio-emu-<version>.tgz) and the Python wheel
# (target/packages/sio_emu-<version>-py3-none-<platform>.whl). Versions come from Cargo.toml.
#
#   ./packages/build.sh                   # release build (the default)
#   ./packages/build.sh --profile debug   # pack the debug build instead (what ./test.sh does)
#   ./packages/build.sh --out DIR         # write the packages to DIR (default: target/packages)
#
# Needs cargo, node/npm (for `npm pack`) and python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "packages/build.sh: $*" >&2
  exit 2
}

profile=release
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || fail "--profile needs release or debug"; profile=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || fail "--out needs a directory"; out=$2; shift 2 ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
  esac
done
for tool in cargo npm node python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool was not found; it is needed to build the packages"
done

case "$profile" in
  release) cargo build --release --locked --quiet ;;
  debug) cargo build --locked --quiet ;;
  *) fail "--profile must be release or debug, not '$profile'" ;;
esac
exe=sio-emu
case "$(uname -s)" in MINGW* | MSYS* | CYGWIN*) exe=sio-emu.exe ;; esac
# The version, and the target directory (CARGO_TARGET_DIR and .cargo/config.toml honoured).
{
  read -r version
  read -r target_dir
} < <(cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, sys
meta = json.load(sys.stdin)
print(next(p["version"] for p in meta["packages"] if p["name"] == "sio-emu"))
print(meta["target_directory"])')
binary="$target_dir/$profile/$exe"
out=${out:-$target_dir/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# Debug symbols are most of a debug build's size; the packages do not need them.
cp "$binary" "$stage/$exe"
if [ "$profile" = debug ] && command -v strip >/dev/null 2>&1; then
  strip --strip-debug "$stage/$exe" 2>/dev/null || true
fi

# npm: one package carrying this platform's binary under platforms/<platform>-<arch>/.
npm_dir="$stage/npm"
mkdir -p "$npm_dir"
cp -R packages/npm/sio-emu/. "$npm_dir/"
platform=$(node -p 'process.platform + "-" + process.arch')
mkdir -p "$npm_dir/platforms/$platform"
cp "$stage/$exe" "$npm_dir/platforms/$platform/$exe"
chmod 755 "$npm_dir/platforms/$platform/$exe" "$npm_dir/bin/sio-emu.js"
node -e '
  const fs = require("fs"), file = process.argv[1];
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
  pkg.version = process.argv[2];
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
' "$npm_dir/package.json" "$version"
tgz=$(cd "$npm_dir" && npm pack --silent --pack-destination "$out")
echo "$out/$tgz"

# Python: a wheel with the binary as package data (standard library zipfile, no build backend).
python3 packages/python/build_wheel.py --binary "$stage/$exe" --version "$version" --out "$out"
