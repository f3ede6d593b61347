#!/usr/bin/env bash
# bench/dpo — a DPO optimizer step against the same model's plain language-model step on the
# same number of tokens: the `small` preset (4 layers, 256 wide, 4 heads, context 256), bytes.
#   DPO: --accum 8 pairs a step, each a forward and backward of two rows (prompt 64 tokens,
#        completions 96 and 80: rows of 160 and 144 tokens) through gpt_backward_weighted
#   LM:  one batch of 16 rows of 152 tokens (the same 2432 tokens a step)
# Both through kiln train (the engine, AdamW, clipping), THREADS threads (default 2), the
# median of STEPS steps (default 10) from the metrics' elapsed_s, after 2 warm-up steps.
# Usage: bench/dpo.sh [STEPS]   (after `make`; prints a Markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-10} threads=${THREADS:-2}
K=bin/kiln
[ -x "$K" ] || make -s
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$tmp" $((8 * (steps + 2))) << 'PY'
import json, random, sys
d, n = sys.argv[1], int(sys.argv[2])
r = random.Random(1)
txt = lambda k: "".join(r.choice("abcdefghij klmnop") for _ in range(k))
with open(d + "/prefs.jsonl", "w") as f:
    for _ in range(n):
        f.write(json.dumps({"prompt": txt(64), "chosen": txt(95), "rejected": txt(79)}) + "\n")
with open(d + "/lm.txt", "w") as f:
    f.write(txt(16 * 152 * (n // 8 + 2)))
PY
$K load text:"$tmp/lm.txt" --split chunk:151 | $K tokenize --bytes | $K batch -B 16 -T 152 > "$tmp/lm.rec"
$K train --in "$tmp/lm.rec" --model small --steps 1 --threads "$threads" | $K ckpt --dir "$tmp/base" > /dev/null
base=$tmp/base/latest.safetensors
$K load jsonl:"$tmp/prefs.jsonl" | $K logps --ckpt "$base" --threads "$threads" > "$tmp/prefs.rec"
median_step_ms() { # the metrics records' elapsed_s, one a step: the median difference
    $K show | jq -s -r 'map(select(.t == "metrics") | .elapsed_s) | [range(2; length) as $i | .[$i] - .[$i - 1]]
        | sort | .[length / 2 | floor] * 1000'
}
dpo=$($K train --in "$tmp/prefs.rec" --objective dpo --init "$base" --accum 8 --steps $((steps + 2)) \
    --log-every 1 --threads "$threads" 2> /dev/null | median_step_ms)
lm=$($K train --in "$tmp/lm.rec" --init "$base" --finetune --steps $((steps + 2)) --log-every 1 \
    --threads "$threads" 2> /dev/null | median_step_ms)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $threads threads; median of $steps steps"
echo
echo "| step | tokens | ms | tokens/s |"
echo "|---|---|---|---|"
awk -v d="$dpo" -v l="$lm" 'BEGIN {
    printf "| DPO, 8 pairs (16 rows of 144-160) | 2432 | %.0f | %.0f |\n", d, 2432 / d * 1000
    printf "| LM, 16 rows of 152 | 2432 | %.0f | %.0f |\n", l, 2432 / l * 1000
    printf "\nDPO / LM step time: %.2f\n", d / l }'
