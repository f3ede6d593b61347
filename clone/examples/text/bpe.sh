#!/usr/bin/env bash
# examples/text/bpe.sh [DIR] — pretrain a sub-word model on the book: learn a 4,096-id
# byte-level BPE vocabulary from the training text (kiln bpe), pretrain the pretrain.sh
# default model (4 layers, 128 wide, context 128 tokens, ~500 bytes) on it, and sample.
#
#   examples/text/bpe.sh runs/moby-bpe          # STEPS (default 1500), THREADS
#
# Then, for transformers users:  kiln ckpt export DIR/ckpt/best.safetensors --hf DIR/hf
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/moby-bpe}
steps=${STEPS:-1500} threads=${THREADS:-0}
"$here/pipelines/pretrain.sh" --text "$here/examples/data/moby-dick.txt" --bpe 4096 \
    --steps "$steps" --threads "$threads" --out "$dir"
echo "vocabulary: $dir/bpe/encoder.json, $dir/bpe/vocab.bpe; held-out bits per byte:" \
    "$(kiln show --in "$dir/log.rec" --out /dev/null | jq -r 'select(.stage == "eval") | .bits_per_byte' | tail -1)" >&2
kiln sample --ckpt "$dir/ckpt/best.safetensors" --prompt " Call me Ishmael." -n 120 --seed 1 \
    --threads "$threads"
