#!/usr/bin/env bash
# examples/text/sotu.sh [DIR] — fine-tune the book model on Lincoln's State of the Union
# addresses (examples/data/sotu-lincoln.txt), and count the steps scratch training needs to
# do as well.
#
#   BOOK=runs/moby/ckpt/best.safetensors examples/text/sotu.sh runs/sotu
#
# BOOK is a Moby-Dick byte model (pipelines/pretrain.sh --text examples/data/moby-dick.txt);
# without it one is pretrained first (PRE_STEPS, default 1500, the pretrain.sh default
# model: 4 layers, 128 wide, context 128).  Then, on the addresses (the last 10% held out):
#   full fine-tuning and LoRA (r=8, every block linear) for FT_STEPS (default 200) steps,
#   and the same model trained from scratch for SCRATCH_STEPS (default 1600), evaluated
#   every 100 steps, to find where it first matches the fine-tuned held-out bits/byte.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/sotu}
pre_steps=${PRE_STEPS:-1500} ft_steps=${FT_STEPS:-200} scratch_steps=${SCRATCH_STEPS:-1600}
threads=${THREADS:-0}
text=$here/examples/data/sotu-lincoln.txt
mkdir -p "$dir"
book=${BOOK:-$dir/book/ckpt/latest.safetensors}
if [ ! -f "$book" ]; then
    "$here/pipelines/pretrain.sh" --text "$here/examples/data/moby-dick.txt" --steps "$pre_steps" \
        --every "$pre_steps" --threads "$threads" --out "$dir/book"
fi
for mode in full lora; do
    [ -f "$dir/$mode/result.txt" ] || "$here/pipelines/finetune.sh" --base "$book" --text "$text" \
        --mode $mode --steps "$ft_steps" --prompt 'Fellow-citizens' --threads "$threads" \
        --out "$dir/$mode"
done
after() { awk '{ print $(NF - 3) }' "$dir/$1/result.txt" | tr -d ,; }
before() { awk '{ print $(NF - 5) }' "$dir/$1/result.txt" | tr -d ,; }

# scratch: the book model's shape, a fresh start, the same data and held-out set
cfg=$(kiln ckpt inspect "$book" | awk '$1 == "config" { print $2 }')
shape=(--layers "$(jq .n_layer <<< "$cfg")" --dim "$(jq .n_embd <<< "$cfg")"
    --heads "$(jq .n_head <<< "$cfg")" --ctx 128)
if [ ! -s "$dir/scratch.jsonl" ]; then
    kiln load text:"$dir/full/train.txt" --split chunk:128 --epochs 0 2> /dev/null \
        | kiln tokenize --bytes | kiln batch -B 16 -T 128 \
        | kiln train "${shape[@]}" --steps "$scratch_steps" --lr 2e-3 --every 100 --threads "$threads" \
        | kiln eval --data "$dir/full/val.rec" --threads "$threads" | kiln show > "$dir/scratch.jsonl"
fi
target=$(after full)
match=$(jq -r --argjson t "$target" 'select(.t == "metrics" and .stage == "eval" and .bits_per_byte <= $t)
    | .step' "$dir/scratch.jsonl" | head -1)
best=$(jq -s '[.[] | select(.t == "metrics" and .stage == "eval") | .bits_per_byte] | min' "$dir/scratch.jsonl" | xargs printf '%.3f')
{
    echo "| model | held-out bits/byte | steps |"
    echo "|---|---|---|"
    echo "| book model, before fine-tuning | $(before full) | 0 |"
    echo "| full fine-tune | $(after full) | $ft_steps |"
    echo "| LoRA r=8 fine-tune | $(after lora) | $ft_steps |"
    if [ -n "$match" ]; then
        echo "| scratch, first eval at or below full fine-tuning | $(jq -r --argjson s "$match" 'select(.t == "metrics" and .stage == "eval" and .step == $s) | .bits_per_byte' "$dir/scratch.jsonl" | xargs printf '%.3f') | $match |"
    else
        echo "| scratch, best of $scratch_steps steps (never matched) | $best | $scratch_steps |"
    fi
} | tee "$dir/results.md"
