#!/usr/bin/env bash
# The test command of wsv2: README.md and .ci/run both call exactly this script.
#
# It makes sure a Redis answers on 127.0.0.1:6379 (installing and starting one if needed), sets up
# the real-client fixtures when they exist, then runs the format check, the sans-IO dependency
# check, clippy and the whole workspace test suite. Each step is printed with a timestamp; the wall
# time is printed at the end, pass or fail.
set -euo pipefail

cd "$(dirname "$0")/.."

readonly started=$SECONDS
current_step="start-up"

# Prints a step header: wall-clock time and seconds since the script started.
step() {
  current_step="$*"
  printf '\n[%s +%4ds] ==> %s\n' "$(date +%H:%M:%S)" "$((SECONDS - started))" "$*"
}

# Runs at exit: the verdict and the wall time, so a failing run still says how long it took.
finish() {
  local status=$?
  local wall=$((SECONDS - started))
  if [ "$status" -eq 0 ]; then
    printf '\n[%s] scripts/test.sh passed; wall time %dm%02ds\n' "$(date +%H:%M:%S)" "$((wall / 60))" "$((wall % 60))"
  else
    printf '\n[%s] scripts/test.sh FAILED (exit %d) in step: %s; wall time %dm%02ds\n' \
      "$(date +%H:%M:%S)" "$status" "$current_step" "$((wall / 60))" "$((wall % 60))" >&2
  fi
}
trap finish EXIT

# Runs a command as root, through sudo when we are not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "need root to run: $*" >&2
    return 1
  fi
}

readonly redis_host=127.0.0.1
readonly redis_port=6379

redis_answers() {
  command -v redis-cli >/dev/null 2>&1 &&
    [ "$(redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null)" = "PONG" ]
}

# --- (a) Redis ------------------------------------------------------------------------------
step "Redis on $redis_host:$redis_port"
if redis_answers; then
  echo "a Redis already answers PONG; using it"
else
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "installing redis-server with apt-get"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  # No persistence: test data is throwaway, and snapshots would only cost disk writes.
  redis-server --daemonize yes --bind "$redis_host" --port "$redis_port" --save '' --appendonly no >/dev/null
  # Bounded readiness poll: up to 10 s for the daemon to accept connections.
  for _ in $(seq 1 100); do
    redis_answers && break
    sleep 0.1
  done
  if ! redis_answers; then
    echo "redis-server did not answer PING on $redis_host:$redis_port within 10 s" >&2
    exit 1
  fi
  echo "started redis-server (left running; stop it with: redis-cli -p $redis_port shutdown nosave)"
fi
export WSV2_REDIS_URL="redis://$redis_host:$redis_port"
echo "WSV2_REDIS_URL=$WSV2_REDIS_URL"

# --- (b) Real clients -----------------------------------------------------------------------
if [ -f tests/clients/setup.sh ]; then
  step "real-client fixtures (tests/clients/setup.sh)"
  bash tests/clients/setup.sh
  # The client tests must run, not skip, once their fixtures are installed.
  export WSV2_REQUIRE_CLIENTS=1
else
  step "real-client fixtures: tests/clients/setup.sh not present, skipped"
fi

# Snapshots are compared, never written: insta fails on a mismatch under CI=true and writes nothing.
export CI="${CI:-true}"
unset INSTA_UPDATE INSTA_FORCE_PASS

# --- (c) Formatting -------------------------------------------------------------------------
step "cargo fmt --all -- --check"
cargo fmt --all -- --check

# --- sans-IO: no runtime, socket, clock or Redis crate under the core -----------------------
step "cargo tree -p wsv2-core -e normal: no async runtime, socket or Redis crate"
core_crates=$(cargo tree -p wsv2-core -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
forbidden=$(grep -x -E 'tokio|smol|async-io|async-net|redis|mio|futures-executor' <<<"$core_crates" || true)
if [ -n "$forbidden" ]; then
  echo "wsv2-core must stay sans-IO, but its normal dependency tree contains:" >&2
  echo "$forbidden" | sed 's/^/  - /' >&2
  echo "run: cargo tree -p wsv2-core -e normal -i <crate>   to see which dependency pulls it in" >&2
  exit 1
fi
echo "ok: $(wc -l <<<"$core_crates") crates, none of tokio, smol, async-io, async-net, redis, mio, futures-executor"

# --- No import circles in the core or the driver: no two modules of either name each other ---
step "python3 scripts/import-cycles.py --check core/src shells/common/src"
python3 scripts/import-cycles.py --check core/src shells/common/src

# --- (d) Lints (also type-checks benches, examples and tests) -------------------------------
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# --- (e) Tests (one test-profile build of the workspace) ------------------------------------
step "cargo test --workspace"
mkdir -p target
test_log=target/scripts-test.log
cargo test --workspace 2>&1 | tee "$test_log"

# One line for the whole run, summed over every test binary and the doc tests.
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i + 1) ~ /^(passed|failed|ignored)/) totals[$(i + 1)] += $i
       }
       binaries++
     }
     END {
       printf "\nall test binaries: %d passed; %d failed; %d ignored (%d result lines)\n",
         totals["passed;"], totals["failed;"], totals["ignored;"], binaries
     }' "$test_log"

# --- (f) Fuzz smoke -------------------------------------------------------------------------
# Every fuzz target mutates its committed corpus for a few seconds on the test-profile build
# (the coverage-guided libFuzzer runs are `tests/fuzz/run.sh` without --smoke).
step "tests/fuzz/run.sh --smoke"
bash tests/fuzz/run.sh --smoke

# --- (g) Benchmark smoke --------------------------------------------------------------------
# The benchmark script end to end in its few-second mode on the test-profile binaries (no
# release build, no nginx, no thresholds), including the report generator on its own output.
step "tests/bench/run.sh --smoke"
bash tests/bench/run.sh --smoke

# --- (h) Reliability smoke ------------------------------------------------------------------
# Every reliability workload at small sizes against both shells, on the test-profile binaries
# (built by the step above), RELIABILITY.md generated in a temporary folder; fails on a broken
# pass rule.
step "tests/reliability/run.sh --smoke"
bash tests/reliability/run.sh --smoke

# --- (i) Prometheus rules and Grafana dashboard ---------------------------------------------
# promtool check/test of deploy/prometheus, then every panel query of deploy/grafana evaluated by
# a real Prometheus scraping a gateway after a workload with failovers, cooldowns and a breaker
# opening (installs Debian's prometheus package when missing; ~15 s).
step "scripts/prometheus-check.py"
# The binaries the benchmark step built (--tests too: the same features, nothing recompiles).
cargo build -q --workspace --bins --tests
python3 scripts/prometheus-check.py
