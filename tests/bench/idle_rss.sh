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
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh
key=sk-bench-idle-rss
start_mock "$key"
start_gateway "$key" "$((sessions + 100))"
gateway=$gateway_pid

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
exec 3>&- # the holder exits; cleanup stops the rest

echo "gateway: $gateway_url (upstream mock: $mock_url)"
echo "idle sessions: $sessions (each finished one turn and holds its upstream conn)"
echo "gateway VmRSS before: ${before} KiB"
echo "gateway VmRSS after:  ${after} KiB"
awk -v b="$before" -v a="$after" -v n="$sessions" \
  'BEGIN { printf "per idle session (client socket + session + leased upstream conn): %.1f KiB\n", (a - b) / n }'
