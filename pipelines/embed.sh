#!/usr/bin/env bash
# pipelines/embed.sh — turn a pretrained model into an embedding model for your own data:
# contrastive training on pairs, an index of the corpus, search, and retrieval metrics of
# the base model and of the trained one side by side.
#
#   pipelines/embed.sh --base runs/moby/ckpt/best.safetensors \
#       --text examples/data/moby-dick.txt --steps 300 --out runs/moby-embed
#   pipelines/embed.sh --base runs/fashion/ckpt/best.safetensors \
#       --images idx:TRAIN-IMAGES,TRAIN-LABELS --val-images idx:TEST-IMAGES,TEST-LABELS
#   pipelines/embed.sh --base BASE --jsonl pairs.jsonl     (anchor/positive columns)
#
# The flow it runs (printed before it starts):
#
#   kiln load SOURCE --epochs 0 | kiln tokenize (the base's tokenizer)
#     | kiln pairs -B N (--cloze | --by-label | --columns)
#     | kiln train --objective contrastive --init BASE (--finetune | --lora SPEC)
#     | kiln eval --queries OUT/queries.rec --corpus OUT/corpus.rec
#     | kiln ckpt --dir OUT/ckpt | tee OUT/log.rec | kiln show --progress
#   kiln embed --ckpt (BASE, then the last checkpoint) < OUT/corpus.rec | kiln index -o OUT/X.index
#   kiln embed ... < OUT/queries.rec | kiln search --index OUT/X.index --relevant (id | label)
#
# Held out: text, the last 10% of its paragraphs (a sentence is the query, its paragraph
# without it the document to find: the inverse cloze task); images, --val-images are the
# queries and --corpus-records training images the corpus, or --corpus-images (relevant: the
# same label, so knn_accuracy is 10-nearest-neighbour classification); images are tokenized
# without their class token (kiln tokenize --no-class-token: the label must not leak into
# the embedding); JSON lines, the last --val-records
# lines (anchor the query, positive the document).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; /^set -euo/d'
    cat << 'EOF'
options:
  --base FILE          the pretrained checkpoint (required)
  --text FILE          text: pairs of a sentence and its paragraph
  --images SOURCE      images as kiln load reads them: pairs of two images of one label
  --val-images SOURCE  held-out query images (required with --images)
  --corpus-images SOURCE  the images searched (default: --corpus-records of --images)
  --per-label N        images: up to N pairs of one label a batch, kept out of each other's
                       negatives (kiln pairs --per-label; default 1)
  --group-positives    with --per-label: they are each other's positives (SupCon)
  --augment OPS        images: kiln augment OPS on the training images before pairing
                       (e.g. 'shift:1 jitter:0.1,0.1,0.1'; queries and corpus stay as loaded)
  --ptx-coef X         text or images: each step also trains the next-token loss on a batch
                       of 16 training rows, weight X, so the model keeps what pretraining
                       taught it (kiln train --ptx; default: none)
  --jsonl FILE         JSON lines with anchor and positive (or query/pos, sentence1/2) fields
  --mode MODE          full (default) or lora
  --lora SPEC          LoRA options (default r=8,alpha=16,targets=qkv,proj,fc,fcproj)
  --steps N            optimizer steps (default 200);  --batch N pairs (default 32)
  --lr X               peak learning rate (default 1e-4; LoRA 1e-3)
  --scale X            similarity scale (default 20);  --symmetric  CLIP's two-way loss
  --pool HOW           mean (default), last or weightedmean (by position, SGPT)
  --ctx T              tokens per row at most (default 128; images: their size)
  --val-records N      held-out queries (default 200);  --corpus-records N (default 2000)
  --every N            evaluate and checkpoint every N steps (default steps/4)
  --threads N          threads (default: all CPUs);  --seed S (default 1)
  --out DIR            where everything goes (default runs/embed)
  --dry-run            print the stage chain and stop
EOF
}
die() {
    echo "embed.sh: $*" >&2
    exit 2
}

base="" text="" images="" val_images="" corpus_images="" jsonl="" augment="" per_label=1 group_positives="" ptx_coef="" mode=full lora="" steps=200 batch=32 lr=""
scale=20 symmetric="" pool=mean ctx=128 val_records=200 corpus_records=2000 every="" threads=0
seed=1 out=runs/embed dry=""
while [ $# -gt 0 ]; do
    case "$1" in
    --base) base=$2; shift 2 ;;
    --text) text=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --val-images) val_images=$2; shift 2 ;;
    --corpus-images) corpus_images=$2; shift 2 ;;
    --augment) augment=$2; shift 2 ;;
    --per-label) per_label=$2; shift 2 ;;
    --ptx-coef) ptx_coef=$2; shift 2 ;;
    --group-positives) group_positives=--group-positives; shift ;;
    --jsonl) jsonl=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --lora) lora=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --lr) lr=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --symmetric) symmetric=--symmetric; shift ;;
    --pool) pool=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    --val-records) val_records=$2; shift 2 ;;
    --corpus-records) corpus_records=$2; shift 2 ;;
    --every) every=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
    esac
done
[ -n "$base" ] || die "--base FILE is required"
[ -f "$base" ] || die "--base $base: no such file"
[ $((!!${#text} + !!${#images} + !!${#jsonl})) = 1 ] || die "give one of --text, --images, --jsonl"
[ -z "$images" ] || [ -n "$val_images" ] || die "--images needs --val-images"
[ -z "$augment" ] || [ -n "$images" ] || die "--augment is for --images"
[ "$per_label" = 1 ] || [ -n "$images" ] || die "--per-label is for --images"
[ -z "$group_positives" ] || [ "$per_label" != 1 ] || die "--group-positives needs --per-label N"
[ -z "$ptx_coef" ] || [ -z "$jsonl" ] || die "--ptx-coef is for --text and --images"
for f in "$text" "$jsonl"; do [ -z "$f" ] || [ -f "$f" ] || die "no such file: $f"; done
command -v jq > /dev/null || die "needs jq (apt-get install jq)"
[ -n "$every" ] || every=$((steps / 4 > 0 ? steps / 4 : 1))

# ---- the base: its tokenizer ------------------------------------------------------------------
tok=$(kiln ckpt inspect "$base" | awk '$1 == "tokenizer" { sub(/^[^ ]+ +/, ""); print; exit }')
n_ctx=$(kiln ckpt inspect "$base" | awk '$1 == "config" { sub(/^[^ ]+ +/, ""); print; exit }' | jq .n_ctx)
[ -n "$tok" ] || die "$base has no tokenizer in its metadata"
kind=$(jq -r .kind <<< "$tok")
case "$kind" in
bytes) tokenize=(kiln tokenize --bytes) ;;
levels) tokenize=(kiln tokenize --levels "$(jq .levels <<< "$tok")") ;;
palette) # the base's colours, as kiln palette writes them
    mkdir -p "$out"
    jq -r '.palette[] | map(tostring) | join(" ")' <<< "$tok" > "$out/palette.txt"
    tokenize=(kiln tokenize --palette "$out/palette.txt") ;;
*) die "$base: embed.sh handles byte, level and palette tokenizers (this one is '$kind')" ;;
esac
[ "$ctx" -le "$n_ctx" ] || ctx=$n_ctx

# ---- data: what trains, what is held out ------------------------------------------------------
mkdir -p "$out"
if [ -n "$text" ]; then
    paras=$(kiln load "text:$text" --split paragraphs 2> /dev/null | kiln show | grep -c '"t":"sample"')
    held=$((paras / 10))
    # The training paragraphs in a file of their own: --limit would end the epochs, and after
    # --shuffle it would take held-out paragraphs too.
    [ -n "$dry" ] || kiln load "text:$text" --split paragraphs --limit $((paras - held)) 2> /dev/null \
        | kiln show --full | jq -r 'select(.t == "sample") | .text + "\n"' > "$out/train.txt"
    train_src=("text:$out/train.txt" --split paragraphs)
    val_src=("text:$text" --split paragraphs --skip $((paras - held)) --limit "$val_records")
    pairing=(--cloze) relevant=id
elif [ -n "$jsonl" ]; then
    lines=$(wc -l < "$jsonl")
    held=$((val_records < lines / 2 ? val_records : lines / 2))
    [ -n "$dry" ] || head -n $((lines - held)) "$jsonl" > "$out/train.jsonl" # as for text
    train_src=("jsonl:$out/train.jsonl")
    val_src=("jsonl:$jsonl" --skip $((lines - held)))
    tokenize+=(--fields anchor,positive,query,pos,sentence1,sentence2)
    pairing=(--columns) relevant=id
else
    h=$(jq .height <<< "$tok") w=$(jq .width <<< "$tok") c=$(jq .channels <<< "$tok")
    cls=$(jq -r '.classes // [] | length' <<< "$tok")
    train_src=("$images" --size "${h}x$w" --channels "$c")
    val_src=("$val_images" --size "${h}x$w" --channels "$c" --limit "$val_records")
    if [ "$cls" -gt 0 ]; then # the base's class names (IDX labels are their line numbers)
        jq -r '.classes[]' <<< "$tok" > "$out/classes.txt"
        tokenize+=(--classes "$out/classes.txt")
        train_src+=(--classes "$out/classes.txt") val_src+=(--classes "$out/classes.txt")
    fi
    tokenize+=(--no-class-token)
    per=$([ "$kind" = palette ] && echo 1 || echo "$c") # tokens a pixel
    ctx=$((h * w * per + 1))
    [ "$ctx" -le "$n_ctx" ] || die "$base: images of $((ctx - 1)) tokens exceed its context $n_ctx"
    pairing=(--by-label) relevant=label
    [ "$per_label" = 1 ] || pairing+=(--per-label "$per_label")
fi

if [ -z "$dry" ]; then
    if [ -n "$images" ]; then # queries: held-out images; corpus: training images
        kiln load "${val_src[@]}" 2> /dev/null | "${tokenize[@]}" > "$out/queries.rec"
        if [ -n "$corpus_images" ]; then
            kiln load "$corpus_images" "${train_src[@]:1}" --limit "$corpus_records" 2> /dev/null
        else
            kiln load "${train_src[@]}" --limit "$corpus_records" 2> /dev/null
        fi | "${tokenize[@]}" > "$out/corpus.rec"
    else # one side of each held-out pair each
        kiln load "${val_src[@]}" 2> /dev/null | "${tokenize[@]}" \
            | kiln pairs --side anchor -T "$ctx" "${pairing[@]}" --seed "$seed" > "$out/queries.rec"
        kiln load "${val_src[@]}" 2> /dev/null | "${tokenize[@]}" \
            | kiln pairs --side positive -T "$ctx" "${pairing[@]}" --seed "$seed" > "$out/corpus.rec"
    fi
fi

# Pretraining batches for --ptx-coef: training rows as kiln train's LM batches, one a step.
ptx=()
if [ -n "$ptx_coef" ]; then
    ptx=(--ptx "$out/ptx.rec" --ptx-coef "$ptx_coef")
    [ -n "$dry" ] || kiln load "${train_src[@]}" --shuffle --seed "$seed" --limit $((steps * 16)) \
        2> /dev/null | "${tokenize[@]}" | kiln batch -B 16 -T $((ctx - 1)) 2> /dev/null > "$out/ptx.rec"
fi

# ---- the flow ---------------------------------------------------------------------------------
case "$mode" in
full) how=(--finetune) ;;
lora) how=(--lora "${lora:-r=8,alpha=16,targets=qkv,proj,fc,fcproj}") ;;
*) die "--mode is full or lora" ;;
esac
[ -n "$lr" ] || { [ "$mode" = lora ] && lr=1e-3 || lr=1e-4; }
load=(kiln load "${train_src[@]}" --epochs 0 --shuffle --seed "$seed")
read -r -a ops <<< "$augment"
aug=(kiln augment --seed "$seed" "${ops[@]}") # run only with OPS
pairs=(kiln pairs -B "$batch" -T "$ctx" "${pairing[@]}" --seed "$seed")
train=(kiln train --objective contrastive --scale "$scale" $symmetric $group_positives --pool "$pool"
    --init "$base" "${how[@]}" --steps "$steps" --lr "$lr" --every "$every" --log-every 10
    --seed "$seed" --threads "$threads" "${ptx[@]}")
evals=(kiln eval --queries "$out/queries.rec" --corpus "$out/corpus.rec" --relevant "$relevant"
    --pool "$pool" --threads "$threads")
[ "$mode" = lora ] && evals+=(--base "$base") # its ckpt records hold adapters
ckpt=(kiln ckpt --dir "$out/ckpt" --keep 0)
show=(kiln show --progress --total "$steps")
{
    echo "${load[*]}"
    [ ${#ops[@]} = 0 ] || echo "  | ${aug[*]}"
    for stage in tokenize pairs train evals ckpt; do eval 'echo "  | ${'$stage'[*]}"'; done
    echo "  | tee $out/log.rec | ${show[*]}"
} >&2
[ -n "$dry" ] && exit 0
# Ctrl-C: the stages read on to train's final ckpt; the log's tee must outlive them.
keep_log() { (trap '' INT TERM && exec tee "$1"); }
# The training records, augmented when asked (no `cat` in between: killed by SIGPIPE when
# training ends, it would fail the pipeline under pipefail).
records() { if [ ${#ops[@]} = 0 ]; then "${load[@]}"; else "${load[@]}" | "${aug[@]}"; fi; }
records 2> "$out/load.err" | "${tokenize[@]}" | "${pairs[@]}" | "${train[@]}" \
    | "${evals[@]}" | "${ckpt[@]}" | keep_log "$out/log.rec" | "${show[@]}"

# ---- index, search, before and after ----------------------------------------------------------
last=$(ls "$out"/ckpt/step-*.safetensors | grep -v optim | sort | tail -1)
model_of() { # LoRA: the adapters folded into the base
    if [ "$mode" = lora ]; then
        kiln ckpt merge "$base" "$1" -o "$out/merged.safetensors" 2> /dev/null
        echo "$out/merged.safetensors"
    else
        echo "$1"
    fi
}
after=$(model_of "$last")
search() { # name, model: index the corpus, search the queries, the metrics as JSON
    kiln embed --ckpt "$2" --pool "$pool" --threads "$threads" < "$out/corpus.rec" \
        | kiln index -o "$out/$1.index" > /dev/null
    kiln embed --ckpt "$2" --pool "$pool" --threads "$threads" < "$out/queries.rec" \
        | kiln search --index "$out/$1.index" -k 10 --relevant "$relevant" --threads "$threads" \
            2> /dev/null | tee "$out/$1.hits.rec" | kiln show | jq -c 'select(.t == "metrics")'
}
before_m=$(search base "$base") after_m=$(search trained "$after")
{
    printf '%-10s %10s %10s %10s %10s\n' model recall@1 recall@10 mrr@10 knn_acc
    for m in base trained; do
        j=$([ $m = base ] && echo "$before_m" || echo "$after_m")
        jq -r --arg m $m '[$m, .["recall@1"], .["recall@10"], .["mrr@10"], (.knn_accuracy // "-")]
            | map(if type == "number" then (. * 10000 | round / 10000 | tostring) else . end)
            | @tsv' <<< "$j" | awk -F'\t' '{ printf "%-10s %10s %10s %10s %10s\n", $1, $2, $3, $4, $5 }'
    done
} | tee "$out/result.txt" >&2
rows=$(kiln show < "$out/corpus.rec" | grep -c '"t":"tokens"')
echo "embed.sh: index $out/trained.index ($rows rows), hits in $out/trained.hits.rec" >&2
