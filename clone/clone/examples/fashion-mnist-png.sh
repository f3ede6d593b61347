#!/usr/bin/env bash
# Write Fashion-MNIST as a folder-per-class PNG tree, so `kiln load png:DIR` reads real files:
#   examples/fashion-mnist-png.sh DIR [train|t10k] [LIMIT]
# DIR/Ankle boot/000000.png, DIR/T-shirt_top/000001.png, ... ('/' in a class name becomes '_').
# The data comes from Debian's dataset-fashion-mnist (make deps); the conversion is kiln itself:
# levels 256 is lossless, and detok writes one PNG per image under its class folder.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: $0 DIR [train|t10k] [LIMIT]}
split=${2:-t10k}
limit=${3:-0}
data=/usr/share/datasets/fashion-mnist
[ -r "$data/$split-images-idx3-ubyte.gz" ] || {
    echo "$0: $data/$split-images-idx3-ubyte.gz missing: install dataset-fashion-mnist (make deps)" >&2
    exit 1
}
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
args=()
[ "$limit" != 0 ] && args=(--limit "$limit")
kiln load "idx:$data/$split-images-idx3-ubyte.gz,$data/$split-labels-idx1-ubyte.gz" \
    --classes "$here/examples/data/fashion-mnist.classes" "${args[@]}" \
    | kiln tokenize --levels 256 \
    | kiln detok --dir "$dir"
