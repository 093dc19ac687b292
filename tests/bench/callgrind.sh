#!/usr/bin/env bash
# Instructions per relayed event, for run.sh: each relaying target (not direct) runs under
# `valgrind --tool=callgrind` in front of its own (native) mock; after a warm-up turn the
# counters are zeroed, a fixed workload runs, and the counters are dumped. Callgrind counts
# user-space instructions: repeatable on a noisy machine, blind to time spent in the kernel.

# run_callgrind OUT_JSON: one line per target with its instruction count; the events come from
# the loadgen report written beside it (callgrind_<target>.json).
run_callgrind() {
  local file=$1 t entries=()
  local workload=(--sessions 4 --turns 5 --warmup 0 --deltas 200 --rounds 1)
  for t in "${targets[@]}"; do
    [ "$t" = direct ] && continue
    log "callgrind: $t"
    phase=callgrind-$t
    spawn_listening "$phase.mock" "$bin/wsv2-mock-upstream" --listen 127.0.0.1:0 --api-key "$key"
    local cg="$work/cg.$t.out"
    wrap_single=1 start_target "$t" "$spawned_url" 16 \
      valgrind --tool=callgrind --callgrind-out-file="$cg" --dump-instr=no
    local pid=${target_pids%% *}
    "$bin/wsv2-loadgen" --api-key "$key" --target "$t=$target_url" --sessions 1 --turns 1 --deltas 20 \
      >/dev/null
    callgrind_control -z "$pid" >/dev/null
    "$bin/wsv2-loadgen" --api-key "$key" --target "$t=$target_url" "${workload[@]}" \
      --json "$out/callgrind_$t.json" >/dev/null
    callgrind_control -d "$pid" >/dev/null
    local dump ir
    dump=$(ls -t "$cg".* 2>/dev/null | head -n1)
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    stop_phase
    entries+=("{\"target\":$(json_str "$t"),\"instructions\":${ir:-0},\"loadgen\":$(json_str "callgrind_$t.json")}")
  done
  local IFS=,
  printf '{"workload":%s,"targets":[%s]}\n' "$(json_str "${workload[*]}")" "${entries[*]}" >"$file"
}
