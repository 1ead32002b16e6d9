#!/usr/bin/env bash
# sio-emu against the Node socket.io baseline, measured in the same run with the same load
# generator (the baseline's load.js), the same webhook program (webhook.js) and payloads.
#
#   1. copies the Node baseline harness ($BASELINE_DIR) into a temp
#      dir and runs `npm ci` there (node_modules never lands in the repository);
#   2. builds sio-emu in release mode;
#   3. emit-with-ack round trips, interleaved sio-emu / Node per (transport, clients) and
#      repeat: WebSocket at WS_CLIENTS, long-polling at POLL_CLIENTS;
#      sio-emu also runs at LOG_CLIENTS with its live log on (pretty, stdout to a file), and at
#      WS_CLIENTS with the inspector's ring off (--inspector-buffer 0, a third server);
#      then allocations per ack on the serving thread (cargo bench --bench alloc) at ALLOC_CLIENTS;
#   4. idle memory per connection on fresh servers (VmRSS from /proc: idle-proc.js);
#   5. empty-process memory and exec → ready time (startup.js, median of STARTUP_RUNS);
#   6. soak (sio-emu alone, fresh servers): SOAK_CLIENTS under load for SOAK_SECS with VmRSS
#      sampled every SOAK_SAMPLE seconds, then SOAK_IDLE idle WebSocket clients held SOAK_SECS;
#   6b. disconnect storm (sio-emu alone, a fresh server per figure): STORM_CLIENTS idle
#      WebSocket clients connect, close at once, the webhook answers every `disconnected`, and
#      VmRSS is read STORM_SECS later (idle-proc.js --storm); goal: within 20 % of the RSS before
#      they connected plus the inspector's ring (its default bound);
#   7. writes the comparison (ratios sio-emu / Node, goals, commands) to SUMMARY.
#
# Node is server.js --mode webhook --http agent (node:http keep-alive agent). It posts
# {event,sid,ns,data} JSON and acks with the webhook's JSON answer, so its webhook runs with
# --reply echo; sio-emu posts the Socket.IO packet and forwards the answer, so its webhook runs
# with --reply sio-ack. Same program, same payload bytes, one answer per event either way.
#
# Knobs (environment; defaults in brackets):
#   DURATION [10] WARMUP [2] REPEATS [3]    seconds measured / discarded, runs per figure
#   WS_CLIENTS ["1 50 500"] POLL_CLIENTS ["1 50"]
#   CLIENT [sio]             load.js client for WebSocket runs: sio or raw (polling: always sio)
#   SIZE [64]                payload text bytes
#   LOG_CLIENTS ["50"]       WebSocket client counts sio-emu also runs with its live log on
#   RING_OFF [1]             0: no run with --inspector-buffer 0 (server CPU per ack, ring off)
#   ALLOC_CLIENTS ["50"] ALLOC_SECS [5]   allocations per ack (cargo bench --bench alloc); "" skips
#   IDLE_WS ["1000 10000"] IDLE_POLL ["1000 10000"] IDLE_CLIENT [sio]  ("" skips)
#   STARTUP_RUNS [21]
#   SOAK_SECS [600] SOAK_SAMPLE [60] SOAK_CLIENTS [50] SOAK_IDLE [10000]  ("" skips a part)
#   STORM_CLIENTS ["10000"] STORM_SECS [10]   disconnect storm ("" skips)
#   PHASES ["load idle startup soak storm"]
#   PREFLIGHT [0]            1 keeps sio-emu's abuse-protection preflight (webhook.js answers
#                            OPTIONS with 204 and no WebHook-Allowed-Origin, so every event fails)
#   PIN [0]                  1: servers on CPU 0, everything else on CPU 1
#   QUIET_MAX [10] OTHER_MAX [30]   wait for a quiet machine; retry disturbed runs (as the baseline)
#   EMU_PORT [38200] NODE_PORT [38201] EMU_LOG_PORT [38202] EMU_RING_OFF_PORT [38203]
#   ACK_HOOK_PORT [38271] ECHO_HOOK_PORT [38272]
#   BASELINE_DIR (required: the Node socket.io baseline harness)  WORK [mktemp -d]  (reuse WORK to skip npm ci)
#   SIO_EMU_BIN [built here]  SKIP_BUILD [0]
#   OUT [$WORK/results/<stamp>]   raw JSON lines
#   SUMMARY [benches/results/<UTC date>.md]   NOTE [""] (a line quoted at the top of the summary)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

if [ -z "${BASELINE_DIR:-}" ]; then
  echo "run.sh: set BASELINE_DIR to the Node socket.io baseline harness (the folder with server.js, load.js, webhook.js and idle.js)" >&2
  exit 2
fi
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
WS_CLIENTS=${WS_CLIENTS-"1 50 500"}
POLL_CLIENTS=${POLL_CLIENTS-"1 50"}
CLIENT=${CLIENT:-sio}
SIZE=${SIZE:-64}
IDLE_WS=${IDLE_WS-"1000 10000"}
IDLE_POLL=${IDLE_POLL-"1000 10000"}
LOG_CLIENTS=${LOG_CLIENTS-"50"}
RING_OFF=${RING_OFF:-1}
ALLOC_CLIENTS=${ALLOC_CLIENTS-"50"}
ALLOC_SECS=${ALLOC_SECS:-5}
SOAK_SECS=${SOAK_SECS:-600}
SOAK_SAMPLE=${SOAK_SAMPLE:-60}
SOAK_CLIENTS=${SOAK_CLIENTS-"50"}
SOAK_IDLE=${SOAK_IDLE-"10000"}
STORM_CLIENTS=${STORM_CLIENTS-"10000"}
STORM_SECS=${STORM_SECS:-10}
IDLE_CLIENT=${IDLE_CLIENT:-sio}
STARTUP_RUNS=${STARTUP_RUNS:-21}
PHASES=${PHASES:-"load idle startup soak storm"}
PREFLIGHT=${PREFLIGHT:-0}
PIN=${PIN:-0}
QUIET_MAX=${QUIET_MAX:-10}
OTHER_MAX=${OTHER_MAX:-30}
EMU_PORT=${EMU_PORT:-38200}
NODE_PORT=${NODE_PORT:-38201}
EMU_LOG_PORT=${EMU_LOG_PORT:-38202}
EMU_RING_OFF_PORT=${EMU_RING_OFF_PORT:-38203}
ACK_HOOK_PORT=${ACK_HOOK_PORT:-38271}
ECHO_HOOK_PORT=${ECHO_HOOK_PORT:-38272}
SKIP_BUILD=${SKIP_BUILD:-0}
NOTE=${NOTE:-}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
SUMMARY=${SUMMARY:-$HERE/results/$(date -u +%Y-%m-%d).md}
HUB_PATH=/clients/socketio/hubs/bench
CLK_TCK=$(getconf CLK_TCK)

die() { echo "run.sh: $*" >&2; exit 1; }

[[ -f "$BASELINE_DIR/load.js" && -f "$BASELINE_DIR/package-lock.json" ]] ||
  die "no baseline harness at $BASELINE_DIR; set BASELINE_DIR"
command -v node >/dev/null || die "node is required"

# 10,000 idle clients need as many descriptors in the client and in the server (twice as many
# for long-polling clients, which hold two HTTP connections each).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < 12000 )) && [[ " $IDLE_WS $SOAK_IDLE $STORM_CLIENTS " == *" 10000 "* ]]; then
  echo "run.sh: ulimit -n is $(ulimit -n); 10000 idle clients may run out of descriptors" >&2
fi
if (( $(ulimit -n) < 22000 )) && [[ " $IDLE_POLL " == *" 10000 "* ]]; then
  echo "run.sh: ulimit -n is $(ulimit -n); 10000 idle polling clients may run out of descriptors" >&2
fi

# --- harness -------------------------------------------------------------------------------
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/sio-emu-bench.XXXXXX")}
mkdir -p "$WORK"
if [[ ! -d "$WORK/node_modules" ]] || ! cmp -s "$BASELINE_DIR/package-lock.json" "$WORK/package-lock.json"; then
  cp -r "$BASELINE_DIR/." "$WORK/"
  (cd "$WORK" && npm ci --no-audit --no-fund --loglevel=error)
else
  cp -r "$BASELINE_DIR/." "$WORK/"   # refresh scripts, keep node_modules
fi
cp "$HERE"/*.js "$WORK/"
OUT=${OUT:-$WORK/results/$STAMP}
mkdir -p "$OUT"

# --- sio-emu --------------------------------------------------------------------------------
if [[ -z "${SIO_EMU_BIN:-}" ]]; then
  if [[ "$SKIP_BUILD" != 1 ]]; then
    (cd "$REPO" && cargo build --release --bin sio-emu)
  fi
  target_dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  SIO_EMU_BIN=$target_dir/release/sio-emu
fi
[[ -x "$SIO_EMU_BIN" ]] || die "no sio-emu binary at $SIO_EMU_BIN"

# --- processes ------------------------------------------------------------------------------
started_pids=()
stop() { # stop <pid>
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  for pid in "${started_pids[@]}"; do stop "$pid"; done
}
trap cleanup EXIT

ON_CPU0=()
ON_CPU1=()
if [[ "$PIN" == 1 ]]; then
  ON_CPU0=(taskset -c 0)
  ON_CPU1=(taskset -c 1)
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$EMU_PORT" "$NODE_PORT" "$EMU_LOG_PORT" "$EMU_RING_OFF_PORT" "$ACK_HOOK_PORT" "$ECHO_HOOK_PORT"; do
  port_free "$p" || die "port $p is already in use; set EMU_PORT/NODE_PORT/EMU_LOG_PORT/EMU_RING_OFF_PORT/ACK_HOOK_PORT/ECHO_HOOK_PORT"
done

wait_http() { # wait_http <url>
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  die "$1 did not come up"
}

busy_pct() { # machine-wide busy % over 2 s
  local a b
  a=$(head -1 /proc/stat); sleep 2; b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    split(a, x); split(b, y)
    busy = (y[2]+y[3]+y[4]+y[7]+y[8]+y[9]) - (x[2]+x[3]+x[4]+x[7]+x[8]+x[9])
    idle = (y[5]+y[6]) - (x[5]+x[6])
    printf "%d", busy * 100 / (busy + idle)
  }'
}

wait_quiet() {
  (( QUIET_MAX >= 100 )) && return 0
  local busy
  for _ in $(seq 1 120); do
    busy=$(busy_pct)
    if (( busy <= QUIET_MAX )); then return 0; fi
    echo "run.sh: machine ${busy}% busy with other work; waiting" >&2
    sleep 3
  done
  echo "run.sh: machine never went quiet; running anyway" >&2
}

# Appends JSON line $1 to file $2 with "server" $3 and "command" $4 added.
tag_line() {
  node -e 'const r = JSON.parse(process.argv[1]); r.server = process.argv[2]; r.command = process.argv[3];
           if (process.argv[4] === "1") r.contaminated = true; console.log(JSON.stringify(r))' \
    "$1" "$3" "$4" "${5:-0}" >> "$2"
}

quote() { printf '%q ' "$@" | sed 's/ $//'; }

start_hook() { # start_hook <port> <reply>; prints pid
  "${ON_CPU1[@]}" node "$WORK/webhook.js" --port "$1" --reply "$2" > "$OUT/webhook-$2.log" 2>&1 &
  started_pids+=("$!")
  wait_http "http://127.0.0.1:$1/stats"
}

EMU_ARGS=(serve --port "$EMU_PORT" --host 127.0.0.1 --hub bench --anonymous --quiet
  --webhook "http://127.0.0.1:${ACK_HOOK_PORT}/api/events")
[[ "$PREFLIGHT" == 1 ]] || EMU_ARGS+=(--no-preflight)
# The same server with its live log on: pretty (the default format), stdout to a file.
EMU_LOG_ARGS=("${EMU_ARGS[@]}")
for i in "${!EMU_LOG_ARGS[@]}"; do
  [[ ${EMU_LOG_ARGS[$i]} == --quiet ]] && unset 'EMU_LOG_ARGS[i]'
  [[ ${EMU_LOG_ARGS[$i]:-} == "$EMU_PORT" ]] && EMU_LOG_ARGS[i]=$EMU_LOG_PORT
done
EMU_LOG_ARGS=("${EMU_LOG_ARGS[@]}")
# The same server with the inspector's ring off.
EMU_RING_OFF_ARGS=("${EMU_ARGS[@]}" --inspector-buffer 0)
for i in "${!EMU_RING_OFF_ARGS[@]}"; do
  [[ ${EMU_RING_OFF_ARGS[$i]} == "$EMU_PORT" ]] && EMU_RING_OFF_ARGS[i]=$EMU_RING_OFF_PORT
done
NODE_ARGS=(--expose-gc "$WORK/server.js" --port "$NODE_PORT" --mode webhook --http agent
  --path "$HUB_PATH" --webhook "http://127.0.0.1:${ECHO_HOOK_PORT}/api/events")

{
  echo "sio-emu: $(quote "$SIO_EMU_BIN" "${EMU_ARGS[@]}")"
  echo "sio-emu, live log on (stdout to a file): $(quote "$SIO_EMU_BIN" "${EMU_LOG_ARGS[@]}") > live-log.txt"
  echo "sio-emu, ring off: $(quote "$SIO_EMU_BIN" "${EMU_RING_OFF_ARGS[@]}")"
  echo "Node (agent): $(quote node "${NODE_ARGS[@]}")"
  echo "sio-emu's webhook: $(quote node webhook.js --port "$ACK_HOOK_PORT" --reply sio-ack)"
  echo "Node's webhook: $(quote node webhook.js --port "$ECHO_HOOK_PORT" --reply echo)"
  echo "harness copy (working directory of every node command): $WORK"
} > "$OUT/servers.txt"

start_emu() { # sets emu_pid
  "${ON_CPU0[@]}" "$SIO_EMU_BIN" "${EMU_ARGS[@]}" > "$OUT/sio-emu-$1.log" 2>&1 &
  emu_pid=$!
  started_pids+=("$emu_pid")
  wait_http "http://127.0.0.1:${EMU_PORT}/api/health"
}
start_emu_log() { # sets emu_log_pid; the live log goes to a file
  "${ON_CPU0[@]}" "$SIO_EMU_BIN" "${EMU_LOG_ARGS[@]}" > "$OUT/sio-emu-live-log.txt" 2>&1 &
  emu_log_pid=$!
  started_pids+=("$emu_log_pid")
  wait_http "http://127.0.0.1:${EMU_LOG_PORT}/api/health"
}
start_emu_ring_off() { # sets emu_ring_off_pid
  "${ON_CPU0[@]}" "$SIO_EMU_BIN" "${EMU_RING_OFF_ARGS[@]}" > "$OUT/sio-emu-ring-off.log" 2>&1 &
  emu_ring_off_pid=$!
  started_pids+=("$emu_ring_off_pid")
  wait_http "http://127.0.0.1:${EMU_RING_OFF_PORT}/api/health"
}
start_node() { # sets node_pid
  "${ON_CPU0[@]}" node "${NODE_ARGS[@]}" > "$OUT/node-$1.log" 2>&1 &
  node_pid=$!
  started_pids+=("$node_pid")
  wait_http "http://127.0.0.1:${NODE_PORT}/stats"
}

# --- environment record ---------------------------------------------------------------------
commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(cd "$REPO" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then commit="$commit+dirty"; fi
(cd "$WORK" && node -e '
  const fs = require("node:fs"), os = require("node:os");
  const v = (m) => JSON.parse(fs.readFileSync("node_modules/" + m + "/package.json", "utf8")).version;
  console.log(JSON.stringify({
    date: new Date().toISOString(), node: process.version, socketio: v("socket.io"),
    socketioClient: v("socket.io-client"), ws: v("ws"), cpus: os.cpus().length,
    cpuModel: os.cpus()[0].model, memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(),
    loadavg: os.loadavg(), sioEmu: process.argv[1], commit: process.argv[2],
  }));' "$("$SIO_EMU_BIN" --version 2>/dev/null || echo '?')" "$commit") > "$OUT/env.json"
echo "DURATION=$DURATION WARMUP=$WARMUP REPEATS=$REPEATS WS_CLIENTS=$WS_CLIENTS POLL_CLIENTS=$POLL_CLIENTS LOG_CLIENTS=$LOG_CLIENTS RING_OFF=$RING_OFF ALLOC_CLIENTS=$ALLOC_CLIENTS ALLOC_SECS=$ALLOC_SECS CLIENT=$CLIENT SIZE=$SIZE IDLE_WS=$IDLE_WS IDLE_POLL=$IDLE_POLL IDLE_CLIENT=$IDLE_CLIENT STARTUP_RUNS=$STARTUP_RUNS SOAK_SECS=$SOAK_SECS SOAK_SAMPLE=$SOAK_SAMPLE SOAK_CLIENTS=$SOAK_CLIENTS SOAK_IDLE=$SOAK_IDLE STORM_CLIENTS=$STORM_CLIENTS STORM_SECS=$STORM_SECS PHASES=$PHASES PREFLIGHT=$PREFLIGHT PIN=$PIN QUIET_MAX=$QUIET_MAX" > "$OUT/params.txt"
cat "$OUT/env.json"
echo "run.sh: raw results in $OUT" >&2

# --- 3. load --------------------------------------------------------------------------------
run_load() { # run_load <server> <pid> <port> <hook pid> <transport> <client> <clients>
  local server=$1 pid=$2 port=$3 hook=$4 transport=$5 client=$6 n=$7 line other cmd
  cmd=(node load.js --url "http://127.0.0.1:$port" --path "$HUB_PATH" --clients "$n"
    --duration "$DURATION" --warmup "$WARMUP" --transport "$transport" --client "$client"
    --size "$SIZE" --label "$server/$client-$transport" --server-pid "$pid" --webhook-pid "$hook"
    --clk-tck "$CLK_TCK")
  for attempt in 1 2 3 4 5; do
    wait_quiet
    line=$(cd "$WORK" && "${ON_CPU1[@]}" "${cmd[@]}")
    other=$(node -e 'console.log(JSON.parse(process.argv[1]).otherCpuPct ?? 0)' "$line")
    if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN { exit !(o <= m) }'; then
      tag_line "$line" "$OUT/load.jsonl" "$server" "$(quote "${cmd[@]}")"
      return 0
    fi
    echo "$line" >> "$OUT/load-rejected.jsonl"
    echo "run.sh: other processes used ${other}% CPU during the run; retrying (attempt $attempt)" >&2
    sleep 5
  done
  tag_line "$line" "$OUT/load.jsonl" "$server" "$(quote "${cmd[@]}")" 1
}

if [[ " $PHASES " == *" load "* ]]; then
  start_hook "$ACK_HOOK_PORT" sio-ack
  ack_hook_pid=${started_pids[-1]}
  start_hook "$ECHO_HOOK_PORT" echo
  echo_hook_pid=${started_pids[-1]}
  start_emu load
  start_node load
  [[ -n "$LOG_CLIENTS" ]] && start_emu_log
  [[ "$RING_OFF" == 1 ]] && start_emu_ring_off
  matrix=()
  for n in $WS_CLIENTS; do matrix+=("websocket $CLIENT $n"); done
  for n in $POLL_CLIENTS; do matrix+=("polling sio $n"); done
  for n in $LOG_CLIENTS; do matrix+=("websocket $CLIENT $n log"); done
  for r in $(seq 1 "$REPEATS"); do
    for cfg in "${matrix[@]}"; do
      read -r transport client n log <<< "$cfg"
      # Alternate which server goes first, so drift in the machine's state hits both.
      if (( r % 2 )); then order="emu node"; else order="node emu"; fi
      # WebSocket figures also run on the ring-off server, between the other two.
      if [[ $transport == websocket && "$RING_OFF" == 1 ]]; then order=${order/ / emu-ring-off }; fi
      # The live-log figure is sio-emu's alone (compared with its --quiet figure).
      [[ -n "${log:-}" ]] && order="emu-log"
      for s in $order; do
        if [[ $s == emu-log ]]; then
          run_load sio-emu-log "$emu_log_pid" "$EMU_LOG_PORT" "$ack_hook_pid" "$transport" "$client" "$n"
        elif [[ $s == emu-ring-off ]]; then
          run_load sio-emu-ring-off "$emu_ring_off_pid" "$EMU_RING_OFF_PORT" "$ack_hook_pid" "$transport" "$client" "$n"
        elif [[ $s == emu ]]; then
          run_load sio-emu "$emu_pid" "$EMU_PORT" "$ack_hook_pid" "$transport" "$client" "$n"
        else
          run_load node-agent "$node_pid" "$NODE_PORT" "$echo_hook_pid" "$transport" "$client" "$n"
        fi
      done
    done
  done
  curl -fsS "http://127.0.0.1:${NODE_PORT}/stats" > "$OUT/node-final-stats.json" || true
  stop "$emu_pid"
  [[ -n "$LOG_CLIENTS" ]] && stop "$emu_log_pid"
  [[ "$RING_OFF" == 1 ]] && stop "$emu_ring_off_pid"
  stop "$node_pid"
  stop "$ack_hook_pid"
  stop "$echo_hook_pid"
  # Allocations per ack on the serving thread, in-process (benches/alloc.rs): counts, so a
  # busy machine moves them far less than the CPU figures.
  for n in $ALLOC_CLIENTS; do
    wait_quiet
    cmd=(cargo bench --bench alloc -- --clients "$n" --seconds "$ALLOC_SECS" --size "$SIZE" --json "$OUT/alloc-$n.jsonl")
    if (cd "$REPO" && "${cmd[@]}") > "$OUT/alloc-$n.txt" 2>&1; then
      while IFS= read -r line; do tag_line "$line" "$OUT/alloc.jsonl" sio-emu "$(quote "${cmd[@]}")"; done < "$OUT/alloc-$n.jsonl"
    else
      echo "run.sh: allocation bench failed (see $OUT/alloc-$n.txt): $(quote "${cmd[@]}")" >&2
    fi
  done
fi

# --- 4. idle memory -------------------------------------------------------------------------
run_idle() { # run_idle <server> <transport> <clients>
  local server=$1 transport=$2 n=$3 pid port stats cmd line client=$IDLE_CLIENT
  [[ $transport == polling ]] && client=sio
  if [[ $server == sio-emu ]]; then
    start_emu "idle-$transport-$n"; pid=$emu_pid; port=$EMU_PORT; stats=()
  else
    start_node "idle-$transport-$n"; pid=$node_pid; port=$NODE_PORT
    stats=(--stats-url "http://127.0.0.1:$NODE_PORT/stats")
  fi
  wait_quiet
  cmd=(node idle-proc.js --url "http://127.0.0.1:$port" --path "$HUB_PATH" --clients "$n"
    --transport "$transport" --client "$client" --server-pid "$pid" --label "$server" "${stats[@]}")
  if line=$(cd "$WORK" && "${ON_CPU1[@]}" "${cmd[@]}"); then
    tag_line "$line" "$OUT/idle.jsonl" "$server" "$(quote "${cmd[@]}")"
  else
    echo "run.sh: idle run failed: $(quote "${cmd[@]}")" >&2
  fi
  stop "$pid"
}

if [[ " $PHASES " == *" idle "* ]]; then
  start_hook "$ACK_HOOK_PORT" sio-ack
  ack_hook_pid=${started_pids[-1]}
  start_hook "$ECHO_HOOK_PORT" echo
  echo_hook_pid=${started_pids[-1]}
  for n in $IDLE_WS; do
    run_idle sio-emu websocket "$n"
    run_idle node-agent websocket "$n"
  done
  for n in $IDLE_POLL; do
    run_idle sio-emu polling "$n"
    run_idle node-agent polling "$n"
  done
  stop "$ack_hook_pid"
  stop "$echo_hook_pid"
fi

# --- 5. empty process and readiness ----------------------------------------------------------
if [[ " $PHASES " == *" startup "* ]]; then
  wait_quiet
  cmd=(node startup.js --runs "$STARTUP_RUNS" --ready '"type":"ready"' --label sio-emu --
    "$SIO_EMU_BIN" serve --port 0 --host 127.0.0.1 --hub bench --anonymous --quiet --format json
    --webhook "http://127.0.0.1:${ACK_HOOK_PORT}/api/events" --no-preflight)
  line=$(cd "$WORK" && "${cmd[@]}")
  tag_line "$line" "$OUT/startup.jsonl" sio-emu "$(quote "${cmd[@]}")"
  cmd=(node startup.js --runs "$STARTUP_RUNS" --ready 'socket.io server' --label node-agent --
    node --expose-gc "$WORK/server.js" --port 0 --mode webhook --http agent --path "$HUB_PATH"
    --webhook "http://127.0.0.1:${ECHO_HOOK_PORT}/api/events")
  line=$(cd "$WORK" && "${cmd[@]}")
  tag_line "$line" "$OUT/startup.jsonl" node-agent "$(quote "${cmd[@]}")"
fi

# --- 6. soak (sio-emu alone) ----------------------------------------------------------------
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

soak_load() { # soak_load <clients>: load for SOAK_SECS, VmRSS every SOAK_SAMPLE seconds
  local n=$1 load_pid samples=() t=0 line cmd
  start_hook "$ACK_HOOK_PORT" sio-ack
  ack_hook_pid=${started_pids[-1]}
  start_emu "soak-load-$n"
  wait_quiet
  cmd=(node load.js --url "http://127.0.0.1:$EMU_PORT" --path "$HUB_PATH" --clients "$n"
    --duration "$SOAK_SECS" --warmup 0 --transport websocket --client "$CLIENT" --size "$SIZE"
    --label "sio-emu/soak" --server-pid "$emu_pid" --webhook-pid "$ack_hook_pid" --clk-tck "$CLK_TCK")
  (cd "$WORK" && exec "${ON_CPU1[@]}" "${cmd[@]}") > "$OUT/soak-load.out" 2> "$OUT/soak-load.err" &
  load_pid=$!
  started_pids+=("$load_pid")
  while kill -0 "$load_pid" 2>/dev/null && (( t < SOAK_SECS )); do
    sleep "$SOAK_SAMPLE"
    t=$(( t + SOAK_SAMPLE ))
    kill -0 "$load_pid" 2>/dev/null && samples+=("[$t,$(rss_kib "$emu_pid")]")
  done
  wait "$load_pid" 2>/dev/null || true
  line=$(tail -1 "$OUT/soak-load.out")
  [[ $line == "{"* ]] || line='{"errors":null,"failed":true}'
  node -e 'const r = JSON.parse(process.argv[1]); r.kind = "load"; r.soakSecs = Number(process.argv[2]);
           r.sampleSecs = Number(process.argv[3]); r.rssKiB = JSON.parse(process.argv[4]); console.log(JSON.stringify(r))' \
    "$line" "$SOAK_SECS" "$SOAK_SAMPLE" "[$(IFS=,; echo "${samples[*]}")]" > "$OUT/soak-line.json"
  tag_line "$(cat "$OUT/soak-line.json")" "$OUT/soak.jsonl" sio-emu "$(quote "${cmd[@]}")"
  stop "$emu_pid"
  stop "$ack_hook_pid"
}

# idle_alone <label> <jsonl> <kind> <idle-proc args...>: sio-emu alone on a fresh server with its
# webhook, one idle-proc.js run; its line (with "kind" set when <kind> is not empty) goes to <jsonl>
idle_alone() {
  local label=$1 file=$2 kind=$3 cmd line
  shift 3
  start_hook "$ACK_HOOK_PORT" sio-ack
  ack_hook_pid=${started_pids[-1]}
  start_emu "$label"
  wait_quiet
  cmd=(node idle-proc.js --url "http://127.0.0.1:$EMU_PORT" --path "$HUB_PATH" --transport websocket
    --client "$IDLE_CLIENT" --server-pid "$emu_pid" --label sio-emu "$@")
  if line=$(cd "$WORK" && "${ON_CPU1[@]}" "${cmd[@]}"); then
    if [ -n "$kind" ]; then
      line=$(node -e 'const r = JSON.parse(process.argv[1]); r.kind = process.argv[2]; console.log(JSON.stringify(r))' "$line" "$kind")
    fi
    tag_line "$line" "$file" sio-emu "$(quote "${cmd[@]}")"
  else
    echo "run.sh: $label failed: $(quote "${cmd[@]}")" >&2
  fi
  stop "$emu_pid"
  stop "$ack_hook_pid"
}

soak_idle() { # soak_idle <clients>: idle WebSocket clients held SOAK_SECS
  idle_alone "soak-idle-$1" "$OUT/soak.jsonl" idle --clients "$1" --hold "$SOAK_SECS"
}

if [[ " $PHASES " == *" soak "* ]]; then
  for n in $SOAK_CLIENTS; do soak_load "$n"; done
  for n in $SOAK_IDLE; do soak_idle "$n"; done
fi

# --- 6b. disconnect storm (sio-emu alone) ----------------------------------------------------
storm() { # storm <clients>: connect, close at once, every disconnected answered, STORM_SECS, VmRSS
  idle_alone "storm-$1" "$OUT/storm.jsonl" "" --clients "$1" --storm "$STORM_SECS" \
    --webhook-stats "http://127.0.0.1:${ACK_HOOK_PORT}/stats"
}

if [[ " $PHASES " == *" storm "* ]]; then
  for n in $STORM_CLIENTS; do storm "$n"; done
fi

# --- 7. summary ------------------------------------------------------------------------------
mkdir -p "$(dirname "$SUMMARY")"
node "$WORK/compare.js" "$OUT" ${NOTE:+--note "$NOTE"} | tee "$SUMMARY"
echo "run.sh: summary in $SUMMARY; raw results in $OUT" >&2
