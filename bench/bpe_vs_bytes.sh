#!/usr/bin/env bash
# bench/bpe_vs_bytes — the same model trained on bytes and on a learned 4,096-id BPE for the
# same wall time, on the demo book and on the Lincoln addresses: held-out bits per byte (the
# bits of the tokens over the bytes they stand for, so the two compare on one scale) and a
# sample from each.  pipelines/pretrain.sh's default model (4 layers, 128 wide, 4 heads),
# T 128 tokens, B 16, 2 threads, the last 5% of each text held out.
# Equal wall time: each run's steps = SECONDS / (seconds a step of that tokenizer took in a
# short timing run), the timing runs made right before; the table reports the wall time each
# run really took (the machine may be shared: its load average is printed).
# Usage: bench/bpe_vs_bytes.sh [SECONDS [OUTDIR]]   (after make)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-180}
out=${2:-$(mktemp -d)}
PATH="$PWD/bin:$PATH"
mkdir -p "$out"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load average before:" \
    "$(cut -d' ' -f1-3 /proc/loadavg); $secs s of training per run"
echo
echo "| text | tokens | steps | wall time | tokens/s | held-out bits/byte |"
echo "|---|---|---|---|---|---|"
for corpus in moby-dick sotu-lincoln; do
    for tok in bytes bpe; do
        run=$out/$corpus-$tok
        opt=()
        [ $tok = bpe ] && opt=(--bpe 4096)
        # a step's time: 12 steps (the vocabulary learned here, once, outside the timing)
        pipelines/pretrain.sh --text examples/data/$corpus.txt "${opt[@]}" --out "$run-t" \
            --steps 12 --every 12 --threads 2 > /dev/null 2> "$run-t.err"
        per=$(sed -n 's/^time *//p' "$run-t.err" | awk '{ s = 0; if (/m/) { split($0, a, "m"); s = a[1] * 60 + a[2] } else s = $0 + 0; print s / 12 }')
        steps=$(awk -v s="$secs" -v p="$per" 'BEGIN { n = int(s / p); print n < 20 ? 20 : n }')
        [ $tok = bpe ] && mkdir -p "$run" && cp -r "$run-t/bpe" "$run/"
        t0=$(date +%s)
        pipelines/pretrain.sh --text examples/data/$corpus.txt "${opt[@]}" --out "$run" \
            --steps "$steps" --threads 2 > /dev/null 2> "$run.err"
        wall=$(( $(date +%s) - t0 ))
        bpb=$(sed -n 's/.*best \([0-9.]*\) at step.*, \([0-9.]*\) bits\/byte/\2/p' "$run.err" | tail -1)
        tps=$(sed -n 's/^tokens\/s *//p' "$run.err")
        echo "| $corpus | $tok | $steps | ${wall}s | $tps | $bpb |"
    done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for corpus in moby-dick sotu-lincoln; do
    for tok in bytes bpe; do
        n=300
        [ $tok = bpe ] && n=85
        printf '\n%s, %s (%s tokens, prompt " The"):\n\n' "$corpus" "$tok" "$n"
        kiln sample --ckpt "$out/$corpus-$tok/ckpt/best.safetensors" -n $n --prompt " The" \
            --seed 7 --threads 2 --ignore-eos | sed 's/^/    /'
    done
done
