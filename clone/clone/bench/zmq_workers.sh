#!/usr/bin/env bash
# bench/zmq_workers.sh — records/s through a ZeroMQ fan-out, W pass-through workers and a
# fan-in: `kiln cat --fan-out W` → W × `kiln cat` → `kiln cat --fan-in W`, small records
# (one `sample` with a short text, ~60 bytes) and 28x28 images (~900 bytes), median of
# RUNS of the wall time and of the CPU time all processes used (steadier on a loaded machine).  What the per-worker credit, finish reports and duplicate check cost
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
one_run() { # input file, workers: "wall cpu" seconds of the whole fan-out/fan-in, cpu summed
    local in=$1 w=$2 s=$tmp/s$RANDOM                # over every process (user + system)
    TIMEFORMAT='%R %U %S'
    { time {
        "$K" cat --in "@ipc://$s.in" --fan-in "$w" > /dev/null &
        for _ in $(seq "$w"); do "$K" cat --in "ipc://$s.out" --out ">ipc://$s.in" & done
        "$K" cat --out "@ipc://$s.out" --fan-out "$w" < "$in"
        wait
    } ; } 2>&1 | awk '{print $1, $2 + $3}'
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $n records, median of $runs"
echo
echo "| records | workers | wall s | records/s | CPU s (all processes) | CPU µs per record |"
echo "|---|---|---|---|---|---|"
for kind in small image; do
    for w in 1 2 4; do
        walls="" cpus=""
        for _ in $(seq "$runs"); do
            read -r wall cpu < <(one_run "$tmp/$kind.rec" "$w")
            walls+="$wall " cpus+="$cpu "
        done
        s=$(echo $walls | tr ' ' '\n' | median) c=$(echo $cpus | tr ' ' '\n' | median)
        printf '| %s | %d | %.2f | %.0f | %.2f | %.1f |\n' "$kind" "$w" "$s" "$(echo "$n / $s" | bc -l)" \
            "$c" "$(echo "$c * 1000000 / $n" | bc -l)"
    done
done
