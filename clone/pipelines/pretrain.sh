#!/usr/bin/env bash
# pipelines/pretrain.sh — pretrain a GPT from scratch on text (byte or BPE tokens) or images
# (pixel levels, class token first), evaluating and checkpointing as it goes.
#
#   pipelines/pretrain.sh --text examples/data/moby-dick.txt --out runs/moby --steps 3000
#   pipelines/pretrain.sh --text examples/data/moby-dick.txt --bpe 4096 --out runs/moby-bpe
#   pipelines/pretrain.sh --images idx:train-images.gz,train-labels.gz \
#       --val-images idx:t10k-images.gz,t10k-labels.gz --classes fashion.classes \
#       --size 16x16 --levels 8 --out runs/fashion
#   pipelines/pretrain.sh --resume runs/moby          # after a crash, Ctrl-C or kill -9
#
# Split across two hosts (README.md, "Stages on other hosts"): the same command on both,
# the data host with --data-to, the training host with --data-from; the KILN_CURVE_*
# variables (kiln keygen) encrypt the tcp edge between them:
#   trainer$ pipelines/pretrain.sh --text book.txt --out runs/b --data-from @tcp://*:5555
#   loader$  pipelines/pretrain.sh --text book.txt --out runs/b --data-to '>tcp://trainer:5555'
#
# The flow it runs (printed before it starts):
#
#   kiln load SOURCE --epochs 0 --shuffle [--skip CURSOR] | kiln tokenize | kiln batch
#     | kiln train [--init OUT/ckpt/latest.safetensors] | kiln eval --data OUT/val.rec
#     | kiln plot --png OUT/loss.png | kiln ckpt --dir OUT/ckpt | tee OUT/log.rec
#     | kiln show --progress
#
# On --resume, `kiln cat --prepend` puts the records of the run so far (up to the step
# resumed from) in front of the new ones, so loss.png, log.rec and the summary cover the
# whole run.  OUT also gets chain.txt (the chain of each segment) and metrics.jsonl (every
# metrics record as a JSON line, for jq).  The chain is printed on stderr.
# No shuffle stage: kiln load --shuffle permutes the items of each epoch from (seed,
# epoch), so each batch holds whole records in an order the data cursor a checkpoint saves
# still pins down: `kiln load --skip` finds exactly where the next batch starts, and a
# resumed run trains on the same batches, bit for bit, as one that never stopped.
# (Text is cut into chunks of --ctx bytes: with its EOS a chunk fills one row.)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build

usage() { # usage STATUS: --help prints it on stdout and exits 0, a mistake on stderr, 2
    [ "$1" = 0 ] || exec >&2
    sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; /^set -euo/d'
    cat << 'EOF'
options:
  --text FILE          text corpus; the last 5% (or --val FILE) is held out for eval
  --val FILE           held-out text instead
  --images SOURCE      images as kiln load reads them (idx:IMAGES,LABELS or png:DIR)
  --val-images SOURCE  held-out images (required with --images)
  --classes FILE       class names (images); --size HxW (default 16x16),
  --levels K           gray levels (default 8), --channels C (default 1)
  --model PRESET       tiny | small | char (default: 4 layers, 128 wide, 4 heads)
  --layers N --dim N --heads N   the shape instead
  --ctx T              text context in tokens (default 128)
  --bpe N|DIR          text as BPE tokens: N learns an N-id vocabulary from the training text
                       into OUT/bpe (kiln bpe); DIR uses DIR/encoder.json + DIR/vocab.bpe
                       (GPT-2's own, or kiln bpe's).  Chunks of 4*T bytes: about T tokens
  --steps N            optimizer steps (default 2000);  --batch B  rows (default 16)
  --lr X               peak learning rate (default 2e-3)
  --every N            eval + checkpoint every N steps (default steps/10)
  --log-every N        a train metrics record every N steps (default 10)
  --val-records N      held-out records to evaluate on (default 64)
  --samples N          generated samples at each eval (default 0)
  --threads N          threads for train and eval (default: all CPUs)
  --seed S             seed (default 1)
  --out DIR            where everything goes (default runs/pretrain)
  --resume DIR         continue the run in DIR from DIR/ckpt/latest.safetensors
  --data-to URL        this host only loads, tokenizes and batches, and sends the batches
                       to URL (kiln batch --out URL); the chain's other half runs elsewhere
  --data-from URL      this host trains on the batches from URL (kiln train --in URL);
                       held-out data is still made here from --text/--val-images
  --data-skip N        with --data-to: start at data cursor N (a resumed trainer prints it)
  --dry-run            print the stage chain and stop
EOF
    exit "$1"
}
die() { echo "pretrain.sh: $*" >&2; exit 2; }

text="" val="" images="" val_images="" classes="" size=16x16 levels=8 channels=1
model="" layers=4 dim=128 heads=4 ctx=128 steps=2000 batch=16 lr=2e-3 every=""
log_every=10 val_records=64 samples=0 threads=0 seed=1 out=runs/pretrain resume="" dry="" bpe=""
steps_given="" data_to="" data_from="" data_skip=""
while [ $# -gt 0 ]; do
    case "$1" in --dry-run | -h | --help) ;; --*) [ $# -ge 2 ] || die "$1 needs a value (--help)" ;; esac
    case "$1" in
    --text) text=$2; shift ;;
    --val) val=$2; shift ;;
    --images) images=$2; shift ;;
    --val-images) val_images=$2; shift ;;
    --classes) classes=$2; shift ;;
    --size) size=$2; shift ;;
    --levels) levels=$2; shift ;;
    --channels) channels=$2; shift ;;
    --model) model=$2 layers="" dim="" heads=""; shift ;;
    --layers) layers=$2; shift ;;
    --dim) dim=$2; shift ;;
    --heads) heads=$2; shift ;;
    --ctx) ctx=$2; shift ;;
    --bpe) bpe=$2; shift ;;
    --steps) steps=$2; steps_given=1; shift ;;
    --batch) batch=$2; shift ;;
    --lr) lr=$2; shift ;;
    --every) every=$2; shift ;;
    --log-every) log_every=$2; shift ;;
    --val-records) val_records=$2; shift ;;
    --samples) samples=$2; shift ;;
    --threads) threads=$2; shift ;;
    --seed) seed=$2; shift ;;
    --out) out=$2; shift ;;
    --resume) resume=$2; shift ;;
    --data-to) data_to=$2; shift ;;
    --data-from) data_from=$2; shift ;;
    --data-skip) data_skip=$2; shift ;;
    --dry-run) dry=1 ;;
    -h | --help) usage 0 ;;
    *) die "unknown option '$1' (--help lists them)" ;;
    esac
    shift
done

# A resumed run takes the options it was started with (--steps may raise the total).
if [ -n "$resume" ]; then
    [ -f "$resume/run.env" ] || die "$resume/run.env missing: not a pretrain.sh run"
    new_steps=$steps
    . "$resume/run.env"
    [ -n "$steps_given" ] && steps=$new_steps
    out=$resume
fi
[ -n "$text$images" ] || die "give --text FILE or --images SOURCE (--help)"
[ -z "$data_to" ] || [ -z "$data_from$resume" ] || die "--data-to runs the data half only: no --data-from or --resume"
[ -z "$data_skip" ] || [ -n "$data_to" ] || die "--data-skip goes with --data-to"
for f in "$text" "$val"; do [ -z "$f" ] || [ -f "$f" ] || die "$f: no such file"; done
[ -n "$every" ] || every=$(( steps / 10 > 0 ? steps / 10 : 1 ))
# --dry-run prints the chain and writes nothing.
[ -n "$dry" ] || mkdir -p "$out/ckpt"
if [ -z "$dry" ]; then # the options, for --resume (a raised --steps included)
    for v in text val images val_images classes size levels channels model layers dim heads ctx bpe steps batch lr \
        every log_every val_records samples threads seed; do
        printf '%s=%q\n' "$v" "${!v}"
    done > "$out/run.env"
fi

# ---- data: what to train on, what to hold out ------------------------------------------------
if [ -n "$text" ]; then
    if [ -z "$val" ]; then # carve the last 5% of the text off for evaluation
        if [ -z "$dry" ]; then
            bytes=$(wc -c < "$text")
            head -c $(( bytes - bytes / 20 )) "$text" > "$out/train.txt"
            tail -c $(( bytes / 20 )) "$text" > "$out/val.txt"
        fi
        text=$out/train.txt val=$out/val.txt
    fi
    source_of() { src=("text:$1" --split "chunk:$ctx"); }
    tokenize=(kiln tokenize --bytes)
    T=$ctx
    if [ -n "$bpe" ]; then # ~3.5-4 bytes a token: rows of T tokens from 4*T bytes (cut at T)
        source_of() { src=("text:$1" --split "chunk:$(( ctx * 4 ))"); }
        if [[ "$bpe" =~ ^[0-9]+$ ]]; then
            if [ ! -s "$out/bpe/vocab.bpe" ] && [ -z "$dry" ]; then
                echo "pretrain.sh: learning a $bpe-id BPE vocabulary from $text into $out/bpe" >&2
                kiln load "text:$text" --split paragraphs 2> /dev/null | kiln bpe --vocab "$bpe" --dir "$out/bpe"
            fi
            bpe=$out/bpe
        fi
        tokenize=(kiln tokenize --bpe "$bpe")
    fi
else
    [ -n "$val_images" ] || die "--images needs --val-images"
    source_of() { src=("$1" --size "$size" --channels "$channels" ${classes:+--classes "$classes"}); }
    tokenize=(kiln tokenize --levels "$levels")
    T=$(( ${size%x*} * ${size#*x} * channels )) # + the class token: one image a row
    text=$images val=$val_images
fi
shape=(${model:+--model "$model"} ${layers:+--layers "$layers"} ${dim:+--dim "$dim"} ${heads:+--heads "$heads"})

# ---- where to start -------------------------------------------------------------------------
skip="" init="" at=0 history=()
log=$out/log.rec
if [ -n "$resume" ]; then
    latest=$out/ckpt/latest.safetensors
    [ -e "$latest" ] || die "$latest missing: nothing to resume"
    cursor=$(kiln ckpt inspect "$latest" | awk '$1 == "cursor" { print $2 }')
    at=$(kiln ckpt inspect "$latest" | awk '$1 == "step" { print $2 }')
    [ "$steps" -gt "$at" ] || die "$out is at step $at already: give --steps above it to train on"
    skip="--skip ${cursor:-0}" init="--init $latest"
    echo "pretrain.sh: resuming $out at step $at, data cursor ${cursor:-0}" >&2
    [ -z "$data_from" ] || echo "pretrain.sh: start the data host with --data-skip ${cursor:-0}" >&2
    # The run so far, up to the step resumed from (a run killed with kill -9 logged steps
    # past its last checkpoint; its log has no eos, so kiln show's complaint is expected).
    if [ -s "$log" ] && [ -z "$dry" ]; then
        { kiln show --full --in "$log" 2> /dev/null || true; } \
            | jq -c --argjson at "$at" 'select((.step // 0) <= $at)' | kiln import > "$out/history.tmp"
        mv "$out/history.tmp" "$out/history.rec" # kept until the run ends: log.rec is rewritten
    fi
    [ -s "$out/history.rec" ] || [ -n "$dry" ] && history=(kiln cat --prepend "$out/history.rec")
fi

# ---- held-out data, once ----------------------------------------------------------------------
if [ ! -s "$out/val.rec" ] && [ -z "$dry$data_to" ]; then
    source_of "$val"
    kiln load "${src[@]}" --limit "$val_records" 2> /dev/null | "${tokenize[@]}" \
        | kiln batch -B "$batch" -T "$T" 2> /dev/null > "$out/val.rec"
fi

# ---- the flow -----------------------------------------------------------------------------------
source_of "$text"
[ -n "$data_skip" ] && skip="--skip $data_skip"
load=(kiln load "${src[@]}" --epochs 0 --shuffle --seed "$seed" $skip)
batcher=(kiln batch -B "$batch" -T "$T" ${data_to:+--out "$data_to"})
train=(kiln train "${shape[@]}" --ctx "$T" --steps "$steps" --lr "$lr" --every "$every"
    --log-every "$log_every" --seed "$seed" --threads "$threads" $init ${data_from:+--in "$data_from"})
evaluate=(kiln eval --data "$out/val.rec" --samples "$samples" --threads "$threads")
plot=(kiln plot --png "$out/loss.png" --dir "$out/plots" --title "pretrain $(basename "$out")")
ckpt=(kiln ckpt --dir "$out/ckpt" --keep 3)
show=(kiln show --progress --total "$steps")
# Split across hosts: the data half ends with batch --out URL, the training half starts
# with train --in URL.
if [ -n "$data_to" ]; then
    train=() history=() evaluate=() plot=() ckpt=()
elif [ -n "$data_from" ]; then
    load=() tokenize=() batcher=()
fi
chain() {
    local sep=""
    for stage in load tokenize batcher train history evaluate plot ckpt; do
        eval '[ -z "${'$stage'[*]:-}" ] || { echo "$sep${'$stage'[*]}"; sep="  | "; }'
    done
    [ -n "$data_to" ] || echo "  | tee $log | ${show[*]}"
}
chain >&2
[ -n "$dry" ] && exit 0
if [ -n "$data_to" ]; then
    "${load[@]}" 2> "$out/load.err" | "${tokenize[@]}" | "${batcher[@]}"
    echo "pretrain.sh: every batch went to $data_to" >&2
    exit 0
fi
{ echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'): from step $at"; chain; } >> "$out/chain.txt"
metrics_jsonl() { # every metrics record as a JSON line, also after Ctrl-C or a failure
    { kiln show --in "$log" 2> /dev/null || true; } | grep '^{"t":"metrics"' > "$out/metrics.jsonl" || true
}
trap metrics_jsonl EXIT
# Ctrl-C reaches every stage: the kiln stages read on to the end of their stream (train's
# final ckpt), so the log's tee must not die first (README.md, "Exit codes, signals").
keep_log() { (trap '' INT TERM && exec tee "$1"); }
batches() { # the data half, here or (--data-from) on another host
    if [ -n "$data_from" ]; then : < /dev/null; else
        "${load[@]}" 2> "$out/load.err" | "${tokenize[@]}" | "${batcher[@]}"; fi
}
batches | "${train[@]}" \
    | "${history[@]:-cat}" | "${evaluate[@]}" | "${plot[@]}" | "${ckpt[@]}" | keep_log "$log" | "${show[@]}"
rm -f "$out/history.rec"
echo "pretrain.sh: checkpoints in $out/ckpt (latest.safetensors, best.safetensors)," \
    "loss plot $out/loss.png, records $log, metrics $out/metrics.jsonl, chain $out/chain.txt" >&2
