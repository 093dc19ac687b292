#!/usr/bin/env bash
# Shared by the bench scripts: temp folder, cleanup, and starting the release mock and gateway.
# Source it after `cd` to the repository root; it sets `work` and appends to `pids`.

# The gateways read every WSV2_* variable as a setting and refuse unknown ones; scripts/test.sh
# exports some for the tests (WSV2_REDIS_URL, WSV2_REQUIRE_CLIENTS). A benchmark target is
# configured by its file only.
while IFS= read -r name; do
  unset "$name"
done < <(compgen -e | grep '^WSV2_' || true)

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

# start_mock KEY [MOCK FLAGS...]: starts the release mock; sets mock_url and mock_pid.
start_mock() {
  local key=$1
  shift
  mkfifo "$work/mock.out"
  target/release/wsv2-mock-upstream --listen 127.0.0.1:0 --api-key "$key" "$@" >"$work/mock.out" &
  mock_pid=$!
  pids+=("$mock_pid")
  mock_url=$(await_listening "$work/mock.out")
  cat "$work/mock.out" >/dev/null &
  pids+=($!)
}

# start_gateway KEY CAPACITY: starts the release gateway with the mock as its only account, the
# key as both client key and account token, and CAPACITY as socket cap, account concurrency and
# max conns, plus optional extra `[pool]` lines (e.g. "min_idle_per_account = 0"); sets
# gateway_url and gateway_pid.
start_gateway() {
  local key=$1 capacity=$2 pool_extra=${3:-}
  cat >"$work/gateway.toml" <<TOML
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[[client_keys]]
key = "$key"
max_sockets = $capacity

[[accounts]]
id = 1
name = "mock"
token = "$key"
base_url = "$mock_url"
concurrency = $capacity

[session]
inter_turn_idle_timeout = "1h"

[pool]
max_conns_per_account = $capacity
max_idle_per_account = $capacity
$pool_extra
TOML
  mkfifo "$work/gateway.out"
  RUST_LOG=warn target/release/wsv2-gateway serve --config "$work/gateway.toml" >"$work/gateway.out" &
  gateway_pid=$!
  pids+=("$gateway_pid")
  gateway_url=$(await_listening "$work/gateway.out")
  # Keep draining its stdout so it can never block on a full pipe.
  cat "$work/gateway.out" >/dev/null &
  pids+=($!)
}
