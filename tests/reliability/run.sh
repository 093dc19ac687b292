#!/usr/bin/env bash
# The reliability suite of wsv2 (issue 14): workloads 1–4 against both shells (tokio
# `wsv2-gateway`, smol `wsv2-gateway-smol`) in front of `wsv2-mock-upstream`, raw JSON per
# workload and shell, then RELIABILITY.md generated from it (tables, soak plots as SVG).
#
#   tests/reliability/run.sh [--smoke | --medium] [--out DIR] [--shells tokio,smol]
#                            [--workloads 1,2,3,4,5,6] [--faults a,b] [--soak DUR] [--no-tls]
#                            [--keep]
#
# Workloads (pass rules in RELIABILITY.md):
#   1 integrity  N sessions × T turns at once, mixed: default lane store:false chains, 3 named
#                lanes, store:true chains, HTTP POST + SSE; every event checked
#   2 storm      N sessions opening at once on a cold pool, then SIGTERM, a new gateway on the
#                same port and every client reconnecting at once
#   3 faults     sessions under load, each fault injected mid-run then cleared (the mock's
#                runtime switches through its admin port; a mock restart; `wsv2-reliability
#                relay` in front of the mock for TLS, as the account's CONNECT proxy, and in
#                front of a private redis-server; clients of the load misbehaving; a SIGTERM
#                and a new gateway on the same port); --faults picks rows by name
#   4 soak       mixed load with a fault every few seconds for --soak DUR, sampling RSS (anonymous
#                and file-backed), fds, threads, pool gauges and (medium and full: gateways
#                built with `alloc-count`) the live heap and glibc's free bytes
#   5, 6         the fuzz smoke, hostile-input and security tests (full and medium runs)
# The mock runs as a real upstream would: 200 ms handshake delay, TLS (a CA and leaf generated
# with openssl at start, trusted through the gateway's tls_ca_file), short lifetime.
#
# Sizes: full (default) 2,000 × 20 / 1,000 / 200 / --soak 30m, release binaries, results in
# tests/reliability/results/ and RELIABILITY.md at the root. --medium: 500 × 10 / 500 / 100 /
# 5m on test-profile binaries, same outputs. --smoke (CI): 40 × 4 / 60 / 30 / 60 s on
# test-profile binaries, everything in a temporary folder (or --out); fails when a rule of
# workload 1 or 2 is not met. RELIABILITY_LOGS=DIR keeps the processes' logs (the gateways log
# at RELIABILITY_RUST_LOG, default warn);
# --keep runs the chosen workloads into an --out that already holds others (a report run in
# parts, e.g. the load-sensitive workloads 1 and 2 on a quiet machine): earlier results stay, and
# the report names each part's workloads, commit, date and machine load.
# RELIABILITY_GATEWAY_TOML is appended to every gateway configuration (experiments, e.g. a
# whole `[store]` section).
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=full out="" shells="tokio,smol" workloads="1,2,3,4,5,6" soak="" tls=1 only_faults="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke ;;
    --medium) mode=medium ;;
    --out) out=$2; shift ;;
    --shells) shells=$2; shift ;;
    --workloads) workloads=$2; shift ;;
    --soak) soak=$2; shift ;;
    --no-tls) tls=0 ;;
    --keep) keep=1 ;;
    --faults) only_faults=$2; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
wants() { [[ ",$workloads," == *",$1,"* ]]; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

case "$mode" in
  full) w1_sessions=2000 w1_turns=20 w2_sessions=1000 w3_sessions=200 soak=${soak:-30m}
        profile=(--release) bin=target/release ;;
  medium) w1_sessions=500 w1_turns=10 w2_sessions=500 w3_sessions=100 soak=${soak:-5m}
          profile=() bin=target/debug ;;
  smoke) w1_sessions=40 w1_turns=4 w2_sessions=60 w3_sessions=30 soak=${soak:-60s}
         profile=() bin=target/debug ;;
esac
# Sizes can be overridden one by one (e.g. the issue's 1,000-session storm on test-profile
# binaries: W2_SESSIONS=1000 … --medium --workloads 2).
w1_sessions=${W1_SESSIONS:-$w1_sessions} w1_turns=${W1_TURNS:-$w1_turns}
w2_sessions=${W2_SESSIONS:-$w2_sessions} w3_sessions=${W3_SESSIONS:-$w3_sessions}
if [ "$mode" = smoke ]; then
  out=${out:-$(mktemp -d)}
  md=$out/RELIABILITY.md
elif [ -n "$out" ]; then
  md=$out/RELIABILITY.md
else
  out=tests/reliability/results md=RELIABILITY.md
fi
mkdir -p "$out"
if [ "$keep" = 1 ]; then
  # Only what this run's workloads write is replaced.
  for w in ${workloads//,/ }; do
    case "$w" in
      4) rm -f "$out"/w4-*.json "$out"/soak-*.svg ;;
      5 | 6) rm -f "$out"/extra-5-6.md ;;
      *) rm -f "$out"/w"$w"-*.json ;;
    esac
  done
else
  rm -f "$out"/*.json "$out"/extra-*.md "$out"/*.svg
fi

# The gateways read every WSV2_* variable as a setting; scripts/test.sh exports some.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^WSV2_' || true)

# Enough descriptors for every client, gateway and upstream socket of the biggest workload.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$(( hard < 65536 ? hard : 65536 ))"

log "building ${profile[*]:-test-profile} binaries"
# The smoke names the test targets too, so right after `cargo test` in CI nothing recompiles.
targets=(--bins)
[ "$mode" = smoke ] && targets+=(--tests)
# RELIABILITY_NO_BUILD=1 uses the binaries as they are (when iterating on the script).
[ -n "${RELIABILITY_NO_BUILD:-}" ] || cargo build "${profile[@]}" -q --workspace "${targets[@]}"
rel=$bin/wsv2-reliability

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${RELIABILITY_LOGS:-}" ]; then mkdir -p "$RELIABILITY_LOGS"; cp "$work"/*.log "$work"/*.err "$RELIABILITY_LOGS"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

key=sk-reliability-client
token=sk-reliability-upstream

# --- TLS material: a CA and a leaf for 127.0.0.1, fresh for this run ------------------------
mock_tls=()
if [ "$tls" = 1 ]; then
  scripts/tls-material.sh "$work" wsv2-reliability-ca
  mock_tls=(--tls-cert "$work/leaf.pem" --tls-key "$work/leaf.key")
fi

# --- processes -------------------------------------------------------------------------------
# spawn NAME CMD...: starts CMD, waits for its "listening on URL" line (and the mock's admin
# line); sets spawned_pid, spawned_url, spawned_admin.
spawn() {
  local name=$1
  shift
  local fifo=$work/$name.out line
  rm -f "$fifo"
  mkfifo "$fifo"
  "$@" >"$fifo" 2>>"$work/$name.err" &
  spawned_pid=$!
  pids+=("$spawned_pid")
  spawned_url="" spawned_admin=""
  exec 8<"$fifo"
  while IFS= read -r line <&8; do
    case "$line" in
      "listening on "*) spawned_url=${line#listening on } ;;
      "admin on http://"*) spawned_admin=${line#admin on http://} ;;
      # The gateway's admin listener (/metrics) comes before its "listening on" line.
      "admin listening on http://"*) spawned_admin=${line#admin listening on http://} ;;
    esac
    if [ -n "$spawned_url" ] && { [ -n "$spawned_admin" ] || [[ " $* " != *" --admin "* ]]; }; then break; fi
  done
  if [ -z "$spawned_url" ]; then
    echo "$name did not start: $*" >&2
    tail -n 20 "$work/$name.err" >&2
    exit 1
  fi
  # Keep draining its stdout (the gateway logs there) so it can never block on a full pipe.
  cat <&8 >>"$work/$name.log" &
  pids+=($!)
  exec 8<&-
}

# start_mock NAME [FLAGS...]: sets mock_url, mock_admin, mock_pid, mock_port.
start_mock() {
  local name=$1
  shift
  spawn "$name" "$bin/wsv2-mock-upstream" --listen "127.0.0.1:${mock_port_wanted:-0}" --api-key "$token" \
    --handshake-delay 200ms --admin 127.0.0.1:0 "${mock_tls[@]}" "$@"
  mock_url=$spawned_url mock_admin=$spawned_admin mock_pid=$spawned_pid
  mock_port=${mock_url#*://127.0.0.1:}
  mock_port=${mock_port%%/*}
}

# write_conf FILE SESSIONS [EXTRA TOML]: one account on the mock; room for 1.5× the sessions.
write_conf() {
  local file=$1 sessions=$2 extra=${3:-}
  cap=${account_cap:-$((sessions * 3 / 2 + 100))}
  {
    echo "listen = \"127.0.0.1:${gateway_port:-0}\""
    echo "admin_listen = \"127.0.0.1:${admin_port:-0}\""
    [ "$tls" = 1 ] && echo "tls_ca_file = \"$work/ca.pem\""
    # Top-level keys of a workload-3 row (redis_url).
    [ -z "${top_toml:-}" ] || printf '%s\n' "$top_toml"
    cat <<TOML

[[client_keys]]
key = "$key"
max_sockets = $((sessions * 4 + 100))

[[accounts]]
id = 1
name = "mock"
token = "$token"
base_url = "${base_url:-$mock_url}"
concurrency = $cap
${account_toml:-}

[session]
inter_turn_idle_timeout = "1h"
${session_toml:-}

[pool]
max_conns_per_account = $cap
max_idle_per_account = $cap
$extra
TOML
    # Experiments: RELIABILITY_GATEWAY_TOML is appended to every gateway's file.
    printf '%s\n' "${RELIABILITY_GATEWAY_TOML:-}"
  } >"$file"
}

# start_gateway SHELL NAME CONF: sets gateway_url, gateway_addr, gateway_pid, gateway_metrics (the
# admin listener's HOST:PORT, where /metrics is).
start_gateway() {
  local shell=$1 name=$2 conf=$3
  local cmd=("$bin/wsv2-gateway" serve --config "$conf")
  [ "$shell" = tokio ] || cmd=("$bin/wsv2-gateway-smol" serve --config "$conf")
  RUST_LOG=${RELIABILITY_RUST_LOG:-warn} spawn "$name" "${cmd[@]}"
  gateway_url=$spawned_url gateway_pid=$spawned_pid gateway_metrics=$spawned_admin
  gateway_addr=${gateway_url#*://}
  gateway_addr=${gateway_addr%%/*}
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# free_port: a TCP port nothing listens on (for processes restarted on the same port).
# Below the kernel's ephemeral range: a port in it can be the local end of any client's outgoing
# connection (workload 1 alone opens thousands), and binding a listener to it then fails.
free_port() {
  local low span port
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
  span=$(( low > 12000 ? low - 12000 : 1000 ))
  port=$((10000 + RANDOM % span))
  while [ -n "$(ss -Htan "sport = :$port")" ]; do port=$((10000 + RANDOM % span)); done
  echo "$port"
}

# start_relay NAME FLAGS...: workload 3's TCP relay with fault switches (see `wsv2-reliability
# relay --help`); sets relay_addr, relay_admin.
start_relay() {
  local name=$1
  shift
  spawn "$name" "$bin/wsv2-reliability" relay --admin 127.0.0.1:0 "$@"
  relay_addr=${spawned_url#tcp://} relay_admin=$spawned_admin
}

# redis_cmd PORT: a private redis-server on PORT, nothing persisted.
redis_cmd() { echo "redis-server --port $1 --bind 127.0.0.1 --save '' --appendonly no --daemonize no"; }

# start_redis NAME: sets redis_port, redis_pid once it answers PING.
start_redis() {
  redis_port=$(free_port)
  # exec, so that `$!` is redis-server itself: killing the shell that eval ran in left the
  # server running after the run, one per redis row and shell.
  eval "exec $(redis_cmd "$redis_port")" >>"$work/$1.log" 2>&1 &
  redis_pid=$!
  # Killed on purpose by redis_restart: no job notice.
  disown "$redis_pid"
  pids+=("$redis_pid")
  for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return
    sleep 0.05
  done
  echo "redis-server did not start on $redis_port" >&2
  exit 1
}

# stop_redis: stops the row's redis-server and fails the run if it still answers 2 s later
# (a server that outlives its row would be left running after the run).
stop_redis() {
  stop "$redis_pid"
  for _ in $(seq 1 40); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 || return 0
    sleep 0.05
  done
  echo "redis-server on port $redis_port outlived its row" >&2
  exit 1
}

IFS=, read -r -a shell_list <<<"$shells"

# --- workload 1: integrity under load ----------------------------------------------------------
if wants 1; then
  for shell in "${shell_list[@]}"; do
    log "workload 1 (integrity): $shell, $w1_sessions sessions × $w1_turns turns"
    start_mock "w1-$shell-mock"
    write_conf "$work/w1-$shell.toml" "$w1_sessions"
    start_gateway "$shell" "w1-$shell" "$work/w1-$shell.toml"
    "$rel" load --target "http://$gateway_addr/v1" --key "$key" --label "$shell" \
      --sessions "$w1_sessions" --turns "$w1_turns" --mix ws:4,lanes3:2,stored:1,http:1 \
      --metrics "$gateway_metrics" --json "$out/w1-$shell.json"
    stop "$gateway_pid"
    stop "$mock_pid"
  done
fi

# --- workload 2: reconnect storm ------------------------------------------------------------
dial_bound=$((w2_sessions * 3 / 2 + 100))
if wants 2; then
  for shell in "${shell_list[@]}"; do
    log "workload 2 (storm): $shell, $w2_sessions sessions at once, then a SIGTERM restart"
    start_mock "w2-$shell-mock"
    # A fixed port, so the restarted gateway is where the clients reconnect.
    gateway_port=$(free_port)
    # Cold pool: no warm idle conns.
    write_conf "$work/w2-$shell.toml" "$w2_sessions" "min_idle_per_account = 0"
    start_gateway "$shell" "w2-$shell" "$work/w2-$shell.toml"
    rm -f "$work/w2-ready"
    "$rel" storm --target "http://$gateway_addr/v1" --key "$key" --label "$shell" \
      --sessions "$w2_sessions" --ready-file "$work/w2-ready" --mock-admin "$mock_admin" \
      --json "$out/w2-$shell.json" &
    storm_pid=$!
    # Bounded wait for the cold phase (the storm tool writes the file once every socket is held).
    for _ in $(seq 1 1200); do
      [ -f "$work/w2-ready" ] && break
      kill -0 "$storm_pid" 2>/dev/null || break
      sleep 0.1
    done
    log "workload 2: SIGTERM to the $shell gateway, a new one on port $gateway_port"
    kill -TERM "$gateway_pid"
    wait "$gateway_pid" 2>/dev/null || true
    start_gateway "$shell" "w2-$shell-restarted" "$work/w2-$shell.toml"
    wait "$storm_pid"
    stop "$gateway_pid"
    stop "$mock_pid"
    gateway_port=""
  done
fi

# --- workload 3: fault matrix under load ------------------------------------------------------
# Timeouts short enough that a fault is detected and cleared within a row (the same values go
# into the deadline below): a silent upstream is pinged after P and closed P later (the smoke
# 1 s; medium and full 2 s, as a loaded test-profile gateway on 2 shared cores answers late);
# dials ≤ 3 s; an account cooled down by 5xx comes back after 2 s.
case "$mode" in
  full) w3_at=10s w3_clear=30s w3_len=60s w3_quiet=10s w3_ping=2 ;;
  medium) w3_at=5s w3_clear=15s w3_len=30s w3_quiet=5s w3_ping=2 ;;
  smoke) w3_at=1s w3_clear=2500ms w3_len=7s w3_quiet=2s w3_ping=1 ;;
esac
w3_toml="[upstream]
ping_interval = \"${w3_ping}s\"
pong_timeout = \"${w3_ping}s\"
dial_timeout = \"3s\"
tls_handshake_timeout = \"3s\"

[scheduler]
server_error_cooldown = \"2s\""
# The documented bound on one response under a fault: silence detection (ping_interval +
# pong_timeout) + a redial (dial_timeout) + the retry budget (scheduler.retry_total_budget, 5 s)
# + the wait for a conn (pool.session_acquire_wait, 2 s) + the slow fault's own delay (2 s).
w3_deadline=$((2 * w3_ping + 3 + 5 + 2 + 2))s
w3_faults=(drop_mid_stream error_429 error_500 refuse_401 refuse_426 refuse_429 refuse_500
  upstream_restart lifetime blackhole slow sighup tls_failure proxy_failure redis_closed
  redis_silent redis_restart clients_vanish clients_stop_reading sigterm)

# w3_row SHELL FAULT: one row with a fresh mock and gateway.
w3_row() {
  local shell=$1 fault=$2 inject="" clear="" at=$w3_at clear_at=$w3_clear mock_flags=()
  local admin_post="curl -sf -o /dev/null -X POST"
  local toml=$w3_toml permanent=() client_fault=()
  local base_url="" account_toml="" top_toml="" session_toml="" gateway_port="" admin_port=""
  local relay_pid="" relay_addr="" relay_admin="" redis_pid="" redis_port="" account_cap=""
  local restarted=$work/w3-$shell-restarted.pid
  if [[ "$fault" == redis_* ]] && ! command -v redis-server >/dev/null; then
    log "workload 3: $shell $fault: skipped (no redis-server on PATH)"
    return
  fi
  if [ "$fault" = lifetime ]; then
    # Upstream's 60-minute limit at 4 s, the gateway retiring conns at 3 s (upstream.max_age,
    # 55m against 60m by default); idle sockets get the limit error unsolicited. Sessions take
    # conns with at least 1 s left (the first line of the extra TOML is still in [pool]).
    mock_flags=(--lifetime 4s --unsolicited-limit) permanent=(--permanent)
    toml=${toml/\[upstream\]/[upstream]$'\n'max_age = \"3s\"$'\n'connection_limit = \"4s\"}
    toml="session_min_remaining_life = \"1s\""$'\n'"$toml"
  fi
  start_mock "w3-$shell-$fault-mock" "${mock_flags[@]}"
  case "$fault" in
    tls_failure)
      # The account dials the mock through the relay; failing, it answers each new TCP connection
      # with plain-text garbage, a close or silence, so the gateway's TLS handshake fails (open
      # conns are cut, so the pool redials into it).
      start_relay "w3-$shell-$fault-relay" --to "127.0.0.1:$mock_port"
      relay_pid=$spawned_pid base_url=${mock_url/:$mock_port/:${relay_addr#*:}} ;;
    proxy_failure)
      # The account's HTTP CONNECT proxy; failing, it answers 502, 407, closes after the request
      # head or stays silent, in turn (open tunnels are cut).
      start_relay "w3-$shell-$fault-relay" --connect-proxy
      relay_pid=$spawned_pid account_toml="proxy = \"http://$relay_addr\"" ;;
    redis_*)
      # Sticky bindings in a private redis-server, reached through the relay.
      start_redis "w3-$shell-$fault-redis"
      start_relay "w3-$shell-$fault-relay" --to "127.0.0.1:$redis_port"
      relay_pid=$spawned_pid top_toml="redis_url = \"redis://$relay_addr\"" ;;
    clients_vanish)
      # Every third session drops its socket (or POST body) at a response's first delta, then
      # reconnects.
      client_fault=(--client-fault vanish) ;;
    clients_stop_reading)
      # Every ninth session asks for a response bigger than the socket buffers and the gateway's
      # client write buffer (6144 deltas, ~1.3 MB of events) and stops reading it for 5 s: the
      # gateway gives the client up after session.client_write_timeout (3 s here), or after
      # session.blocked_client_timeout (1 s) when another create waits for its slots.
      client_fault=(--client-fault stop_reading --stall 5s --stall-deltas 6144)
      # The account a little short of the load's slots (the mix holds ~1.5 per session), so
      # creates wait for slots and a blocked client is given up after blocked_client_timeout.
      account_cap=$((w3_sessions * 7 / 5))
      session_toml='client_write_buffer = 65536
blocked_client_timeout = "1s"
client_write_timeout = "3s"' ;;
    sigterm)
      # Fixed ports: the new gateway takes the old one's place (clients reconnect to it).
      gateway_port=$(free_port) admin_port=$(free_port)
      session_toml='shutdown_grace = "5s"
shutdown_close_spread = "1s"' ;;
  esac
  write_conf "$work/w3-$shell-$fault.toml" "$w3_sessions" "$toml"
  start_gateway "$shell" "w3-$shell-$fault" "$work/w3-$shell-$fault.toml"
  local a="http://$mock_admin" r="http://$relay_admin"
  case "$fault" in
    drop_mid_stream | error_429 | error_500 | blackhole)
      inject="$admin_post '$a/fault?name=$fault'" clear="$admin_post $a/clear" ;;
    slow) inject="$admin_post '$a/fault?name=slow&slow_ms=2000'" clear="$admin_post $a/clear" ;;
    refuse_*)
      # Refuse upgrades and cut every open conn, so the pool must redial into the refusal.
      inject="$admin_post '$a/upgrade?status=${fault#refuse_}' && $admin_post $a/drop-all"
      clear="$admin_post $a/clear"
      # By design a 401 disables its account until a reload: the clear includes the reload.
      [ "$fault" = refuse_401 ] && clear="$clear && kill -HUP $gateway_pid" ;;
    upstream_restart)
      inject="kill -9 $mock_pid"
      clear="$bin/wsv2-mock-upstream --listen 127.0.0.1:$mock_port --api-key $token --handshake-delay 200ms ${mock_tls[*]} >/dev/null 2>&1 & echo \$! >$restarted" ;;
    lifetime) at=0s ;;   # all along: no injection, no clear
    sighup) inject="kill -HUP $gateway_pid" ;;
    tls_failure | proxy_failure)
      inject="$admin_post '$r/mode?name=fail'" clear="$admin_post '$r/mode?name=pass'" ;;
    redis_closed)
      inject="$admin_post '$r/mode?name=closed'" clear="$admin_post '$r/mode?name=pass'" ;;
    redis_silent)
      inject="$admin_post '$r/mode?name=silent'" clear="$admin_post '$r/mode?name=pass'" ;;
    redis_restart)
      inject="kill -9 $redis_pid"
      clear="$(redis_cmd "$redis_port") >/dev/null 2>&1 & echo \$! >$restarted" ;;
    sigterm)
      # The clear comes right after the SIGTERM and waits (at most 10 s) for the old gateway to
      # exit (in-flight responses end within session.shutdown_grace, 5 s here; idle sockets
      # close within shutdown_close_spread, 1 s), then starts a new one: the row's recovery
      # includes the drain.
      clear_at=$(( ${w3_at%s} * 1000 + 500 ))ms
      local cmd=("$bin/wsv2-gateway" serve --config "$work/w3-$shell-$fault.toml")
      [ "$shell" = tokio ] || cmd=("$bin/wsv2-gateway-smol" serve --config "$work/w3-$shell-$fault.toml")
      inject="kill -TERM $gateway_pid"
      clear="for _ in \$(seq 1 200); do kill -0 $gateway_pid 2>/dev/null || break; sleep 0.05; done
        RUST_LOG=${RELIABILITY_RUST_LOG:-warn} ${cmd[*]} >>$work/w3-$shell-$fault-2.log 2>&1 & echo \$! >$restarted" ;;
  esac
  "$rel" fault --target "http://$gateway_addr/v1" --key "$key" --label "$shell" \
    --sessions "$w3_sessions" --duration "$w3_len" --metrics "$gateway_metrics" --event-timeout 20s \
    --fault "$fault" --inject-at "$at" --inject "$inject" --clear-at "$clear_at" --clear "$clear" \
    --deadline "$w3_deadline" --quiet "$w3_quiet" "${permanent[@]}" "${client_fault[@]}" \
    --json "$out/w3-$shell-$fault.json" ||
    log "workload 3: $shell $fault: the row did not finish"
  stop "$gateway_pid"
  stop "$mock_pid"
  [ -z "$relay_pid" ] || stop "$relay_pid"
  # A restarted process first: redis_restart's new server answers on the row's redis port.
  if [ -f "$restarted" ]; then
    kill "$(cat "$restarted")" 2>/dev/null || true
    rm -f "$restarted"
  fi
  [ -z "$redis_pid" ] || stop_redis
}

w3_shell() {
  local shell=$1
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
  for fault in "${w3_faults[@]}"; do
    [ -z "$only_faults" ] || [[ ",$only_faults," == *",$fault,"* ]] || continue
    # The smoke leaves out rows whose injection path another row of it covers (--faults names
    # them): tls_failure and redis_closed (relay switches, as proxy_failure and redis_silent),
    # redis_restart (a kill and restart, as upstream_restart) and clients_stop_reading (slow:
    # big responses, as the clients' other misbehaviour, clients_vanish).
    if [ "$mode" = smoke ] && [ -z "$only_faults" ]; then
      case "$fault" in tls_failure | redis_closed | redis_restart | clients_stop_reading) continue ;; esac
    fi
    log "workload 3 (faults): $shell, $fault, $w3_sessions sessions"
    w3_row "$shell" "$fault"
  done
}

# --- workload 4: soak ---------------------------------------------------------------------------
case "$mode" in
  full) w4_sessions=200 w4_sample=5s w4_fault_every=30s w4_warmup=5m ;;
  medium) w4_sessions=100 w4_sample=2s w4_fault_every=20s w4_warmup=60s ;;
  smoke) w4_sessions=20 w4_sample=1s w4_fault_every=10s w4_warmup=25s ;;
esac
w4_shell() {
  local shell=$1
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
  log "workload 4 (soak): $shell, $w4_sessions sessions for $soak, a fault every $w4_fault_every"
  start_mock "w4-$shell-mock" --lifetime 10m --unsolicited-limit
  # Response bindings are state bounded by store.local_cache_entries (65,536 by default, ~50 MiB):
  # a smaller bound is reached within the warm-up, so a trend after it is not that state.
  write_conf "$work/w4-$shell.toml" "$w4_sessions" "$w3_toml"$'\n\n[store]\nlocal_cache_entries = 4096'

  start_gateway "$shell" "w4-$shell" "$work/w4-$shell.toml"
  "$rel" soak --target "http://$gateway_addr/v1" --key "$key" --label "$shell" \
    --sessions "$w4_sessions" --duration "$soak" --metrics "$gateway_metrics" --pid "$gateway_pid" \
    --mock-admin "$mock_admin" --sample-every "$w4_sample" --fault-every "$w4_fault_every" \
    --fault-for 2s --warmup "$w4_warmup" --json "$out/w4-$shell.json" ||
    log "workload 4: $shell: the soak did not finish"
  stop "$gateway_pid"
  stop "$mock_pid"
}

# The smoke and the medium run the shells side by side (each row has its own mock and gateway);
# a full run measures one at a time.
for w in 3 4; do
  wants "$w" || continue
  # The soak's gateways count their heap (the `alloc-count` feature: a counting global
  # allocator, two relaxed atomic adds per allocation): /metrics then reports the live heap and
  # glibc's free bytes, sampled beside the RSS to tell state from allocator retention. Rebuilt
  # here, after workloads 1–3 ran on the plain binaries; the smoke keeps the plain ones (CI
  # would compile the gateways twice).
  if [ "$w" = 4 ] && [ "$mode" != smoke ] && [ -z "${RELIABILITY_NO_BUILD:-}" ]; then
    log "building the gateways with alloc-count for the soak"
    cargo build "${profile[@]}" -q -p wsv2-tokio -p wsv2-smol --bins \
      --features wsv2-tokio/alloc-count,wsv2-smol/alloc-count
  fi
  if [ "$mode" != full ]; then
    jobs_of_w=()
    for shell in "${shell_list[@]}"; do
      "w${w}_shell" "$shell" &
      jobs_of_w+=($!)
    done
    for job in "${jobs_of_w[@]}"; do wait "$job"; done
  else
    for shell in "${shell_list[@]}"; do ("w${w}_shell" "$shell"); done
  fi
done

# --- workloads 5 and 6: fuzzing, hostile inputs, security (their own commands) ----------------
# Full and medium runs execute them and record the figures; the smoke leaves them to their own
# CI steps (scripts/test.sh runs `cargo test --workspace` and `tests/fuzz/run.sh --smoke`).
{
  echo "## 5. Adversarial inputs and 6. security properties"
  echo
  if ! wants 5 && ! wants 6; then
    echo "Not run (\`--workloads $workloads\`)."
  elif [ "$mode" = smoke ]; then
    echo "Not run by this smoke: CI runs them in their own steps of \`scripts/test.sh\` (\`cargo test"
    echo "--workspace\` runs \`tests/harness/tests/shells/hostile_inputs.rs\` and \`security.rs\` on both"
    echo "shells and replays every fuzz regression; \`tests/fuzz/run.sh --smoke\` mutates the corpus)."
  else
    log "workloads 5 and 6: fuzz smoke, hostile-input table and security tests"
    echo "Fuzzing: \`tests/fuzz/run.sh --smoke --time 5\` (blind mutation of the committed corpus, test"
    echo "profile; the coverage-guided libFuzzer runs are \`tests/fuzz/run.sh\`, 300 s per target):"
    echo
    echo '```text'
    bash tests/fuzz/run.sh --smoke --time 5 2>&1 | tail -n 8 || echo "fuzz smoke FAILED"
    echo '```'
    if [ -f target/fuzz/summary.json ]; then
      echo
      echo "Last coverage-guided run on this machine (target/fuzz/summary.json):"
      echo
      echo '```json'
      cat target/fuzz/summary.json
      echo '```'
    fi
    echo
    echo "Hostile-input table and security properties over real sockets, both shells"
    echo "(\`cargo test -p wsv2-tests --test shells -- hostile_inputs security\`):"
    echo
    echo "| test | result |"
    echo "|---|---|"
    cargo test -p wsv2-tests --test shells -- hostile_inputs security 2>&1 |
      awk 'match($0, /^test [^ ]+ \.\.\. (ok|FAILED|ignored)/) { r = $NF; if ($0 ~ / ok$/) r = "pass"; else if ($0 ~ /ignored/) r = "ignored"; else r = "**FAILED**"; print "| `" $2 "` | " r " |" }
           /^test result:/ { summary = $0 } END { print ""; print summary }'
  fi
  echo
} >"$out/extra-5-6.md"

# --- run facts and the report ----------------------------------------------------------------
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
case "$mode" in
  full) sizes="full: workload 1 $w1_sessions sessions × $w1_turns turns; 2 $w2_sessions sessions; 3 $w3_sessions sessions per fault; 4 soak $soak" ;;
  *) sizes="$mode (not the issue's full sizes): workload 1 $w1_sessions sessions × $w1_turns turns; 2 $w2_sessions sessions; 3 $w3_sessions sessions per fault; 4 soak $soak" ;;
esac
cat >"$work/meta.json" <<JSON
{"workloads": $(json_str "$workloads"),
 "commit": $(json_str "$(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- core shells tests ':!tests/reliability/results')" ] || echo ' (dirty)')"),
 "date": $(json_str "$(date -u +%Y-%m-%dT%H:%MZ)"),
 "mode": $(json_str "$mode"),
 "sizes": $(json_str "$sizes"),
 "machine": $(json_str "$(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"),
 "profile": $(json_str "$([ "$bin" = target/release ] && echo release || echo 'test profile (debug, unoptimised)')"),
 "upstream": $(json_str "wsv2-mock-upstream, 200 ms handshake delay, $([ "$tls" = 1 ] && echo 'TLS (fresh CA via tls_ca_file)' || echo 'plain TCP'), one account"),
 "dial_bound": $dial_bound,
 "notes": [$(json_str "workload 3 runs each row on a fresh mock and gateway with upstream.ping_interval and pong_timeout ${w3_ping}s, dial_timeout 3s, scheduler.server_error_cooldown 2s; rows: load from 0, fault at $w3_at, cleared at $w3_clear, load stops at $w3_len"),
           $(json_str "workload 4: gateway timeouts as workload 3, store.local_cache_entries 4096 (response bindings are state bounded by it: 65,536 by default, ~0.8 KiB each in a debug build; the smaller bound is reached within the warm-up); the mock's connection lifetime is 10m (unsolicited limit on idle sockets); faults cycle drop_mid_stream, error_500, error_429, slow (1 s), each for 2 s every $w4_fault_every; slopes exclude the first $w4_warmup")]}
JSON
# Each invocation is one part: {workloads, commit, date, machine}. Without --keep the run is one
# part; with it, this part replaces the workloads it reran in the earlier parts.
python3 - "$work/meta.json" "$out/meta.json" "$keep" <<'PY'
import json, os, sys
new_path, out_path, keep = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
new = json.load(open(new_path))
part = {k: new[k] for k in ("workloads", "commit", "date", "machine", "sizes")}
parts = []
if keep and os.path.exists(out_path):
    old = json.load(open(out_path))
    rerun = set(new["workloads"].split(","))
    for p in old.get("parts") or [{k: old.get(k, "1,2,3,4,5,6" if k == "workloads" else "?") for k in part}]:
        left = [w for w in p["workloads"].split(",") if w not in rerun]
        if left:
            parts.append(dict(p, workloads=",".join(left)))
new["parts"] = parts + [part]
json.dump(new, open(out_path, "w"), indent=1, ensure_ascii=False)
PY
"$rel" report --dir "$out" --out "$md"
log "wrote $md (raw results in $out)"
# Rules not met are listed; the smoke fails on those of workloads 1 and 2 (integrity, storm).
# Workloads 3 and 4 report their rules without failing CI while the gateway defects they found
# are open (RELIABILITY.md and the issue's notes say which).
if grep -q '| \*\*NO\*\* |' "$md"; then
  grep '| \*\*NO\*\* |' "$md" >&2
  if [ "$mode" = smoke ] && grep '| \*\*NO\*\* |' "$md" | grep -q -E '^\| (1 integrity|2 storm)'; then exit 1; fi
fi
