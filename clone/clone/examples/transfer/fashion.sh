#!/usr/bin/env bash
# examples/transfer/fashion.sh [DIR] — transfer learning, measured on Fashion-MNIST.
#
# Pretrain an image model on 8 classes (every class but Bag and Ankle boot), then teach
# it the held-out Ankle boot from only 100 training images, four ways, for the same steps:
#   scratch  the same model trained from a random start on the 100 images
#   full     every weight fine-tuned from the pretrained model (--add-class 'Ankle boot=Sneaker')
#   frozen   wpe and all blocks but the last frozen (the last block, ln_f and the tied
#            token embeddings / head train)
#   lora     LoRA adapters r=8 on every block linear (+ the token embeddings, which hold
#            the new class row)
#   row      the new class token's embedding row alone, everything else frozen (textual
#            inversion: --train-new-classes), saved as a one-row adapter
# and report bits/dim on the 1,000 Ankle boot test images (lower is better), with the
# pretrained model plus the new class token before any fine-tuning for reference.
#
# Images are 14x14 gray, 8 levels (196 tokens after the class token).  Sizes suit a small
# shared machine; PRE_STEPS, FT_STEPS, THREADS override them.  Needs dataset-fashion-mnist.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/transfer}
pre_steps=${PRE_STEPS:-1000} ft_steps=${FT_STEPS:-150} threads=${THREADS:-0}
new="Ankle boot" from=Sneaker
mkdir -p "$dir"
log() { echo "fashion.sh: $*" >&2; }

# ---- data: PNG trees, split by class --------------------------------------------------------
grep -v -e '^Bag$' -e "^$new\$" "$here/examples/data/fashion-mnist.classes" > "$dir/pre.classes"
{ cat "$dir/pre.classes"; echo "$new"; } > "$dir/all.classes"
for split in train t10k; do
    [ -d "$dir/png/$split" ] || { mkdir -p "$dir/png" && "$here/examples/fashion-mnist-png.sh" "$dir/png/$split" $split; }
done
if [ ! -d "$dir/pre" ]; then
    mkdir -p "$dir/pre" "$dir/ft/$new" "$dir/test"
    while read -r c; do cp -al "$dir/png/train/${c//\//_}" "$dir/pre/"; done < "$dir/pre.classes"
    find "$dir/png/train/$new" -name '*.png' | sort | awk 'NR <= 100' | xargs -d '\n' cp -l -t "$dir/ft/$new"
    cp -al "$dir/png/t10k/$new" "$dir/test/"
fi
sed -i 's|/|_|g' "$dir/pre.classes" "$dir/all.classes" # folder names ('T-shirt/top')
img=(--size 14x14 --channels 1)
T=196
shape=(--layers 3 --dim 96 --heads 4 --ctx $T)
[ -s "$dir/test.rec" ] || kiln load png:"$dir/test" --classes "$dir/all.classes" "${img[@]}" \
    | kiln tokenize --levels 8 | kiln batch -B 50 -T $T > "$dir/test.rec"

# ---- pretraining on 8 classes ------------------------------------------------------------------
if [ ! -f "$dir/base/latest.safetensors" ]; then
    log "pretraining ${shape[*]} for $pre_steps steps on $(find "$dir/pre" -name '*.png' | wc -l) images"
    kiln load png:"$dir/pre" --classes "$dir/pre.classes" "${img[@]}" --epochs 0 \
        | kiln shuffle --seed 1 | kiln tokenize --levels 8 | kiln batch -B 16 -T $T \
        | kiln train "${shape[@]}" --steps "$pre_steps" --lr 2e-3 --threads "$threads" \
        | kiln ckpt --dir "$dir/base" | kiln show --progress --total "$pre_steps"
fi

# ---- four ways to learn the new class from 100 images --------------------------------------------
ft_data() {
    kiln load png:"$dir/ft" --classes "$dir/all.classes" "${img[@]}" --epochs 0 --seed 2 \
        | kiln shuffle --seed 2 | kiln tokenize --levels 8 | kiln batch -B 16 -T $T
}
run() { # NAME TRAIN-OPTIONS...
    local name=$1
    shift
    [ -f "$dir/$name/latest.safetensors" ] && return
    log "$name: ${*:-from scratch}"
    ft_data | kiln train --steps "$ft_steps" --threads "$threads" "$@" \
        | kiln ckpt --dir "$dir/$name" --keep 0 | kiln show > "$dir/$name.jsonl"
}
base=$dir/base/latest.safetensors
add=(--add-class "$new=$from")
run scratch "${shape[@]}" --lr 2e-3 --seed 3
run full --init "$base" "${add[@]}" --finetune --save-start --lr 1e-3
run frozen --init "$base" "${add[@]}" --freeze wpe,blocks:0-1 --lr 1e-3
run lora --init "$base" "${add[@]}" --lora r=8,alpha=16,targets=qkv,proj,fc,fcproj --lr 3e-3
run row --init "$base" "${add[@]}" --train-new-classes --lr 3e-2
last() { ls "$dir/$1"/step-*.safetensors | grep -v optim | sort | tail -1; }
kiln ckpt merge "$base" "$(last lora)" -o "$dir/lora-merged.safetensors" 2> /dev/null

# ---- bits/dim on the 1,000 test images --------------------------------------------------------------
bits() { # CKPT [ADAPTER]
    kiln eval --ckpt "$1" ${2:+--adapter "$2"} --data "$dir/test.rec" --threads "$threads" < /dev/null 2> /dev/null \
        | kiln show | jq -r 'select(.t == "metrics") | .bits_per_dim' | tail -1 | xargs printf '%.3f'
}
secs() { jq -s '[.[] | select(.t == "metrics" and .stage == "train")] | last | .elapsed_s | floor' "$dir/$1.jsonl"; }
optim() { jq -s '[.[] | select(.t == "metrics")] | last | .optim_bytes / 1024 | floor' "$dir/$1.jsonl"; }
{
    echo "| model ($ft_steps steps on 100 $new images) | test bits/dim | train s | AdamW state KiB |"
    echo "|---|---|---|---|"
    echo "| pretrained + new class token, no training | $(bits "$dir/full/step-000000.safetensors") | - | - |"
    echo "| scratch | $(bits "$(last scratch)") | $(secs scratch) | $(optim scratch) |"
    echo "| full fine-tune | $(bits "$(last full)") | $(secs full) | $(optim full) |"
    echo "| frozen body (last block + head train) | $(bits "$(last frozen)") | $(secs frozen) | $(optim frozen) |"
    echo "| LoRA r=8 (merged) | $(bits "$dir/lora-merged.safetensors") | $(secs lora) | $(optim lora) |"
    echo "| new class row only (textual inversion) | $(bits "$base" "$(last row)") | $(secs row) | $(optim row) |"
} | tee "$dir/results.md"
