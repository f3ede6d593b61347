#!/usr/bin/env bash
# examples/embed/fashion.sh [DIR] — Fashion-MNIST classified by its 10 nearest neighbours in an
# embedding space, three systems side by side:
#
#   pixels     cosine nearest neighbours on the raw 28x28 pixels (bench/embed_baseline.py)
#   base       a small image GPT pretrained (next-token, no class token) on the training
#              images at SIZE x SIZE (default 7x7: 49 tokens, so many steps fit) in LEVELS
#              gray levels (default 16); its mean-pooled (POOL) final states
#   trained    the base after contrastive training on pairs of two training images of one
#              class (kiln pairs --by-label): BATCH 40 pairs a batch, PER_LABEL 4 of a class,
#              which with SUPCON=1 are each other's positives (SupCon; SUPCON=0 leaves them
#              out of each other's negatives), CLIP's two-way loss, pipelines/embed.sh
#
# The first 50,000 training images train (pretraining, pairs) and are the corpus, the last
# 10,000 validate: VALIDATE=1 takes the queries from them, to choose settings (STEPS, LR,
# POOL, LAYERS, DIM, PRE_STEPS, SIZE, LEVELS, BATCH, PER_LABEL) without looking at the test
# images.  The queries are the first QUERIES test images (default all 10,000), the corpus
# searched the first CORPUS training images (default 10,000; the pixel baseline's 85% is
# quoted for all 60,000); a query is right when most of its 10 hits have its class
# (knn_accuracy).  The labels never enter a sequence (kiln tokenize --no-class-token).
# THREADS: threads (default all CPUs).  EMBED_OPTS adds pipelines/embed.sh options
# ("--scale 10").
# Needs dataset-fashion-mnist.
set -euo pipefail
read -r -a embed_opts <<< "${EMBED_OPTS-}" # more pipelines/embed.sh options, e.g. "--mode lora"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/fashion-embed}
pre_steps=${PRE_STEPS:-3000} steps=${STEPS:-8000} threads=${THREADS:-0}
queries=${QUERIES:-10000} corpus=${CORPUS:-10000}
lr=${LR:-1e-3} pool=${POOL:-mean} layers=${LAYERS:-3} width=${DIM:-96} every=${EVERY:-$steps}
batch=${BATCH:-40} per_label=${PER_LABEL:-4} size=${SIZE:-7} supcon=${SUPCON:-1} levels=${LEVELS:-16}
group=() # SUPCON=1: a class's pairs in a batch are each other's positives (SupCon)
[ "$supcon" = 0 ] || [ "$per_label" = 1 ] || group=(--group-positives)
data=/usr/share/datasets/fashion-mnist
[ -r "$data/train-images-idx3-ubyte.gz" ] || {
    echo "fashion.sh: $data missing: install dataset-fashion-mnist (make deps)" >&2
    exit 1
}
mkdir -p "$dir/data"
log() { echo "fashion.sh: $*" >&2; }
t0=$(date +%s)

# ---- data: the training images split 50,000 (fit) / 10,000 (validation) as IDX files ------------
[ -s "$dir/data/val-labels.gz" ] || /usr/bin/python3 - "$data" "$dir/data" << 'PY'
import gzip, struct, sys
data, out = sys.argv[1:3]
images = gzip.open(f"{data}/train-images-idx3-ubyte.gz").read()
labels = gzip.open(f"{data}/train-labels-idx1-ubyte.gz").read()
for name, a, b in (("fit", 0, 50000), ("val", 50000, 60000)):
    with gzip.open(f"{out}/{name}-images.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, b - a, 28, 28) + images[16 + a * 784:16 + b * 784])
    with gzip.open(f"{out}/{name}-labels.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, b - a) + labels[8 + a:8 + b])
PY
train="idx:$dir/data/fit-images.gz,$dir/data/fit-labels.gz"
test="idx:$data/t10k-images-idx3-ubyte.gz,$data/t10k-labels-idx1-ubyte.gz"
queried="test images"
if [ "${VALIDATE:-0}" = 1 ]; then
    test="idx:$dir/data/val-images.gz,$dir/data/val-labels.gz" queried="validation images"
fi

# ---- the base: next-token pretraining, no class token ------------------------------------------
base=$dir/base/latest.safetensors
if [ ! -f "$base" ]; then
    log "pretraining the base for $pre_steps steps"
    kiln load "$train" --size "${size}x$size" --epochs 0 --shuffle --seed 1 2> /dev/null \
        | kiln tokenize --levels "$levels" --no-class-token | kiln batch -B 16 -T $((size * size)) \
        | kiln train --layers "$layers" --dim "$width" --heads 4 --ctx $((size * size + 1)) --steps "$pre_steps" --lr 2e-3 \
            --threads "$threads" \
        | kiln ckpt --dir "$dir/base" | kiln show --progress --total "$pre_steps"
fi

# ---- contrastive training on same-class pairs, base and trained side by side ------------------
"$here/pipelines/embed.sh" --base "$base" --images "$train" --val-images "$test" \
    --val-records "$queries" --corpus-records "$corpus" --steps "$steps" --batch "$batch" --per-label "$per_label" "${group[@]}" --lr "$lr" --pool "$pool" --symmetric \
    --every "$every" --threads "$threads" --out "$dir/embed" "${embed_opts[@]}"

# ---- the pixel baseline on the same images, scored by kiln search --------------------------------
kiln load "$train" --limit "$corpus" 2> /dev/null | /usr/bin/python3 "$here/bench/embed_baseline.py" --pixels \
    | kiln index -o "$dir/pixels.index" > /dev/null
pixels=$(kiln load "$test" --limit "$queries" 2> /dev/null \
    | /usr/bin/python3 "$here/bench/embed_baseline.py" --pixels \
    | kiln search --index "$dir/pixels.index" -k 10 --relevant label --threads "$threads" 2> /dev/null \
    | kiln show | jq -r 'select(.t == "metrics") | .knn_accuracy')

# ---- the table ------------------------------------------------------------------------------------
model() { kiln show < "$dir/embed/$1.hits.rec" | jq -r 'select(.t == "metrics") | .knn_accuracy'; }
{
    echo "| system ($queries $queried, $corpus training images searched) | 10-NN accuracy |"
    echo "|---|---|"
    printf '| pixels (28x28, cosine) | %.4f |\n' "$pixels"
    printf '| pretrained model, %s-pooled | %.4f |\n' "$pool" "$(model base)"
    printf '| after contrastive training (%s steps) | %.4f |\n' "$steps" "$(model trained)"
} | tee "$dir/results.md"
log "$(($(date +%s) - t0)) s in all; table in $dir/results.md"
