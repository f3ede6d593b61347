#!/usr/bin/env bash
# bench/bpe_vs_bytes — the same model trained on bytes and on a learned 4,096-id BPE for the
# same wall time, on the demo book and on the Lincoln addresses: held-out bits per byte (the
# bits of the target tokens over the bytes they stand for, so the two compare on one scale)
# and a sample from each.  pipelines/pretrain.sh's default model (4 layers, 128 wide, 4
# heads), T 128 tokens (bytes: rows of 128 bytes; BPE: 512-byte chunks, ~128-150 tokens, cut
# at 128), B 16, lr 2e-3, 2 threads; the last 5% of each text held out (64 rows).
# Equal wall time: `timeout SECONDS kiln train` on batches made beforehand (SIGTERM makes
# kiln train write its last checkpoint); --steps, which sets the cosine schedule, is what a
# 10-step timing run says fits in SECONDS.  Learning the vocabulary (4 s) is not counted.
# The machine may be shared: the load average is printed.
# Usage: bench/bpe_vs_bytes.sh [SECONDS [OUTDIR]]   (after make)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-180}
out=${2:-$(mktemp -d)}
PATH="$PWD/bin:$PATH"
mkdir -p "$out"
model=(--layers 4 --dim 128 --heads 4 --ctx 128 --lr 2e-3 --seed 1 --threads 2)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load average before:" \
    "$(cut -d' ' -f1-3 /proc/loadavg); $secs s of training per run"
echo
echo "| text | tokens | steps in ${secs}s | tokens/s | bytes a token | held-out bits/byte |"
echo "|---|---|---|---|---|---|"
for corpus in moby-dick sotu-lincoln; do
    src=examples/data/$corpus.txt
    bytes=$(wc -c < "$src")
    head -c $(( bytes - bytes / 20 )) "$src" > "$out/$corpus.train.txt"
    tail -c $(( bytes / 20 )) "$src" > "$out/$corpus.val.txt"
    kiln load text:"$out/$corpus.train.txt" --split paragraphs 2> /dev/null \
        | kiln bpe --vocab 4096 --dir "$out/$corpus.bpe" 2> /dev/null
    for tok in bytes bpe; do
        run=$out/$corpus-$tok
        if [ $tok = bytes ]; then chunk=128 tokenize=(kiln tokenize --bytes)
        else chunk=512 tokenize=(kiln tokenize --bpe "$out/$corpus.bpe"); fi
        kiln load text:"$out/$corpus.val.txt" --split chunk:$chunk --limit 64 2> /dev/null \
            | "${tokenize[@]}" | kiln batch -B 16 -T 128 2> /dev/null > "$run.val.rec"
        kiln load text:"$out/$corpus.train.txt" --split chunk:$chunk --epochs 20 --seed 1 2> /dev/null \
            | "${tokenize[@]}" | kiln batch -B 16 -T 128 2> /dev/null > "$run.train.rec"
        t0=$(date +%s.%N)
        kiln train "${model[@]}" --steps 10 --in "$run.train.rec" --out /dev/null 2> /dev/null
        per=$(echo "($(date +%s.%N) - $t0) / 10" | bc -l)
        steps=$(awk -v s="$secs" -v p="$per" 'BEGIN { print int(s / p) }')
        timeout "$secs" kiln train "${model[@]}" --steps "$steps" --every "$steps" --in "$run.train.rec" \
            2> "$run.err" | kiln ckpt --dir "$run" --out /dev/null || true
        done_steps=$(kiln ckpt inspect "$run/latest.safetensors" | awk '$1 == "step" { print $2 }')
        kiln eval --ckpt "$run/latest.safetensors" --data "$run.val.rec" --threads 2 2> /dev/null \
            | kiln show --out /dev/null > "$run.eval.jsonl"
        bpb=$(jq -r 'select(.stage == "eval") | .bits_per_byte' "$run.eval.jsonl")
        ntok=$(( done_steps * 16 * 128 ))
        bpt=$( \
            "${tokenize[@]}" --in <(kiln load text:"$out/$corpus.val.txt" 2> /dev/null) \
            | kiln show --out /dev/null | jq -r --argjson b "$(wc -c < "$out/$corpus.val.txt")" \
                'select(.t == "tokens") | $b / .tokens.shape[0] * 100 | round / 100')
        printf '| %s | %s | %s of %s | %.0f | %s | %.3f |\n' "$corpus" "$tok" "$done_steps" "$steps" \
            "$(echo "$ntok / $secs" | bc -l)" "$bpt" "$bpb"
    done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for corpus in moby-dick sotu-lincoln; do
    for tok in bytes bpe; do
        n=300
        [ $tok = bpe ] && n=90
        printf '\n%s, %s (%s tokens after the prompt " The"):\n\n' "$corpus" "$tok" "$n"
        kiln sample --ckpt "$out/$corpus-$tok/latest.safetensors" -n $n --prompt " The" \
            --seed 7 --threads 2 --ignore-eos | fold -s -w 90 | sed 's/^/    /'
    done
done
