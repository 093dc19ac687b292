#!/usr/bin/env bash
# Instructions per relayed event, for run.sh: each relaying target (not direct) runs under
# `valgrind --tool=callgrind` in front of its own (native) mock. After a warm-up turn the
# counters are dumped (a dump also resets them), a fixed workload runs, and the counters are
# dumped again: the second dump is the workload's. Callgrind counts user-space instructions:
# repeatable on a noisy machine, blind to time spent in the kernel. Two variants: paced (1 ms
# between deltas, so every event travels alone) and unpaced (events batch in the socket buffers,
# which a byte relay forwards per read, not per event).

# run_callgrind OUT_JSON: one entry per target and variant with its instruction count; the
# events come from the loadgen report written beside it (callgrind_<variant>_<target>.json).
run_callgrind() {
  local file=$1 t variant entries=() variants=()
  local -A mock_flags=([paced]="--delta-interval 1ms" [unpaced]="")
  local -A workload=([paced]="--sessions 2 --turns 5 --warmup 0 --deltas 200 --rounds 1"
    [unpaced]="--sessions 4 --turns 5 --warmup 0 --deltas 200 --rounds 1")
  for variant in paced unpaced; do
    variants+=("{\"name\":\"$variant\",\"mock_flags\":$(json_str "${mock_flags[$variant]}"),\"workload\":$(json_str "${workload[$variant]}")}")
    for t in "${targets[@]}"; do
      [ "$t" = direct ] && continue
      log "callgrind: $t, $variant"
      phase=callgrind-$variant-$t
      # shellcheck disable=SC2086 # flag lists
      spawn_listening "$phase.mock" "$bin/wsv2-mock-upstream" --listen 127.0.0.1:0 --api-key "$key" \
        ${mock_flags[$variant]}
      local cg="$work/cg.$variant.$t.out"
      wrap_single=1 start_target "$t" "$spawned_url" 16 \
        valgrind --tool=callgrind --callgrind-out-file="$cg" --dump-instr=no --compress-strings=no
      local pid=${target_pids%% *} report="callgrind_${variant}_$t.json"
      "$bin/wsv2-loadgen" --api-key "$key" --target "$t=$target_url" --sessions 1 --turns 1 \
        --deltas 20 >/dev/null
      callgrind_control -d "$pid" >/dev/null 2>&1
      # shellcheck disable=SC2086
      "$bin/wsv2-loadgen" --api-key "$key" --target "$t=$target_url" ${workload[$variant]} \
        --json "$out/$report" >/dev/null
      callgrind_control -d "$pid" >/dev/null 2>&1
      local ir
      ir=$(awk '/^totals:/ {print $2; exit}' "$cg.2")
      cp "$cg.2" "$out/cg.$variant.$t.out" 2>/dev/null || true
      stop_phase
      entries+=("{\"target\":$(json_str "$t"),\"variant\":\"$variant\",\"instructions\":${ir:-0},\"loadgen\":$(json_str "$report")}")
    done
  done
  local IFS=,
  printf '{"variants":[%s],"targets":[%s]}\n' "${variants[*]}" "${entries[*]}" >"$file"
}
