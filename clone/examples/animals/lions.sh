#!/usr/bin/env bash
# examples/animals/lions.sh [DIR] — a cat model learns lions.
#
# Pretrain a class-conditional image model (ImageGPT style: class token, then 16x16 pixels
# in a 16-colour palette) on ~160 mammal pictures without a single lion, tiger or leopard;
# then fine-tune it on the 5 lions and 14 tigers/leopards with augmentation, adding the
# classes `lion` and `tiger` as new tokens that start from `cat`'s embedding.  Sample grids
# of lion, tiger and cat before and after go to DIR/ft/*.png.
#
# Data: examples/animals/fetch.sh (npm emoji-datasource-google/twitter 16, Debian
# openclipart-png).  PRE_STEPS, FT_STEPS, THREADS override the sizes (chosen for a small
# shared machine).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/lions}
pre_steps=${PRE_STEPS:-800} ft_steps=${FT_STEPS:-200} threads=${THREADS:-0}
mkdir -p "$dir"
[ -f "$dir/data/pretrain.classes" ] || "$here/examples/animals/fetch.sh" "$dir/data"
img=(--size 16x16 --channels 3)
[ -s "$dir/palette.txt" ] || kiln load png:"$dir/data/pretrain" --classes "$dir/data/pretrain.classes" \
    "${img[@]}" | kiln palette -k 16 -o "$dir/palette.txt"

if [ ! -f "$dir/base/latest.safetensors" ]; then
    echo "lions.sh: pretraining on $(find "$dir/data/pretrain" -name '*.png' | wc -l) mammals for $pre_steps steps" >&2
    kiln load png:"$dir/data/pretrain" --classes "$dir/data/pretrain.classes" "${img[@]}" --epochs 0 \
        | kiln shuffle --seed 1 | kiln augment hflip shift:1 \
        | kiln tokenize --palette "$dir/palette.txt" | kiln batch -B 16 -T 256 \
        | kiln train --layers 4 --dim 128 --heads 4 --ctx 256 --steps "$pre_steps" --lr 2e-3 \
            --threads "$threads" \
        | kiln ckpt --dir "$dir/base" | kiln show --progress --total "$pre_steps"
fi

"$here/pipelines/finetune.sh" --base "$dir/base/latest.safetensors" --mode full \
    --images png:"$dir/data/lions" --val-images png:"$dir/data/lions" \
    --add-class lion=cat --add-class tiger=cat --augment 'hflip shift:1' \
    --sample-class lion --sample-class tiger --sample-class cat --samples 8 \
    --steps "$ft_steps" --batch 16 --lr 5e-4 --threads "$threads" --out "$dir/ft"
