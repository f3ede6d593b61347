#!/usr/bin/env bash
# examples/fashion-mnist.sh [DIR] — pretrain an image GPT on Fashion-MNIST and draw a grid
# of samples per class.
#
# Images are 14x14 gray at 8 levels, raster order after their class token (ImageGPT style),
# so "draw a sneaker" is the prompt [Sneaker].  The model (4 layers, 128 wide) trains for
# STEPS (default 2000: 4 min 23 s - 4 min 45 s on 2 quiet cores, docs/stages-pretrain.md) on the 60,000 training images, is evaluated
# on 512 test images (bits per dimension: per pixel, of the 8-level image), and then draws
# 8 images of each class into DIR/samples.png (a row per class, in label order).
# Needs Debian's dataset-fashion-mnist (make deps).  STEPS and THREADS override.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/fashion}
steps=${STEPS:-2000} threads=${THREADS:-0}
data=/usr/share/datasets/fashion-mnist
[ -r "$data/train-images-idx3-ubyte.gz" ] || {
    echo "fashion-mnist.sh: $data missing: install dataset-fashion-mnist (make deps)" >&2
    exit 1
}
[ -e "$dir" ] && { [ -f "$dir/run.env" ] || { echo "fashion-mnist.sh: $dir exists and is not a run" >&2; exit 2; }; rm -rf "$dir"; }

"$here/pipelines/pretrain.sh" --out "$dir" \
    --images "idx:$data/train-images-idx3-ubyte.gz,$data/train-labels-idx1-ubyte.gz" \
    --val-images "idx:$data/t10k-images-idx3-ubyte.gz,$data/t10k-labels-idx1-ubyte.gz" \
    --classes "$here/examples/data/fashion-mnist.classes" --size 14x14 --levels 8 \
    --layers 4 --dim 128 --heads 4 --batch 16 --lr 2e-3 --steps "$steps" \
    --every $(( steps / 5 > 0 ? steps / 5 : 1 )) --val-records 512 --threads "$threads"

best=$dir/ckpt/best.safetensors
kiln sample --ckpt "$best" -n 8 --png "$dir/samples.png" --scale 4 --seed 1 --threads "$threads"
bits=$(kiln show --in "$dir/log.rec" --out /dev/null | grep '"stage":"eval"' | tail -1 \
    | sed 's/.*"bits_per_dim":\([0-9.]*\).*/\1/')
echo "fashion-mnist.sh: $bits bits/dim on the test images (8 levels: 3 bits/dim is a uniform guess);" \
    "samples: $dir/samples.png (a row per class: $(paste -sd, "$here/examples/data/fashion-mnist.classes"))" >&2
