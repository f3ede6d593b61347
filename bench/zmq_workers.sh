#!/usr/bin/env bash
# bench/zmq_workers.sh — records/s through a ZeroMQ fan-out, W pass-through workers and a
# fan-in: `kiln cat --fan-out W` → W × `kiln cat` → `kiln cat --fan-in W`, small records
# (one `sample` with a short text, ~60 bytes) and 28x28 images (~900 bytes), median of
# RUNS.  What the per-worker credit, finish reports and duplicate check cost
# (lib/stream/zmqio.c).  Prints a Markdown table.
#   usage: bench/zmq_workers.sh [RECORDS] [RUNS]   (after make; default 200000, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
K=${KILN_BENCH_KILN:-$PWD/bin/kiln}
n=${1:-200000}
runs=${2:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seq 1 "$n" | awk '{printf "{\"t\":\"sample\",\"id\":%d,\"text\":\"record number %d\"}\n", $1, $1}' \
    | "$K" import > "$tmp/small.rec"
FM=tests/fixtures/fashion-mnist
"$K" load "idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz" \
    --epochs $(( (n + 199) / 200 )) --limit "$n" > "$tmp/image.rec" 2> /dev/null

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
one_run() { # input file, workers: wall seconds of the whole fan-out/fan-in
    local in=$1 w=$2 s=$tmp/s$RANDOM t0 pids=()
    t0=$(date +%s%N)
    "$K" cat --in "@ipc://$s.in" --fan-in "$w" > /dev/null & pids+=($!)
    for _ in $(seq "$w"); do "$K" cat --in "ipc://$s.out" --out ">ipc://$s.in" & pids+=($!); done
    "$K" cat --out "@ipc://$s.out" --fan-out "$w" < "$in"
    wait "${pids[@]}"
    echo "scale=6; ($(date +%s%N) - $t0) / 1000000000" | bc
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $n records, median of $runs"
echo
echo "| records | workers | seconds | records/s |"
echo "|---|---|---|---|"
for kind in small image; do
    for w in 1 2 4; do
        t=""
        for _ in $(seq "$runs"); do t+="$(one_run "$tmp/$kind.rec" "$w") "; done
        s=$(echo $t | tr ' ' '\n' | median)
        printf '| %s | %d | %.2f | %.0f |\n' "$kind" "$w" "$s" "$(echo "$n / $s" | bc -l)"
    done
done
