#!/usr/bin/env bash
# pipelines/finetune.sh — specialise a pretrained model on new data: full fine-tuning, a
# frozen body, or LoRA adapters; held-out loss before and after; samples from the result.
#
#   pipelines/finetune.sh --base runs/moby/ckpt/best.safetensors \
#       --text examples/data/sotu-lincoln.txt --mode lora --steps 300 --out runs/sotu
#   pipelines/finetune.sh --base runs/animals/ckpt/latest.safetensors --mode frozen \
#       --images png:animals/lions --val-images png:animals/lions \
#       --add-class lion=cat --add-class tiger=cat --augment 'hflip shift:2' --out runs/lions
#
# The flow it runs (printed before it starts):
#
#   kiln load SOURCE --epochs 0 --shuffle | [kiln augment OPS] | kiln tokenize (the base's tokenizer,
#     plus the --add-class names) | kiln batch
#     | kiln train --init BASE --save-start (--finetune | --freeze SPEC | --lora SPEC)
#     | kiln ckpt --dir OUT/ckpt | tee OUT/log.rec | kiln show --progress
#   LoRA: kiln ckpt merge BASE OUT/ckpt/step-N.safetensors -o OUT/merged-N.safetensors
#   kiln eval --ckpt (step 0 = before, last step = after) --data OUT/val.rec
#   kiln sample --ckpt AFTER (text: --prompt; images: a PNG grid per class)
#
# The tokenizer is the base's (read from its checkpoint), so the new data is tokenized the
# way the base model saw its own; new classes come after the base's classes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build

usage() { # usage STATUS: --help prints it on stdout and exits 0, a mistake on stderr, 2
    [ "$1" = 0 ] || exec >&2
    sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; /^set -euo/d'
    cat << 'EOF'
options:
  --base FILE          the pretrained checkpoint (required)
  --text FILE          new text; the last 10% (or --val FILE) is held out
  --val FILE           held-out text instead
  --images SOURCE      new images as kiln load reads them (png:DIR, idx:IMAGES,LABELS)
  --val-images SOURCE  held-out images (required with --images)
  --add-class NAME[=FROM]  a new class token (repeatable; see kiln train --help)
  --mode MODE          full (default), frozen or lora
  --freeze SPEC        what --mode frozen freezes (default: wpe and every block but the
                       last; the tied token embeddings / output head still train)
  --lora SPEC          LoRA options (default r=8,alpha=16,targets=qkv,proj,fc,fcproj)
  --augment 'OPS'      kiln augment operations for the training images
  --steps N            optimizer steps (default 200);  --batch B (default 16)
  --lr X               peak learning rate (default: kiln train's fine-tuning default)
  --ctx T              text context in bytes (default 128)
  --val-records N      held-out records (default 64)
  --prompt TEXT        text samples start here (default: a new document)
  --samples N          images per class in the sample grids (default 4)
  --sample-class NAME  draw only these classes (repeatable; default: the --add-class
                       names, or every class)
  --threads N          threads (default: all CPUs)
  --seed S             seed (default 1)
  --out DIR            where everything goes (default runs/finetune)
  --dry-run            print the stage chain and stop
EOF
    exit "$1"
}
die() { echo "finetune.sh: $*" >&2; exit 2; }

base="" text="" val="" images="" val_images="" adds=() mode=full freeze="" lora=""
sample_classes=() augment="" steps=200 batch=16 lr="" ctx=128 val_records=64 prompt="" samples="" threads=0
seed=1 out=runs/finetune dry=""
while [ $# -gt 0 ]; do
    case "$1" in --dry-run | -h | --help) ;; --*) [ $# -ge 2 ] || die "$1 needs a value (--help)" ;; esac
    case "$1" in
    --base) base=$2; shift ;;
    --text) text=$2; shift ;;
    --val) val=$2; shift ;;
    --images) images=$2; shift ;;
    --val-images) val_images=$2; shift ;;
    --add-class) adds+=("$2"); shift ;;
    --mode) mode=$2; shift ;;
    --freeze) freeze=$2; shift ;;
    --lora) lora=$2; shift ;;
    --augment) augment=$2; shift ;;
    --steps) steps=$2; shift ;;
    --batch) batch=$2; shift ;;
    --lr) lr=$2; shift ;;
    --ctx) ctx=$2; shift ;;
    --val-records) val_records=$2; shift ;;
    --prompt) prompt=$2; shift ;;
    --samples) samples=$2; shift ;;
    --sample-class) sample_classes+=("$2"); shift ;;
    --threads) threads=$2; shift ;;
    --seed) seed=$2; shift ;;
    --out) out=$2; shift ;;
    --dry-run) dry=1 ;;
    -h | --help) usage 0 ;;
    *) echo "finetune.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$base" ] || die "give --base CHECKPOINT (--help)"
[ -f "$base" ] || die "$base: no such checkpoint"
[ -n "$text$images" ] || die "give --text FILE or --images SOURCE (--help)"
for f in "$text" "$val"; do [ -z "$f" ] || [ -f "$f" ] || die "$f: no such file"; done
command -v jq > /dev/null || die "needs jq (make deps)"
# --dry-run prints the chain and writes nothing.
[ -n "$dry" ] || mkdir -p "$out/ckpt"

# ---- the base: its shape and tokenizer ------------------------------------------------------
base_meta=$(kiln ckpt inspect "$base")
[ -n "$dry" ] || printf '%s\n' "$base_meta" > "$out/base.txt"
meta() { awk -v k="$1" '$1 == k { sub(/^[^ ]+ +/, ""); print; exit }' <<< "$base_meta"; }
tok=$(meta tokenizer)
layers=$(meta config | jq .n_layer)
[ -n "$tok" ] || die "$base has no tokenizer in its metadata"
kind=$(jq -r .kind <<< "$tok")
classes=$(jq -r '.classes // [] | .[]' <<< "$tok"; for a in "${adds[@]}"; do echo "${a%%=*}"; done)
[ -n "$dry" ] || [ -z "$classes" ] || printf '%s\n' "$classes" > "$out/classes.txt"
case "$kind" in
bytes) tokenize=(kiln tokenize --bytes) ;;
levels) tokenize=(kiln tokenize --levels "$(jq .levels <<< "$tok")") ;;
palette)
    [ -n "$dry" ] || jq -r '.palette[] | map(tostring) | join(" ")' <<< "$tok" > "$out/palette.txt"
    tokenize=(kiln tokenize --palette "$out/palette.txt") ;;
*) die "$base: unknown tokenizer kind '$kind'" ;;
esac
[ -z "$classes" ] || tokenize+=(--classes "$out/classes.txt")

case "$mode" in
full) how=(--finetune) ;;
frozen)
    [ -n "$freeze" ] || freeze="wpe${layers:+,blocks:0-$((layers - 2))}"
    [ "$layers" -gt 1 ] || freeze=wpe
    how=(--freeze "$freeze") ;;
lora) how=(--lora "${lora:-r=8,alpha=16,targets=qkv,proj,fc,fcproj}") ;;
*) die "--mode is full, frozen or lora" ;;
esac
for a in "${adds[@]}"; do how+=(--add-class "$a"); done

# ---- data ----------------------------------------------------------------------------------------
if [ -n "$text" ]; then
    if [ -z "$val" ]; then # the last 10% is held out
        if [ -z "$dry" ]; then
            bytes=$(wc -c < "$text")
            head -c $((bytes - bytes / 10)) "$text" > "$out/train.txt"
            tail -c $((bytes / 10)) "$text" > "$out/val.txt"
        fi
        text=$out/train.txt val=$out/val.txt
    fi
    source_of() { src=("text:$1" --split "chunk:$ctx"); }
    T=$ctx
else
    [ -n "$val_images" ] || die "--images needs --val-images"
    h=$(jq .height <<< "$tok") w=$(jq .width <<< "$tok") c=$(jq .channels <<< "$tok")
    source_of() { src=("$1" --size "${h}x$w" --channels "$c"); }
    T=$((h * w * c)) # levels: a token per channel value; palette: a token per pixel
    [ "$kind" = palette ] && T=$((h * w))
    text=$images val=$val_images
fi
if [ -z "$dry" ]; then
    source_of "$val"
    kiln load "${src[@]}" --limit "$val_records" 2> /dev/null | "${tokenize[@]}" \
        | kiln batch -B "$batch" -T "$T" > "$out/val.rec"
fi

# ---- the flow ---------------------------------------------------------------------------------
source_of "$text"
load=(kiln load "${src[@]}" --epochs 0 --shuffle --seed "$seed")
aug=()
[ -n "$augment" ] && read -r -a ops <<< "$augment" && aug=(kiln augment "${ops[@]}")
augmented() { # the training samples, through kiln augment when asked
    if [ ${#aug[@]} -gt 0 ]; then "${load[@]}" 2> "$out/load.err" | "${aug[@]}"; else "${load[@]}" 2> "$out/load.err"; fi
}
batcher=(kiln batch -B "$batch" -T "$T")
train=(kiln train --init "$base" "${how[@]}" --save-start --steps "$steps" ${lr:+--lr "$lr"}
    --log-every 10 --seed "$seed" --threads "$threads")
ckpt=(kiln ckpt --dir "$out/ckpt" --keep 0)
show=(kiln show --progress --total "$steps")
chain() {
    echo "${load[*]}"
    for stage in aug tokenize batcher train ckpt; do
        eval '[ -z "${'$stage'[*]}" ] || echo "  | ${'$stage'[*]}"'
    done
    echo "  | tee $out/log.rec | ${show[*]}"
}
chain >&2
[ -n "$dry" ] && exit 0
{ echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'): fine-tuning $base"; chain; } > "$out/chain.txt"
# Ctrl-C: the stages read on to train's final ckpt; the log's tee must outlive them.
keep_log() { (trap '' INT TERM && exec tee "$1"); }
augmented | "${tokenize[@]}" | "${batcher[@]}" \
    | "${train[@]}" | "${ckpt[@]}" | keep_log "$out/log.rec" | "${show[@]}"
# Every metrics record as a JSON line, for jq (README.md, "A run directory").
kiln show --in "$out/log.rec" | { grep '^{"t":"metrics"' || true; } > "$out/metrics.jsonl"

# ---- before and after -----------------------------------------------------------------------
first=$out/ckpt/step-000000.safetensors
last=$(ls "$out"/ckpt/step-*.safetensors | grep -v optim | sort | tail -1)
model_of() { # the standalone model of a checkpoint (LoRA: merged into the base)
    if [ "$mode" = lora ]; then
        kiln ckpt merge "$base" "$1" -o "$out/merged-$(basename "$1")" 2> /dev/null
        echo "$out/merged-$(basename "$1")"
    else
        echo "$1"
    fi
}
before=$(model_of "$first") after=$(model_of "$last")
bits() {
    kiln eval --ckpt "$1" --data "$out/val.rec" --threads "$threads" < /dev/null | kiln show \
        | jq -r 'select(.t == "metrics") | .bits_per_dim // .bits_per_byte' | tail -1 | xargs printf '%.3f'
}
b0=$(bits "$before") b1=$(bits "$after")
unit=$([ "$kind" = bytes ] && echo bits/byte || echo bits/dim)
echo "finetune.sh: held-out $unit before $b0, after $b1 ($mode, $steps steps)" | tee "$out/result.txt" >&2
if [ "$kind" = bytes ]; then
    kiln sample --ckpt "$after" ${prompt:+--prompt "$prompt"} -n 300 --top-k 40 --seed "$seed" \
        > "$out/sample.txt"
    echo "finetune.sh: sample in $out/sample.txt" >&2
else
    [ ${#sample_classes[@]} -gt 0 ] || for a in "${adds[@]}"; do sample_classes+=("${a%%=*}"); done
    for when in before after; do
        if [ ${#sample_classes[@]} -eq 0 ]; then
            kiln sample --ckpt "${!when}" -n "${samples:-4}" --seed "$seed" --png "$out/$when.png" --scale 3
        fi
        for cls in "${sample_classes[@]}"; do
            kiln sample --ckpt "${!when}" --class "$cls" -n "${samples:-4}" --seed "$seed" \
                --png "$out/$when-$cls.png" --scale 3
        done
    done
    echo "finetune.sh: sample grids $out/before*.png (step 0) and $out/after*.png" >&2
fi
echo "finetune.sh: model $after" >&2
