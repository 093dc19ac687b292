#!/usr/bin/env bash
# Measures the gateway's resident memory with N idle sessions (default 1000).
#
# Each session is a client WebSocket that finished one turn and stays open, so the gateway holds
# its session and the upstream conn it leased (the mock is the upstream; the account's concurrency
# and max conns are above N, so every session leases its own conn). RSS comes from
# /proc/PID/status (VmRSS) right after the gateway starts and once every session is idle.
#
#   tests/bench/idle_rss.sh [N]
#
# Needs a release build (done here) and tests/clients/setup.sh (the `websockets` package).
set -euo pipefail
cd "$(dirname "$0")/../.."

sessions="${1:-1000}"
python=tests/clients/.venv/bin/python
if [ ! -x "$python" ]; then
  echo "run tests/clients/setup.sh first (needs the websockets package)" >&2
  exit 1
fi
# Client + gateway (client side, upstream side) + mock sockets, all in this process tree.
ulimit -n "$((sessions * 4 + 1024))"

cargo build --release -q -p wsv2-tokio -p wsv2-mock --bins
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits for a process's first stdout line starting with "listening on " and prints its URL.
await_listening() {
  local fifo=$1 line
  while IFS= read -r line; do
    case "$line" in "listening on "*) echo "${line#listening on }"; return 0 ;; esac
  done <"$fifo"
  return 1
}

key=sk-bench-idle-rss
mkfifo "$work/mock.out"
target/release/wsv2-mock-upstream --listen 127.0.0.1:0 --api-key "$key" >"$work/mock.out" &
pids+=($!)
mock_url=$(await_listening "$work/mock.out")

cat >"$work/gateway.toml" <<TOML
listen = "127.0.0.1:0"

[[client_keys]]
key = "$key"
max_sockets = $((sessions + 100))

[[accounts]]
id = 1
name = "mock"
token = "$key"
base_url = "$mock_url"
concurrency = $((sessions + 100))

[session]
inter_turn_idle_timeout = "1h"

[pool]
max_conns_per_account = $((sessions + 100))
max_idle_per_account = $((sessions + 100))
TOML

mkfifo "$work/gateway.out"
RUST_LOG=warn target/release/wsv2-gateway serve --config "$work/gateway.toml" >"$work/gateway.out" &
gateway=$!
pids+=("$gateway")
gateway_url=$(await_listening "$work/gateway.out")
# Keep draining the gateway's stdout so it can never block on a full pipe.
cat "$work/gateway.out" >/dev/null &
pids+=($!)

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
before=$(rss_kib "$gateway")

mkfifo "$work/hold.in" "$work/hold.out"
"$python" tests/bench/idle_sessions.py "$gateway_url" "$key" "$sessions" <"$work/hold.in" >"$work/hold.out" &
holder=$!
pids+=("$holder")
exec 3>"$work/hold.in" # stdin of the holder stays open until we close fd 3
read -r ready count <"$work/hold.out"
if [ "$ready" != READY ] || [ "$count" != "$sessions" ]; then
  echo "the client did not get $sessions sessions idle (got: $ready $count)" >&2
  exit 1
fi
after=$(rss_kib "$gateway")
exec 3>&-
wait "$holder" || true

echo "gateway: $gateway_url (upstream mock: $mock_url)"
echo "idle sessions: $sessions (each finished one turn and holds its upstream conn)"
echo "gateway VmRSS before: ${before} KiB"
echo "gateway VmRSS after:  ${after} KiB"
awk -v b="$before" -v a="$after" -v n="$sessions" \
  'BEGIN { printf "per idle session (client socket + session + leased upstream conn): %.1f KiB\n", (a - b) / n }'
