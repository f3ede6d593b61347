#!/usr/bin/env bash
# bench/mpi — data parallelism on one machine: 2 MPI ranks x 1 thread (lib/run/dist.h)
# against 1 process x 2 threads, at the same global batch, on the same model and data
# (moby-dick in 1 KiB pieces, bytes, packed rows): config A of bench/train.sh (4 layers, 256 wide, 4 heads,
# T 256), global batch 8 (one process: -B 8; each rank: -B 4 from its kiln load --shard).
# Each side trains STEPS steps ROUNDS times, alternating, and keeps its best tokens/s (the
# final metrics record's: all ranks' tokens over rank 0's wall time).  Prints a Markdown
# table, rank 0's all-reduce share, and the ratio (aim: >= 0.9).
# Usage: bench/mpi.sh [STEPS [ROUNDS]]   (after `make` with libopenmpi-dev installed)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-20}
rounds=${2:-3}
export K=$PWD/bin/kiln TXT=$PWD/examples/data/moby-dick.txt OPENBLAS_NUM_THREADS=1
command -v mpirun > /dev/null || { echo "bench/mpi.sh: skipped: mpirun missing (make deps)"; exit 0; }
[[ $(ldd bin/kiln-train) == *libmpi* ]] || { echo "bench/mpi.sh: skipped: kiln-train built without MPI"; exit 0; }
export MODEL="--layers 4 --dim 256 --heads 4 --ctx 256 --steps $steps --log-every $steps"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT; [ -n "${KEEP:-}" ] && trap - EXIT
rate() { "$K" show < "$1" 2> /dev/null | jq -s -r 'map(select(.t == "metrics")) | last | .tokens_per_s'; }
best() { awk -v a="$1" -v b="${2:-0}" 'BEGIN { print (a > b ? a : b) }'; }

one() {
    "$K" load text:"$TXT" --split chunk:1024 2> /dev/null | "$K" tokenize --bytes | "$K" batch -B 8 -T 256 --pack |
        "$K" train $MODEL --threads 2 > "$work/one.rec"
    rate "$work/one.rec"
}
two() {
    rm -f "$work/fifo" && mkfifo "$work/fifo"
    cat < "$work/fifo" > "$work/two.rec" &
    mpirun --oversubscribe --allow-run-as-root -np 2 -x OPENBLAS_NUM_THREADS -x MODEL -x K -x TXT \
        sh -c '"$K" load text:"$TXT" --split chunk:1024 --shard $OMPI_COMM_WORLD_RANK/2 2> /dev/null |
            "$K" tokenize --bytes | "$K" batch -B 4 -T 256 --pack |
            "$K" train $MODEL --threads 1 --out '"$work/fifo" 2> "$work/two.err"
    wait
    rate "$work/two.rec"
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $(mpirun --version | head -1);" \
     "$steps steps, best of $rounds rounds; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
r1=0 r2=0
for ((r = 0; r < rounds; r++)); do
    r1=$(best "$(one)" "$r1")
    r2=$(best "$(two)" "$r2")
done
echo
echo "| run | tokens/s | ratio |"
echo "|---|---|---|"
printf '| 1 process x 2 threads, batch 8 | %.0f | 1.00 |\n' "$r1"
printf '| 2 ranks x 1 thread, batch 4 each | %.0f | %s |\n' "$r2" "$(awk -v a="$r2" -v b="$r1" 'BEGIN { printf "%.2f", a / b }')"
echo
echo "rank 0, last round: $(grep 'all-reduce:' "$work/two.err" | sed 's/^kiln train: //')"
echo "ratio (2 ranks / 1 process): $(awk -v a="$r2" -v b="$r1" 'BEGIN { printf "%.2f", a / b }')"
