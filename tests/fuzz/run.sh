#!/usr/bin/env bash
# The fuzzing of wsv2: coverage-guided runs of every target, or CI's smoke.
#
#   tests/fuzz/run.sh --smoke [--time S]         blind mutation of the committed corpus, S s per
#                                                target (default 3), in the ordinary test build
#   tests/fuzz/run.sh [--time S] [--jobs N] [--merge] [TARGET...]
#                                                libFuzzer, S s per target (default 300), N
#                                                processes each (default 1); --merge adds what
#                                                it found to the committed corpus (minimized)
#
# The libFuzzer harness (tests/fuzz/libfuzzer) builds on the stable toolchain with the same
# SanitizerCoverage flags cargo-fuzz passes (`cargo fuzz build -s none`): libFuzzer needs only
# coverage instrumentation, which stable rustc provides through -C passes / -C llvm-args. What
# stable lacks is -Z sanitizer=address; the fuzzed crates forbid unsafe code, so AddressSanitizer
# would watch only dependencies, and RUSTC_BOOTSTRAP (which unlocks it) is not used.
#
# Each run prints one line per target (executions, seconds, new corpus entries, crashes) and
# writes target/fuzz/summary.json. A crash is saved under target/fuzz/artifacts/<target>/ and
# fails the run; replay it with
#   cargo run -p wsv2-fuzz --bin wsv2-fuzz -- replay TARGET FILE
# and commit it to tests/fuzz/regressions/<target>/ with its fix.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
readonly all_targets=(events session http sse config proxy)

smoke=0
seconds=""
jobs=1
merge=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --time) seconds="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    --merge) merge=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

if [ "$smoke" -eq 1 ]; then
  exec cargo run -q -p wsv2-fuzz --bin wsv2-fuzz -- smoke --seconds "${seconds:-3}" "${targets[@]}"
fi

seconds=${seconds:-300}
out=$root/target/fuzz
mkdir -p "$out"

# The flags of `cargo fuzz build -s none` (cargo-fuzz 0.12/0.13) on x86_64 Linux.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks -Cforce-frame-pointers"
triple=$(rustc -vV | sed -n 's/^host: //p')
echo "building the libFuzzer harness ($triple, release + debug assertions)"
(cd tests/fuzz/libfuzzer && cargo build --release --target "$triple" --bins)
bin=$root/tests/fuzz/libfuzzer/target/$triple/release

dict_of() {
  case "$1" in
    config) echo "$root/tests/fuzz/dict/config.dict" ;;
    proxy) echo "$root/tests/fuzz/dict/proxy.dict" ;;
    *) echo "$root/tests/fuzz/dict/json.dict" ;;
  esac
}

# Folds the inputs of a run into the committed corpus: the smallest set of the committed and new
# inputs that covers every edge either covers (libFuzzer's set-cover merge; hit counts and
# comparison operands are not kept as features, which keeps the corpus a fifth of the size for
# 99.7 % of the edges). Hand-written seeds (named files) stay; libFuzzer's (named by SHA-1) are
# replaced.
merge_corpus() {
  local target=$1 work=$2 committed=tests/fuzz/corpus/$1 fresh=$out/merged/$1
  rm -rf "$fresh"
  mkdir -p "$fresh"
  "$bin/$target" -set_cover_merge=1 -use_counters=0 -use_cmp=0 -max_len=4096 \
    "$fresh" "$committed" "$work" || return 0
  find "$committed" -regextype egrep -regex '.*/[0-9a-f]{40}' -delete
  for seed in "$committed"/*; do
    rm -f "$fresh/$(sha1sum "$seed" | cut -d' ' -f1)"
  done
  cp "$fresh"/* "$committed"/ 2>/dev/null || true
}

failed=0
summary="["
for target in "${targets[@]}"; do
  work=$out/corpus/$target
  artifacts=$out/artifacts/$target
  mkdir -p "$work" "$artifacts"
  before=$(ls tests/fuzz/corpus/"$target" | wc -l)
  log=$out/$target.log
  # The scripted targets need long inputs from the start (each step is a few bytes); libFuzzer
  # would otherwise grow the length limit slowly from a few dozen bytes.
  len_flags=""
  case "$target" in session|http) len_flags="-len_control=0" ;; esac
  # -jobs, even 1, forks workers that log to fuzz-N.log: pass it only for parallel runs.
  jobs_flags=""
  if [ "$jobs" -gt 1 ]; then jobs_flags="-jobs=$jobs -workers=$jobs"; fi
  set +e
  seeds=(tests/fuzz/corpus/"$target")
  [ -d tests/fuzz/regressions/"$target" ] && seeds+=(tests/fuzz/regressions/"$target")
  "$bin/$target" "$work" "${seeds[@]}" \
    -dict="$(dict_of "$target")" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -max_total_time="$seconds" $jobs_flags $len_flags -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1
  status=$?
  set -e
  # With -jobs, each worker logs to fuzz-N.log; their stats add up.
  logs=("$log")
  if [ "$jobs" -gt 1 ]; then logs=(fuzz-*.log); fi
  execs=$(cat "${logs[@]}" | awk '/stat::number_of_executed_units/ {n += $NF} END {print n + 0}')
  crashes=$(find "$artifacts" -type f | wc -l)
  [ "$jobs" -gt 1 ] && mv fuzz-*.log "$out/" 2>/dev/null || true
  if [ "$merge" -eq 1 ]; then
    merge_corpus "$target" "$work" >>"$log" 2>&1
  fi
  after=$(ls tests/fuzz/corpus/"$target" | wc -l)
  printf '%-8s %12d execs %6d s  corpus %d -> %d  crashes %d  (exit %d, log %s)\n' \
    "$target" "$execs" "$seconds" "$before" "$after" "$crashes" "$status" "${log#"$root"/}"
  summary+=$(printf '{"target":"%s","seconds":%d,"execs":%d,"crashes":%d,"corpus":%d}' \
    "$target" "$seconds" "$execs" "$crashes" "$after")
  [ "$target" = "${targets[-1]}" ] || summary+=","
  if [ "$crashes" -gt 0 ] || [ "$status" -ne 0 ]; then failed=1; fi
done
echo "$summary]" >"$out/summary.json"
exit "$failed"
