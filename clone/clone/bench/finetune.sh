#!/usr/bin/env bash
# bench/finetune — what fine-tuning costs on the 6-layer, 384-wide model (--model char):
# step time and AdamW state for full fine-tuning, two frozen bodies and LoRA.
#   full        every tensor trains
#   all-but-head  --freeze all-but-head: ln_f and the tied wte/head train; the gradient
#                 still flows down to the input embeddings (weight GEMMs skipped)
#   last block  --freeze embeddings,blocks:0-4: block 5 and ln_f train; backward stops there
#   LoRA        --lora r=8,alpha=16,targets=qkv,proj,fc,fcproj
# Moby-Dick bytes, B 8, T 256, 2 threads.  Step time: the mean over steps 3..STEPS (the
# metrics record after step 2 resets the clock), best of ROUNDS alternating rounds, since the
# machine may be shared.  AdamW state: the optim_bytes of the metrics (m and v, 4 bytes
# each).  Prints a Markdown table.   Usage: bench/finetune.sh [STEPS [ROUNDS]]  (after make)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-8}
rounds=${2:-2}
PATH="$PWD/bin:$PATH"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kiln load text:examples/data/moby-dick.txt --split chunk:256 --limit 400 | kiln tokenize --bytes \
    | kiln batch -B 8 -T 256 > "$tmp/batches.rec"
kiln train --in "$tmp/batches.rec" --model char --steps 1 --threads 2 | kiln ckpt --dir "$tmp/base" > /dev/null
base=$tmp/base/latest.safetensors

modes=("full:--finetune" "all-but-head:--freeze all-but-head"
    "last block:--freeze embeddings,blocks:0-4" "LoRA r=8:--lora r=8,alpha=16,targets=qkv,proj,fc,fcproj")
declare -A best optim
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; model char (6 layers," \
    "384 wide, 6 heads), B 8, T 256, 2 threads; mean of steps 3..$steps, best of $rounds rounds;" \
    "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for ((r = 0; r < rounds; r++)); do
    for m in "${modes[@]}"; do
        name=${m%%:*}
        read -r -a args <<< "${m#*:}"
        kiln train --in "$tmp/batches.rec" --init "$base" "${args[@]}" --steps "$steps" --log-every 2 \
            --threads 2 2> /dev/null | kiln show > "$tmp/m.jsonl"
        # tokens/s of the metrics after the last step covers steps 3..N (logged every 2)
        tps=$(jq -s '[.[] | select(.t == "metrics")] | .[1:] | map(.tokens_per_s) | add / length' "$tmp/m.jsonl")
        ms=$(awk -v t="$tps" 'BEGIN { printf "%.0f", 8 * 256 / t * 1000 }')
        optim[$name]=$(jq -s '[.[] | select(.t == "metrics")] | last | .optim_bytes' "$tmp/m.jsonl")
        if [ -z "${best[$name]:-}" ] || [ "$ms" -lt "${best[$name]}" ]; then best[$name]=$ms; fi
    done
done
full_ms=${best[full]} full_opt=${optim[full]}
echo "| fine-tuning | step ms | vs full | AdamW state MB | vs full |"
echo "|---|---|---|---|---|"
for m in "${modes[@]}"; do
    name=${m%%:*}
    awk -v n="$name" -v ms="${best[$name]}" -v f="$full_ms" -v o="${optim[$name]}" -v fo="$full_opt" \
        'BEGIN { printf "| %s | %d | %.2fx | %.2f | %.3fx |\n", n, ms, ms / f, o / 1e6, o / fo }'
done
