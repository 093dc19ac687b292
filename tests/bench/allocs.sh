#!/usr/bin/env bash
# Heap allocations per relayed event, for run.sh: each gateway target, built with the
# `alloc-count` feature (a counting global allocator), runs in front of its own mock; the
# process's count is read from `GET /metrics` (`wsv2_process_heap_allocations_total`) after a
# warm-up turn, after a short workload and after a long one with the same sessions and turns
# but more deltas per turn. Two figures per target and variant:
#   - whole: every allocation of the long workload (per-session and per-turn ones included)
#     divided by the events it relayed;
#   - per extra event: (long - short allocations) / (long - short events), per-session and
#     per-turn allocations cancelling out: what one more relayed event costs.
# Two variants: paced (1 ms between deltas, every event alone) and unpaced (events batch).

# metric_allocations: the allocation counter of the gateway start_target started last (its
# /metrics is on the admin listener, at target_admin_port). awk reads to the end: exiting at the
# match closed the pipe while curl was still writing, and curl's error 23 ("Failed writing
# body") ended the run under pipefail.
metric_allocations() {
  curl -fsS "http://127.0.0.1:$target_admin_port/metrics" |
    awk '/^wsv2_process_heap_allocations_total / && !seen {print $2; seen = 1}'
}

# loadgen_events FILE TARGET: events relayed (framing events included) in a loadgen report.
loadgen_events() {
  python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
print(sum(x["events_all"] for x in r["rounds"] if x["target"] == sys.argv[2] and not x["warmup"]))' "$1" "$2"
}

# run_allocs OUT_JSON SESSIONS TURNS SHORT_DELTAS LONG_DELTAS
run_allocs() {
  local file=$1 sessions=$2 turns=$3 short=$4 long=$5 t variant entries=()
  local -A mock_flags=([paced]="--delta-interval 1ms" [unpaced]="")
  for variant in paced unpaced; do
    for t in "${targets[@]}"; do
      case "$t" in tokio | smol) ;; *) continue ;; esac
      log "allocations: $t, $variant"
      phase=allocs-$variant-$t
      # shellcheck disable=SC2086 # flag lists
      spawn_listening "$phase.mock" "${pin_mock[@]}" "$bin/wsv2-mock-upstream" --listen 127.0.0.1:0 \
        --api-key "$key" ${mock_flags[$variant]}
      start_target "$t" "$spawned_url" "$sessions"
      local load=("${pin_load[@]}" "$bin/wsv2-loadgen" --api-key "$key" --target "$t=$target_url"
        --sessions "$sessions" --turns "$turns" --warmup 0 --rounds 1)
      "${pin_load[@]}" "$bin/wsv2-loadgen" --api-key "$key" --target "$t=$target_url" --sessions "$sessions" \
        --turns 1 --deltas 20 >/dev/null
      local a0 a1 a2 e1 e2
      a0=$(metric_allocations)
      "${load[@]}" --deltas "$short" --json "$work/$phase.short.json" >/dev/null
      a1=$(metric_allocations)
      "${load[@]}" --deltas "$long" --json "$work/$phase.long.json" >/dev/null
      a2=$(metric_allocations)
      stop_phase
      if [ -z "$a0" ] || [ -z "$a2" ]; then
        echo "allocations: $t has no wsv2_process_heap_allocations_total (built without alloc-count?)" >&2
        return 1
      fi
      e1=$(loadgen_events "$work/$phase.short.json" "$t")
      e2=$(loadgen_events "$work/$phase.long.json" "$t")
      entries+=("{\"target\":$(json_str "$t"),\"variant\":\"$variant\",\"short\":{\"events\":$e1,\"allocations\":$((a1 - a0))},\"long\":{\"events\":$e2,\"allocations\":$((a2 - a1))}}")
      log "allocations: $t, $variant: $((a2 - a1)) over $e2 events; $((a1 - a0)) over $e1"
    done
  done
  local IFS=,
  printf '{"sessions":%d,"turns":%d,"short_deltas":%d,"long_deltas":%d,"mock_flags":{"paced":%s,"unpaced":""},"targets":[%s]}\n' \
    "$sessions" "$turns" "$short" "$long" "$(json_str "${mock_flags[paced]}")" "${entries[*]}" >"$file"
}
