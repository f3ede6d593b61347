#!/usr/bin/env bash
# bench/train — kiln's training step against PyTorch's, side by side, on the same configs:
# random tokens, 2 threads, median step time of STEPS steps after 2 warm-up steps.
#   A: 4 layers, 256 wide, 4 heads, vocab 256, T 256, B 8
#   B: 6 layers, 384 wide, 6 heads, vocab 256, T 256, B 16
# PyTorch runs at its best: OMP_WAIT_POLICY=PASSIVE and torch.set_num_threads(2).
# Model FLOPs per token: 6 * params + 12 * layers * T * width.  Peak: the FMA peak of this
# 2-core Zen 4, about 230 GFLOP/s (PEAK=... to override).  Prints a Markdown table.
# The machine may be shared: each config runs ROUNDS times (default 3), kiln and PyTorch
# alternating, and each keeps its fastest round's median, so both get their quietest spell.
# Usage: bench/train.sh [STEPS [ROUNDS]]   (after `make`; needs /usr/bin/python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-10}
rounds=${2:-3}
peak=${PEAK:-230}
kiln=build/rel/bench/train_kiln
[ -x "$kiln" ] || make -s
field() { sed -E "s/.*\"$2\": ?([0-9.]+).*/\1/" <<<"$1"; }
# the faster of two result lines (by step_ms); the first when the second is empty
faster() { [ -z "$2" ] && { echo "$1"; return; }
    awk -v a="$(field "$1" step_ms)" -v b="$(field "$2" step_ms)" 'BEGIN{exit !(a <= b)}' && echo "$1" || echo "$2"; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs;" \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; median of $steps steps after 2 warm-up," \
     "best of $rounds rounds; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| config | impl | step ms | tokens/s | model GFLOP/s | % of peak | peak RSS MB | speed-up |"
echo "|---|---|---|---|---|---|---|---|"
for cfg in "A:--layers 4 --dim 256 --heads 4 --vocab 256 -T 256 -B 8" \
           "B:--layers 6 --dim 384 --heads 6 --vocab 256 -T 256 -B 16"; do
    name=${cfg%%:*} args=${cfg#*:}
    k= t=
    for ((r = 0; r < rounds; r++)); do
        k=$(faster "$(KILN_THREADS=2 $kiln $args --steps "$steps")" "$k")
        t=$(faster "$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/train_torch.py $args --threads 2 --steps "$steps")" "$t")
    done
    kt=$(field "$k" tokens_per_s) tt=$(field "$t" tokens_per_s)
    for r in "kiln:$k" "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'):$t"; do
        impl=${r%%:*} j=${r#*:}
        g=$(field "$j" gflops)
        speed=$([ "$impl" = kiln ] && awk -v a="$kt" -v b="$tt" 'BEGIN{printf "%.2fx", a/b}' || echo 1.00x)
        printf '| %s | %s | %s | %s | %s | %s%% | %s | %s |\n' "$name" "$impl" \
            "$(field "$j" step_ms)" "$(field "$j" tokens_per_s)" "$g" \
            "$(awk -v g="$g" -v p="$peak" 'BEGIN{printf "%.0f", 100*g/p}')" \
            "$(field "$j" rss_mb)" "$speed"
    done
done
