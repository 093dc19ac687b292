#!/usr/bin/env bash
# Profiles the tokio gateway's per-event path (release build), for tests/bench/PROFILE.md:
#
#   tests/bench/profile.sh [OUT_DIR]
#
# 1. callgrind: the gateway under `valgrind --tool=callgrind` in front of a native mock; counters
#    reset after a warm-up turn, then 2 sessions × 5 turns × 200 deltas at 1 ms pacing (every
#    event travels alone) and the same unpaced; `callgrind_annotate` by function (self and
#    inclusive) into OUT_DIR.
# 2. heaptrack: allocations per relayed delta, as the difference between two fresh gateways
#    running the same turns (4 sessions × 5 turns) with 200 and with 1,000 deltas per turn, so
#    per-connection and per-turn allocations cancel out; unpaced and at 1 ms pacing.
# 3. heaptrack with 1,000 idle sessions (each finished a turn and holds its lease): the peak
#    heap and its largest consumers, for the RSS per idle session.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:-$(mktemp -d)}
mkdir -p "$out"
command -v heaptrack >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq heaptrack valgrind >/dev/null; }
cargo build --release -q -p wsv2-tokio -p wsv2-mock -p wsv2-tests --bins
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh
# shellcheck source=tests/bench/targets.sh
source tests/bench/targets.sh
bin=target/release key=sk-bench-profile pin_load=() pin_mock=() pin_target=()
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# --- callgrind ---------------------------------------------------------------------------------
for variant in paced unpaced; do
  phase=profile-$variant
  flags=()
  [ "$variant" = paced ] && flags=(--delta-interval 1ms)
  spawn_listening "$phase.mock" "$bin/wsv2-mock-upstream" --listen 127.0.0.1:0 --api-key "$key" "${flags[@]}"
  cg="$out/callgrind.$variant.out"
  rm -f "$cg"*
  start_target tokio "$spawned_url" 16 valgrind --tool=callgrind --callgrind-out-file="$cg" --dump-instr=no
  "$bin/wsv2-loadgen" --api-key "$key" --target "gw=$target_url" --sessions 1 --turns 1 --deltas 20 >/dev/null
  callgrind_control -d "$target_pids" >/dev/null 2>&1
  "$bin/wsv2-loadgen" --api-key "$key" --target "gw=$target_url" --sessions 2 --turns 5 --warmup 0 \
    --deltas 200 --json "$out/callgrind.$variant.json" >/dev/null
  callgrind_control -d "$target_pids" >/dev/null 2>&1
  stop_phase
  callgrind_annotate --inclusive=no "$cg.2" >"$out/callgrind.$variant.self.txt"
  callgrind_annotate --inclusive=yes "$cg.2" >"$out/callgrind.$variant.inclusive.txt"
  log "callgrind $variant: $(awk '/^totals:/ {print $2}' "$cg.2") instructions; see $out/callgrind.$variant.*.txt"
done

# --- heaptrack ---------------------------------------------------------------------------------
calls_of() { grep -m1 '^calls to allocation functions:' "$1" | grep -oE '[0-9]+' | head -n1; }
for variant in unpaced paced; do
  flags=()
  [ "$variant" = paced ] && flags=(--delta-interval 1ms)
  for deltas in 200 1000; do
    phase=profile-heap-$variant-$deltas
    spawn_listening "$phase.mock" "$bin/wsv2-mock-upstream" --listen 127.0.0.1:0 --api-key "$key" "${flags[@]}"
    conf="$work/$phase.conf"
    write_gateway_conf "$conf" "$spawned_url" 16
    ht="$out/heaptrack.$variant.$deltas"
    rm -f "$ht".*
    RUST_LOG=warn spawn_listening "$phase.gw" heaptrack -o "$ht" "$bin/wsv2-gateway" serve --config "$conf"
    heaptrack_pid=$spawned_pid
    "$bin/wsv2-loadgen" --api-key "$key" --target "gw=$spawned_url" --sessions 4 --turns 5 --warmup 0 \
      --deltas "$deltas" --json "$ht.json" >/dev/null
    # heaptrack runs the gateway as its child: stop the gateway (found by its unique config
    # path), then wait for heaptrack to write its file.
    kill "$(pgrep -n -f -- "wsv2-gateway serve --config $conf")"
    wait "$heaptrack_pid" 2>/dev/null || true
    stop_phase
    heaptrack_print -f "$ht".*zst* >"$ht.txt" 2>/dev/null || true
    log "heaptrack $variant, $deltas deltas: $(calls_of "$ht.txt") allocation calls"
  done
  # 4 sessions × 5 turns × 800 extra deltas; per-connection and per-turn allocations cancel.
  log "allocations per relayed delta, $variant (whole gateway process): $(awk \
    -v a="$(calls_of "$out/heaptrack.$variant.200.txt")" -v b="$(calls_of "$out/heaptrack.$variant.1000.txt")" \
    'BEGIN { printf "%.2f", (b - a) / (4 * 5 * 800) }')"
done

# --- heaptrack: what 1,000 idle sessions hold --------------------------------------------------
phase=profile-idle
spawn_listening "$phase.mock" "$bin/wsv2-mock-upstream" --listen 127.0.0.1:0 --api-key "$key"
conf="$work/$phase.conf"
write_gateway_conf "$conf" "$spawned_url" 1000
ht="$out/heaptrack.idle"
rm -f "$ht".*
RUST_LOG=warn spawn_listening "$phase.gw" heaptrack -o "$ht" "$bin/wsv2-gateway" serve --config "$conf"
heaptrack_pid=$spawned_pid
gw_pid=$(pgrep -n -f -- "wsv2-gateway serve --config $conf")
"$bin/wsv2-loadgen" --api-key "$key" --target "gw=$spawned_url" --watch-pid "gw=$gw_pid" --hold-idle \
  --sessions 1000 --session-concurrency 64 --turns 1 --warmup 0 --deltas 4 --json "$ht.json" >/dev/null
kill "$gw_pid"
wait "$heaptrack_pid" 2>/dev/null || true
stop_phase
heaptrack_print -f "$ht".*zst* >"$ht.txt" 2>/dev/null || true
log "idle: $(grep -m1 '^peak heap memory consumption:' "$ht.txt"); top peak consumers in $ht.txt (PEAK MEMORY CONSUMERS)"
log "profiles in $out"
