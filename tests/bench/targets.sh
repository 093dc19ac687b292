#!/usr/bin/env bash
# Starting and stopping the benchmark targets of one phase, for run.sh (source it after lib.sh).
#
# Every target gets its own mock upstream (same flags), so the mock's record and CPU belong to
# one target: direct (the mock itself), nginx → mock, tokio (wsv2-gateway) → mock and smol
# (wsv2-gateway-smol) → mock. Mocks run under $pin_mock, targets under $pin_target (see run.sh). Uses from run.sh: bin, key, out, work, pids, targets, pin_mock, pin_target,
# smol_serve.
#
# A phase named *_tls puts the relays' mocks behind TLS (`wss://`, as real upstreams are), with
# a CA and leaf made by make_tls_material; direct stays plain (the load generator speaks plain
# WebSocket), so the relays' added figures include the TLS hop.

# A JSON string literal of $1 (the values here hold no control characters but tabs/newlines).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  printf '"%s"' "$s"
}

# spawn_listening NAME CMD...: starts CMD, waits for its "listening on URL" line; sets
# spawned_pid and spawned_url. Its stderr goes to $work/NAME.err.
spawn_listening() {
  local name=$1
  shift
  local fifo="$work/$name.out"
  rm -f "$fifo"
  mkfifo "$fifo"
  "$@" >"$fifo" 2>"$work/$name.err" &
  spawned_pid=$!
  pids+=("$spawned_pid")
  if ! spawned_url=$(await_listening "$fifo"); then
    echo "$name did not start: $*" >&2
    tail -n 20 "$work/$name.err" >&2
    return 1
  fi
  # Keep draining its stdout (the gateway logs there) so it can never block on a full pipe.
  cat "$fifo" >"$work/$name.log" &
  pids+=($!)
}

# A TCP port no socket uses (nginx cannot listen on port 0), below the ephemeral range so no
# client connection can take it meanwhile.
free_port() {
  local port low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
  while :; do
    port=$((10000 + RANDOM % (low - 10000)))
    [ -z "$(ss -Htan "sport = :$port")" ] && { echo "$port"; return; }
  done
}

# wait_port PORT PID: polls (bounded, 30 s) until PORT accepts connections while PID lives.
wait_port() {
  local port=$1 pid=$2
  for _ in $(seq 1 300); do
    [ -n "$(ss -Htln "sport = :$port")" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# write_nginx_conf FILE PORT UPSTREAM_PORT CONNECTIONS SINGLE [TLS]: a plain reverse proxy for
# both WebSocket upgrades and streamed HTTP (SSE). SINGLE=1 runs it as one process (callgrind);
# TLS=1: the upstream speaks TLS (verified against $tls_ca).
write_nginx_conf() {
  local file=$1 port=$2 upstream=$3 conns=$4 single=$5 tls=${6:-0}
  local scheme=http ssl=""
  if [ "$tls" = 1 ]; then
    scheme=https
    ssl="proxy_ssl_trusted_certificate $tls_ca; proxy_ssl_verify on; proxy_ssl_name localhost;"
  fi
  local dir
  dir=$(dirname "$file")
  mkdir -p "$dir/nginx-tmp"
  {
    echo "daemon off;"
    if [ "$single" = 1 ]; then echo "master_process off;"; fi
    echo "worker_processes 1;"
    echo "worker_rlimit_nofile $((conns + 1024));"
    echo "pid $dir/nginx.pid;"
    echo "error_log stderr warn;"
    cat <<CONF
events { worker_connections $conns; }
http {
  access_log off;
  client_body_temp_path $dir/nginx-tmp/body;
  proxy_temp_path $dir/nginx-tmp/proxy;
  client_body_buffer_size 1m;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream mock { server 127.0.0.1:$upstream; keepalive 256; }
  server {
    listen 127.0.0.1:$port;
    tcp_nodelay on;
    location / {
      proxy_pass $scheme://mock;
      $ssl
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
CONF
  } >"$file"
}

# write_gateway_conf FILE MOCK_URL SESSIONS: SESSIONS idle or active sessions fit, spread over
# one account per 2,000 sessions (all on the same mock). Sessions do not split evenly over
# accounts, so each account has room for 1.5 times its even share.
write_gateway_conf() {
  local file=$1 mock_url=$2 sessions=$3
  local accounts=$(((sessions + 1999) / 2000)) cap
  cap=$((sessions * 3 / 2 / accounts + 100))
  # /metrics is on the admin listener; a known port, since only the first line is read.
  target_admin_port=$(free_port)
  {
    cat <<TOML
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:$target_admin_port"
$(case "$mock_url" in wss://*) echo "tls_ca_file = \"$tls_ca\"" ;; esac)

[[client_keys]]
key = "$key"
max_sockets = $((sessions + 100))

[session]
inter_turn_idle_timeout = "1h"

[pool]
max_conns_per_account = $cap
max_idle_per_account = $cap
TOML
    for a in $(seq 1 "$accounts"); do
      printf '\n[[accounts]]\nid = %d\nname = "mock%d"\ntoken = "%s"\nbase_url = "%s"\nconcurrency = %d\n' \
        "$a" "$a" "$key" "$mock_url" "$cap"
    done
  } >"$file"
}

# start_target NAME MOCK_URL SESSIONS [WRAPPER...]: starts one target in front of MOCK_URL; sets
# target_url, target_pids (space separated) and target_cmd. WRAPPER (e.g. valgrind …) replaces
# the CPU pinning.
start_target() {
  local name=$1 mock_url=$2 sessions=$3
  shift 3
  local wrap=("$@")
  [ ${#wrap[@]} -gt 0 ] || wrap=("${pin_target[@]}")
  local conf="$work/$phase.$name.conf"
  case "$name" in
    nginx)
      local port upstream=${mock_url#*://127.0.0.1:} tls=0
      upstream=${upstream%%/*}
      [[ "$mock_url" != wss://* ]] || tls=1
      port=$(free_port)
      write_nginx_conf "$conf" "$port" "$upstream" "$((sessions * 3 + 1024))" "$([ -n "${wrap_single:-}" ] && echo 1 || echo 0)" "$tls"
      target_cmd="${wrap[*]} nginx -c nginx.conf"
      "${wrap[@]}" nginx -c "$conf" 2>"$work/$phase.nginx.err" &
      local master=$!
      pids+=("$master")
      if ! wait_port "$port" "$master"; then
        echo "nginx did not start" >&2
        cat "$work/$phase.nginx.err" >&2
        return 1
      fi
      target_pids="$master $( (pgrep -P "$master" || true) | tr "\n" " ")"
      target_url="ws://127.0.0.1:$port/v1/responses"
      cp "$conf" "$work/nginx.conf.last"
      ;;
    tokio | smol)
      write_gateway_conf "$conf" "$mock_url" "$sessions"
      local cmd=("$bin/wsv2-gateway" serve --config "$conf")
      [ "$name" = tokio ] || cmd=("$bin/wsv2-gateway-smol" "${smol_serve[@]}" --config "$conf")
      target_cmd="RUST_LOG=warn ${wrap[*]} ${cmd[*]/$conf/gateway.toml}"
      RUST_LOG=warn spawn_listening "$phase.$name" "${wrap[@]}" "${cmd[@]}"
      target_pids=$spawned_pid
      target_url=$spawned_url
      cp "$conf" "$work/gateway.toml.last"
      ;;
    *)
      echo "unknown target $name" >&2
      return 1
      ;;
  esac
}

# start_phase PHASE SESSIONS RECORD MOCK_FLAGS...: a fresh mock per target and the targets in
# front of them; fills target_args (--target …), watch_args (--watch-pid …), mock_pid_of,
# setup_targets (JSON objects) and records.
start_phase() {
  phase=$1
  local sessions=$2 record=$3
  shift 3
  local mock_flags=("$@")
  target_args=()
  watch_args=()
  setup_targets=()
  declare -gA mock_pid_of=() record_of=()
  local t extra
  for t in "${targets[@]}"; do
    extra=()
    if [ "$record" = 1 ]; then
      record_of[$t]="$work/$phase.$t.record.jsonl"
      extra=(--record "${record_of[$t]}")
    fi
    if [[ "$phase" == *_tls ]] && [ "$t" != direct ]; then
      extra+=(--tls-cert "$tls_leaf" --tls-key "$tls_key")
    fi
    spawn_listening "$phase.mock-$t" "${pin_mock[@]}" "$bin/wsv2-mock-upstream" \
      --listen 127.0.0.1:0 --api-key "$key" "${mock_flags[@]}" "${extra[@]}"
    mock_pid_of[$t]=$spawned_pid
    local mock_url=$spawned_url
    if [ "$t" = direct ]; then
      target_url=$mock_url
      target_pids=$spawned_pid
      target_cmd="${pin_mock[*]} wsv2-mock-upstream --api-key KEY ${mock_flags[*]}"
    else
      start_target "$t" "$mock_url" "$sessions"
    fi
    target_args+=(--target "$t=$target_url")
    local p pid_json=""
    for p in $target_pids; do
      watch_args+=(--watch-pid "$t=$p")
      pid_json+="${pid_json:+,}$p"
    done
    setup_targets+=("{\"name\":$(json_str "$t"),\"command\":$(json_str "$target_cmd"),\"pids\":[$pid_json]}")
  done
  phase_mock_flags="${mock_flags[*]}"
}

# stop_phase: stops every process started so far and waits for them. With BENCH_LOGS=DIR, the
# processes' output (gateway logs at warn, nginx errors) is kept there.
stop_phase() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  if [ -n "${BENCH_LOGS:-}" ]; then
    mkdir -p "$BENCH_LOGS"
    cp "$work"/*.err "$work"/*.log "$BENCH_LOGS/" 2>/dev/null || true
  fi
}

# write_setup FILE: the phase's targets, mock flags and (when recorded) upstream counts per target.
write_setup() {
  local file=$1 t reuse=()
  for t in "${!record_of[@]}"; do
    local r=${record_of[$t]} hs cr po
    hs=$(grep -c '"kind":"handshake"' "$r" || true)
    cr=$(grep -c '"type":"response.create"' "$r" || true)
    po=$(grep -c '"kind":"http"' "$r" || true)
    reuse+=("{\"target\":$(json_str "$t"),\"upstream_handshakes\":$hs,\"upstream_creates\":$cr,\"upstream_posts\":$po}")
  done
  local IFS=,
  printf '{"phase":%s,"mock_flags":%s,"targets":[%s],"upstream":[%s]}\n' \
    "$(json_str "$phase")" "$(json_str "$phase_mock_flags")" "${setup_targets[*]}" "${reuse[*]}" >"$file"
}

# make_tls_material DIR: a CA and a leaf for 127.0.0.1 / localhost (fresh, P-256, 2 days), for
# the *_tls phases; sets tls_ca, tls_leaf and tls_key.
make_tls_material() {
  local dir=$1
  scripts/tls-material.sh "$dir" wsv2-bench-ca
  tls_ca=$dir/ca.pem tls_leaf=$dir/leaf.pem tls_key=$dir/leaf.key
}
