#!/usr/bin/env bash
# examples/rlhf/bright.sh [DIR] — a class-conditional Fashion-MNIST model taught to draw
# brighter garments: DPO on preferences from the brightness judge (kiln judge brightness: an
# image's mean pixel value), then the model before and after on held-out class prompts
# (examples/rlhf/README.md has the table).
#
#   BASE=runs/fashion14/ckpt/latest.safetensors examples/rlhf/bright.sh runs/bright
#
# BASE is a class-conditional image model (pipelines/pretrain.sh --images); without it one is
# pretrained first on Fashion-MNIST (Debian's dataset-fashion-mnist): 14x14, 4 gray levels,
# 3 layers 96 wide, PRE_STEPS (default 800) steps of 16 images.  Prompts are the 10 class
# names repeated: PROMPTS training prompts (default 600) and HELD (default 200) held out,
# each class as often.  Each gets K=4 images, the brightest and the darkest make a pair, a
# reward model trains (RM_STEPS, default 50) and DPO (BETA 0.25, LR 2e-5, STEPS default
# 60, 8 pairs a step).  The report: mean brightness before -> after (the shift in the base's
# standard deviations), the KL to the base, the held-out bits/dim of 256 test images, and
# sample grids DIR/run/samples-before.png, -after.png (a row per class, the same seeds).
# THREADS defaults to 2.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/bright}
pre_steps=${PRE_STEPS:-800} steps=${STEPS:-60} rm_steps=${RM_STEPS:-50} n_prompts=${PROMPTS:-600}
held=${HELD:-200} K=${K:-4} lr=${LR:-2e-5} beta=${BETA:-0.25} threads=${THREADS:-2}
fm=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
classes=$here/examples/data/fashion-mnist.classes
[ -f "$fm/train-images-idx3-ubyte.gz" ] || {
    echo "bright.sh: no Fashion-MNIST in $fm (apt-get install dataset-fashion-mnist, or FASHION_MNIST=DIR)" >&2
    exit 2
}
train_idx=idx:$fm/train-images-idx3-ubyte.gz,$fm/train-labels-idx1-ubyte.gz
test_idx=idx:$fm/t10k-images-idx3-ubyte.gz,$fm/t10k-labels-idx1-ubyte.gz
mkdir -p "$dir"
base=${BASE:-$dir/base/ckpt/latest.safetensors}
if [ ! -f "$base" ]; then
    start=$(date +%s)
    "$here/pipelines/pretrain.sh" --images "$train_idx" --val-images "$test_idx" --classes "$classes" \
        --size 14x14 --levels 4 --layers 3 --dim 96 --heads 4 --steps "$pre_steps" --batch 16 \
        --threads "$threads" --out "$dir/base"
    echo "examples/rlhf/bright.sh: pretraining took $(($(date +%s) - start)) s" >&2
fi
# prompts: the class names in turn, so the held-out tail has every class as often
awk -v n=$((n_prompts + held)) '{ c[NR] = $0 } END { for (i = 0; i < n; i++) print c[i % NR + 1] }' \
    "$classes" > "$dir/prompts.txt"
start=$(date +%s)
"$here/pipelines/rlhf.sh" --base "$base" --prompts "$dir/prompts.txt" --held "$held" \
    --judge brightness --method dpo -K "$K" --steps "$steps" --rm-steps "$rm_steps" \
    --lr "$lr" --beta "$beta" --val-images "$test_idx" --threads "$threads" --out "$dir/run"
echo "examples/rlhf/bright.sh: $(($(date +%s) - start)) s after pretraining (load average $(cut -d' ' -f1-3 /proc/loadavg))" \
    | tee -a "$dir/run/report.txt"
