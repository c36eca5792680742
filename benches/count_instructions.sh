#!/usr/bin/env bash
# Instructions per factory of `Pipeline::run()` on the overhead bench's pipelines, counted by
# callgrind: exact where wall time on a shared box hides a 5% change. Needs valgrind.
#
#   cargo build --release -p setl-benches --example run_loop
#   benches/count_instructions.sh [run_loop binary] [factories per pipeline]
#
# Prints, per shape, the instructions of the calling thread (resolution, tables; toggled on
# `Pipeline::run`) and of the workers (toggled on the rayon jobs that run `runtime::scheduler::worker`), each
# divided by the factories run (10 pipelines). A worker takes one factory per lock.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/examples/run_loop}
count=${2:-2000}
runs=10
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
collected() {
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" --toggle-collect="$1" \
        "$bin" "$2" "$runs" "$count" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for shape in chain fan_out; do
    # A fan-out of `count` consumers has one producer more.
    nodes=$count
    if [ "$shape" = fan_out ]; then nodes=$((count + 1)); fi
    factories=$((runs * nodes))
    main=$(collected 'setl_core::pipeline::Pipeline::run' "$shape")
    workers=$(collected '*HeapJob*as rayon_core::job::Job*execute*' "$shape")
    echo "$shape: calling thread $((main / factories)), workers $((workers / factories)), total $(((main + workers) / factories)) instructions per factory"
done
