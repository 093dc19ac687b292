#!/usr/bin/env bash
# wsv2-loadgen in HTTP SSE mode (one POST /v1/responses per turn) against the mock directly and
# through the gateway's HTTP bridge, in ONE invocation (rounds alternate the targets), then the
# pool reuse ratio of a separate sequential HTTP run through the gateway, counted from the
# mock's --record file (reuse = 1 - upgrades / turns). Release builds.
#
#   tests/bench/loadgen_compare_http.sh [SESSIONS] [TURNS] [DELTAS] [ROUNDS] [REUSE_TURNS]
#
# Defaults: 20 sessions × 10 turns × 200 deltas, 1 ms between deltas, 2 rounds; 1000 reuse turns.
set -euo pipefail
cd "$(dirname "$0")/../.."

sessions="${1:-20}"
turns="${2:-10}"
deltas="${3:-200}"
rounds="${4:-2}"
reuse_turns="${5:-1000}"
ulimit -n "$((sessions * 8 + 1024))"

[[ -n "${NO_BUILD:-}" ]] || cargo build --release -q -p wsv2-tokio -p wsv2-mock -p wsv2-tests --bins
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh
key=sk-bench-loadgen-http
record="$work/mock.jsonl"
start_mock "$key" --delta-interval 1ms --record "$record"
start_gateway "$key" "$((sessions + 100))"

echo "mock: $mock_url   gateway: $gateway_url"
echo "loadgen (sse): $sessions sessions × $turns turns × $deltas deltas at 1 ms, $rounds rounds"
target/release/wsv2-loadgen --mode sse \
  --target "direct=${mock_url/ws:/http:}" --target "gateway=${gateway_url/ws:/http:}" \
  --api-key "$key" --sessions "$sessions" --turns "$turns" --deltas "$deltas" \
  --rounds "$rounds" --json "${LOADGEN_JSON:-/dev/null}"

# Reuse: a fresh mock and gateway (min_idle_per_account = 0, so only demand dials) and one
# client sending REUSE_TURNS sequential HTTP turns (plus loadgen's one warm-up turn); every
# upgrade and create the gateway sends is in the mock's record.
outer_work=$work
work="$outer_work/reuse"
mkdir "$work"
record="$work/mock.jsonl"
start_mock "$key" --record "$record"
start_gateway "$key" 4 "min_idle_per_account = 0"
work=$outer_work
echo "reuse run: 1 session × $reuse_turns sequential HTTP turns (+1 warm-up) × 4 deltas, fresh gateway"
target/release/wsv2-loadgen --mode sse --target "gateway=${gateway_url/ws:/http:}" \
  --api-key "$key" --sessions 1 --turns "$reuse_turns" --deltas 4 --rounds 1 >/dev/null
kill "$gateway_pid" "$mock_pid"
wait "$mock_pid" 2>/dev/null || true
turns_sent=$((reuse_turns + 1))
upgrades=$(grep -c '"kind":"handshake"' "$record" || true)
creates=$(grep -c '"type":"response.create"' "$record" || true)
posts=$(grep -c '"kind":"http"' "$record" || true)
echo "reuse: turns=$turns_sent upstream_creates=$creates upgrades=$upgrades upstream_posts=$posts" \
  "reuse_ratio=$(awk -v u="$upgrades" -v t="$turns_sent" 'BEGIN { printf "%.4f", 1 - u / t }')"
