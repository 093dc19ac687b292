#!/usr/bin/env bash
# wsv2-loadgen against the mock directly and through the gateway, in ONE invocation (rounds
# alternate the targets), so both see the same machine state. Release builds.
#
#   tests/bench/loadgen_compare.sh [SESSIONS] [TURNS] [DELTAS] [ROUNDS]
#
# Defaults: 20 sessions × 10 turns × 200 deltas, 1 ms between deltas, 2 rounds. The mock stamps
# every delta with its send time, so per-event latency is mock send → client receive.
set -euo pipefail
cd "$(dirname "$0")/../.."

sessions="${1:-20}"
turns="${2:-10}"
deltas="${3:-200}"
rounds="${4:-2}"
ulimit -n "$((sessions * 8 + 1024))"

cargo build --release -q -p wsv2-tokio -p wsv2-mock -p wsv2-tests --bins
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh
key=sk-bench-loadgen
start_mock "$key" --delta-interval 1ms
start_gateway "$key" "$((sessions + 100))"

echo "mock: $mock_url   gateway: $gateway_url"
echo "loadgen: $sessions sessions × $turns turns × $deltas deltas at 1 ms, $rounds rounds"
target/release/wsv2-loadgen \
  --target "direct=$mock_url" --target "gateway=$gateway_url" \
  --api-key "$key" --sessions "$sessions" --turns "$turns" --deltas "$deltas" \
  --rounds "$rounds" --json "${LOADGEN_JSON:-/dev/null}"
