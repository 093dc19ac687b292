#!/usr/bin/env bash
# The wsv2 benchmark (issue 9): every target against the same mock upstream, in one run, then
# BENCHMARKS.md and the latency CDF plot generated from the raw JSON it wrote, with issue 17's
# targets met or not.
#
#   tests/bench/run.sh [--smoke] [--out DIR] [--rounds N] [--sessions-10k] [--no-pin]
#                      [--no-callgrind] [--no-allocs] [--no-divan] [--phases a,b,...]
#
# Targets: direct (the mock itself: the physical limit), nginx → mock (a byte relay), tokio
# (wsv2-gateway) → mock and smol (wsv2-gateway-smol) → mock; smol only when
# `cargo build -p wsv2-smol` succeeds. Each phase starts fresh processes (one mock per target)
# and runs ONE wsv2-loadgen over all targets in alternating rounds, after a warm-up round.
#
# Phases: lat20 (20 sessions × 10 turns × 200 deltas at 1 ms), lat1 (1 session alone),
# throughput (unpaced deltas), turn_warm (turn start with think time), turn_new (new sessions on
# a warm pool, pool reuse from the mocks' records), sse (HTTP POST + SSE), mem (1,000 idle
# sessions; 10,000 more with --sessions-10k), lat20_tls and mem_tls (lat20 and mem with every
# relay's mock behind TLS, `wss://` as real upstreams are: a CA made with openssl for the run;
# direct stays plain), then callgrind (instructions per relayed event),
# allocs (heap allocations per relayed event, the gateways rebuilt with the `alloc-count`
# feature; see tests/bench/allocs.sh) and `cargo bench -p wsv2-core` (divan).
#
# Pinning (2 cores; --no-pin turns it off): the target under test alone on CPU 1, the load
# generator and the mocks on CPU 0, as a gateway has its own machine in production. With 20
# sessions the mock sends 20 deltas per millisecond in a burst; the load generator reads them
# only when the burst is over whether or not a relay is in between, so the baseline and the
# targets wait alike. One phase differs: lat1 (one stream) puts the mock beside the target on
# CPU 1, because a lone event never meets a burst there, and with the mock beside the load
# generator direct would get a same-core hand-off (no cross-core wake-up) that no relayed path
# gets, inflating every target's added latency by that difference.
#
# Full mode builds release binaries, writes raw results to tests/bench/results/ and generates
# BENCHMARKS.md at the repository root. --smoke (CI) uses the test-profile binaries in
# target/debug, no nginx, no callgrind, no divan, tiny workloads (allocs included), and writes
# everything, the report included, to a temporary directory (or --out).
#
# BENCH_LOGS=DIR keeps every process's output (gateway logs at warn level, nginx errors) there.
set -euo pipefail
cd "$(dirname "$0")/../.."

smoke=0 rounds="" big=0 pin=1 callgrind=1 allocs=1 divan=1 only="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --sessions-10k) big=1 ;;
    --no-pin) pin=0 ;;
    --no-callgrind) callgrind=0 ;;
    --no-allocs) allocs=0 ;;
    --no-divan) divan=0 ;;
    --phases) only=",$2,"; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
wants() { [ -z "$only" ] || [[ "$only" == *",$1,"* ]]; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  log "installing $* with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- tools and binaries ----------------------------------------------------------------------
# A full run reports failed turns in its tables (in bold) and goes on; the smoke fails on them.
allow_errors=(--allow-errors)
if [ "$smoke" = 1 ]; then
  allow_errors=()
  profile_flag=() bin=target/debug
  out=${out:-$(mktemp -d)}
  md="$out/BENCHMARKS.md" png="$out/latency-cdf.png"
  rounds=${rounds:-2} callgrind=0 divan=0
else
  profile_flag=(--release) bin=target/release
  if [ -n "$out" ]; then
    md="$out/BENCHMARKS.md" png="$out/latency-cdf.png"
  else
    out=tests/bench/results md=BENCHMARKS.md png=tests/bench/results/latency-cdf.png
  fi
  rounds=${rounds:-5}
  command -v nginx >/dev/null 2>&1 || apt_install nginx
  if [ "$callgrind" = 1 ] && ! command -v callgrind_control >/dev/null 2>&1; then apt_install valgrind; fi
fi
# Two benchmarks at once on one machine would measure each other: a full run waits for any
# other full run (of any checkout) to finish.
if [ "$smoke" = 0 ] && command -v flock >/dev/null 2>&1; then
  exec 9>/tmp/wsv2-bench.lock
  flock -n 9 || { log "another benchmark holds /tmp/wsv2-bench.lock; waiting for it"; flock 9; }
fi
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
[ -f "$font" ] || apt_install fonts-dejavu-core
mkdir -p "$out"
work_build_log=$(mktemp)
[ -n "$only" ] || rm -f "$out"/*.json "$out"/*.txt

log "building ${profile_flag[*]:-test-profile} binaries"
# One build of every workspace binary. The smoke also names the test targets: then cargo resolves
# features as `cargo test` did (dev-dependencies included), so in CI, right after the test step,
# nothing recompiles (with `--bins` alone it rebuilt tokio and everything above it: ~85 s cold).
# When the build fails, the four binaries without the smol shell.
notes=()
smol_reason=""
build_targets=(--bins)
[ "$smoke" = 1 ] && build_targets+=(--tests)
if ! cargo build "${profile_flag[@]}" -q --workspace "${build_targets[@]}" 2>"$work_build_log"; then
  smol_reason="the workspace build failed: $(grep -m1 -E '^error' "$work_build_log" || true)"
  cargo build "${profile_flag[@]}" -q -p wsv2-tokio -p wsv2-mock -p wsv2-tests -p wsv2-bench-report --bins
fi
targets=(direct)
if [ "$smoke" = 0 ]; then targets+=(nginx); fi
targets+=(tokio)
if [ -z "$smol_reason" ] && ! cargo metadata -q --no-deps --format-version 1 | grep -q '"name":"wsv2-smol"'; then
  smol_reason="no wsv2-smol package in the workspace yet"
fi
# The workspace build above built it (cargo build -p wsv2-smol succeeds) when it is a member.
if [ -z "$smol_reason" ] && [ -x "$bin/wsv2-gateway-smol" ]; then
  targets+=(smol)
  # Same flags as `wsv2-gateway serve --config F`; a binary without subcommands takes --config.
  smol_serve=()
  "$bin/wsv2-gateway-smol" --help 2>/dev/null | grep -qw serve && smol_serve=(serve)
else
  notes+=("smol: skipped: ${smol_reason:-no wsv2-gateway-smol binary was built}")
  log "note: ${notes[-1]}"
fi
rm -f "$work_build_log"

# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh
# shellcheck source=tests/bench/targets.sh
source tests/bench/targets.sh
key=sk-bench-run
if [ "$pin" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  pin_load=(taskset -c 0) pin_mock=(taskset -c 0) pin_target=(taskset -c 1)
  pin_mock_lat1=(taskset -c 1)
  pinning="the target under test on CPU 1; loadgen and mocks on CPU 0, except lat1 (one stream): mocks on CPU 1 beside the target (taskset)"
else
  pin_load=() pin_mock=() pin_target=() pin_mock_lat1=()
  pinning="none"
fi

# The TLS phases' CA and leaf (tests/bench/targets.sh, make_tls_material).
tls_phases=1
if command -v openssl >/dev/null 2>&1; then
  make_tls_material "$work"
else
  tls_phases=0
  notes+=("lat20_tls, mem_tls: skipped: no openssl to make the upstream's certificate")
  log "note: ${notes[-1]}"
fi
tls_phase() { [ "$tls_phases" = 0 ] || phase "$@"; }

# --- machine facts ---------------------------------------------------------------------------
version_of() { "$@" 2>&1 | head -n1 || true; }
commit=$(git rev-parse HEAD)
dirty=$([ -z "$(git status --porcelain -- core shells tests/mock tests/harness)" ] && echo false || echo true)
{
  printf '{"commit":%s,"dirty":%s,"date":%s,"mode":%s,' "$(json_str "$commit")" "$dirty" \
    "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_str "$([ "$smoke" = 1 ] && echo smoke || echo full)")"
  printf '"machine":{"cpu":%s,"cores":%d,"memory":%s,"kernel":%s,"os":%s},' \
    "$(json_str "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')")" "$(nproc)" \
    "$(json_str "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)")" \
    "$(json_str "$(uname -r)")" "$(json_str "$(. /etc/os-release && echo "$PRETTY_NAME")")"
  printf '"versions":{"rustc":%s,"nginx":%s,"valgrind":%s},' "$(json_str "$(version_of rustc -V)")" \
    "$(json_str "$(version_of nginx -v)")" "$(json_str "$(version_of valgrind --version)")"
  printf '"pinning":%s,"rounds":%d,"loadavg_start":%s,"profile":%s,' "$(json_str "$pinning")" "$rounds" \
    "$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")" "$(json_str "$bin")"
  targets_json=$(printf '%s\n' "${targets[@]}" | sed 's/.*/"&"/' | paste -sd,)
  notes_json=$( ((${#notes[@]})) && for n in "${notes[@]}"; do json_str "$n"; echo; done | paste -sd, || true)
  printf '"targets":[%s],"notes":[%s]}\n' "$targets_json" "$notes_json"
} >"$out/meta.json"

# --- phases ----------------------------------------------------------------------------------
# phase NAME SESSIONS RECORD "MOCK FLAGS" LOADGEN ARGS...: one phase, fresh processes.
phase() {
  local name=$1 sessions=$2 record=$3 mock_flags=$4
  shift 4
  wants "$name" || return 0
  log "phase $name: loadgen $*"
  local pin_mock=("${pin_mock[@]}")
  [ "$name" != lat1 ] || pin_mock=("${pin_mock_lat1[@]}")
  # shellcheck disable=SC2086 # the mock flags are a word list
  start_phase "$name" "$sessions" "$record" $mock_flags
  "${pin_load[@]}" "$bin/wsv2-loadgen" --api-key "$key" "${target_args[@]}" "${watch_args[@]}" \
    "${allow_errors[@]}" "$@" --json "$out/$name.json" | tee "$work/$name.table"
  stop_phase
  write_setup "$out/$name.setup.json"
}

r=$rounds
if [ "$smoke" = 1 ]; then
  # A few seconds in all: the same phases with tiny workloads.
  phase lat20 6 0 "--delta-interval 1ms" --sessions 2 --turns 2 --deltas 20 --rounds "$r" --warmup-rounds 1
  phase lat1 5 0 "--delta-interval 1ms" --sessions 1 --turns 2 --deltas 20 --rounds "$r" --warmup-rounds 1
  phase throughput 6 0 "" --sessions 2 --turns 1 --deltas 500 --rounds "$r" --warmup-rounds 1
  phase turn_warm 6 0 "" --sessions 2 --turns 3 --deltas 4 --think-time 5ms --rounds "$r" --warmup-rounds 1
  phase turn_new 6 1 "" --sessions 10 --session-concurrency 2 --turns 1 --warmup 0 --deltas 4 \
    --rounds "$r" --warmup-rounds 1
  phase sse 6 1 "--delta-interval 1ms" --mode sse --sessions 2 --turns 2 --deltas 20 --rounds "$r" --warmup-rounds 1
  phase mem 20 0 "" --hold-idle --sessions 20 --session-concurrency 8 --turns 1 --warmup 0 --deltas 4 --rounds 1
  tls_phase lat20_tls 6 0 "--delta-interval 1ms" --sessions 2 --turns 2 --deltas 20 --rounds "$r" --warmup-rounds 1
  tls_phase mem_tls 20 0 "" --hold-idle --sessions 20 --session-concurrency 8 --turns 1 --warmup 0 --deltas 4 --rounds 1
else
  phase lat20 20 0 "--delta-interval 1ms" --sessions 20 --turns 10 --deltas 200 --rounds "$r" --warmup-rounds 1
  phase lat1 1 0 "--delta-interval 1ms" --sessions 1 --turns 10 --deltas 200 --rounds "$r" --warmup-rounds 1
  phase throughput 20 0 "" --sessions 20 --turns 2 --deltas 2000 --rounds "$r" --warmup-rounds 1
  phase turn_warm 20 0 "" --sessions 20 --turns 30 --deltas 4 --think-time 20ms --rounds "$r" --warmup-rounds 1
  phase turn_new 16 1 "" --sessions 400 --session-concurrency 4 --turns 1 --warmup 0 --deltas 4 \
    --rounds "$r" --warmup-rounds 1
  phase sse 20 1 "--delta-interval 1ms" --mode sse --sessions 20 --turns 10 --deltas 200 --rounds "$r" --warmup-rounds 1
  ulimit -n "$(( $(ulimit -n) > 8192 ? $(ulimit -n) : 8192 ))"
  phase mem 1000 0 "" --hold-idle --sessions 1000 --session-concurrency 64 --turns 1 --warmup 0 --deltas 4 --rounds 1
  tls_phase lat20_tls 20 0 "--delta-interval 1ms" --sessions 20 --turns 10 --deltas 200 --rounds "$r" --warmup-rounds 1
  tls_phase mem_tls 1000 0 "" --hold-idle --sessions 1000 --session-concurrency 64 --turns 1 --warmup 0 --deltas 4 \
    --rounds 1
  if [ "$big" = 1 ]; then
    # A gateway or nginx holds two sockets per session. Without CAP_SYS_RESOURCE the soft limit
    # can only rise to the hard one; then as many sessions as fit are measured (and logged).
    big_n=10000 hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=1048576
    ulimit -n "$(( hard < 65536 ? hard : 65536 ))"
    if [ $((2 * big_n + 1024)) -gt "$(ulimit -n)" ]; then
      big_n=$((($(ulimit -n) - 1024) / 2))
      log "note: open files are limited to $(ulimit -n) (hard limit), so mem10k holds $big_n sessions"
    fi
    phase mem10k "$big_n" 0 "" --hold-idle --sessions "$big_n" --session-concurrency 64 --turns 1 \
      --warmup 0 --deltas 4 --rounds 1 --source-addrs 250
  fi
fi
cp "$work/gateway.toml.last" "$out/gateway.toml" 2>/dev/null || true
if [ "$smoke" = 0 ]; then cp "$work/nginx.conf.last" "$out/nginx.conf" 2>/dev/null || true; fi

# --- callgrind: instructions per relayed event -----------------------------------------------
if [ "$callgrind" = 1 ] && wants callgrind; then
  # shellcheck source=tests/bench/callgrind.sh
  source tests/bench/callgrind.sh
  run_callgrind "$out/callgrind.json"
fi

# --- heap allocations per relayed event -------------------------------------------------------
# Last of the gateway phases: it rebuilds the gateway binaries with the `alloc-count` feature (a
# counting global allocator), so every phase before it measured the binaries operators run.
if [ "$allocs" = 1 ] && wants allocs; then
  # shellcheck source=tests/bench/allocs.sh
  source tests/bench/allocs.sh
  gateways=()
  for t in "${targets[@]}"; do
    case "$t" in tokio) gateways+=(-p wsv2-tokio --features wsv2-tokio/alloc-count) ;;
      smol) gateways+=(-p wsv2-smol --features wsv2-smol/alloc-count) ;; esac
  done
  log "building the gateways with alloc-count"
  cargo build "${profile_flag[@]}" -q "${gateways[@]}" --bins
  if [ "$smoke" = 1 ]; then
    run_allocs "$out/allocs.json" 2 2 20 220
  else
    # 20 sessions × 5 turns: 100 → 1,100 deltas per turn, 100,000 events between the two.
    run_allocs "$out/allocs.json" 20 5 100 1100
  fi
fi

# --- divan: the core's hot path in-process ----------------------------------------------------
if [ "$divan" = 1 ] && wants divan; then
  log "cargo bench -p wsv2-core (divan)"
  cargo bench -q -p wsv2-core --benches 2>&1 | grep -v '^\s*Running\|^\s*Finished\|^\s*Compiling' >"$out/divan.txt"
fi

# --- the report ------------------------------------------------------------------------------
log "generating $md and $png"
"$bin/wsv2-bench-report" --results "$out" --md "$md" --png "$png" --font "$font"
if [ "$smoke" = 1 ]; then
  [ -s "$md" ] && [ -s "$png" ] || { echo "the report generator wrote no $md or $png" >&2; exit 1; }
  # The PNG signature, so an empty or broken file fails here.
  [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "$png is not a PNG" >&2; exit 1; }
fi
log "done: $md, $png (raw results in $out)"
