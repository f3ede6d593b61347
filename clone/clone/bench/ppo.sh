#!/usr/bin/env bash
# bench/ppo — one PPO iteration of kiln ppo broken into its parts, from the stage's own
# time/* metrics: generation (krollout_generate), the forward passes for old logprobs, values
# and the reference, the reward stage (kiln judge --score afinn over the pipe pair), and the
# update (4 epochs of minibatches, AdamW).  The small model (4 layers, 256 wide, one training
# step from random, so its completions run to --max-new), 16 prompts x K 4 = 64 rollouts x 64
# new tokens, minibatches of 16, 2 threads; --iters iterations (default 3), the first dropped
# as warm-up when there are more, medians of the rest.  Prints a Markdown table.
# Usage: bench/ppo.sh [--iters N]   (after `make`)
set -euo pipefail
cd "$(dirname "$0")/.."
iters=3
[ "${1:-}" = --iters ] && iters=$2
[ -x bin/kiln-ppo ] || make -s
export PATH="$PWD/bin:$PATH"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
kiln load text:examples/data/moby-dick.txt --split chunk:200 --limit 64 2> /dev/null \
    | kiln tokenize --bytes | kiln batch -B 4 -T 64 --pack \
    | kiln train --model small --steps 1 --threads 2 | kiln ckpt --dir "$dir/base" > /dev/null
# prompts: the first 16 bytes of 16 chunks of the book
kiln load text:examples/data/moby-dick.txt --split chunk:16 --limit 16 2> "$dir/err" > "$dir/prompts.rec"
kiln ppo --init "$dir/base/latest.safetensors" --in "$dir/prompts.rec" --threads 2 \
    --reward "kiln judge --score afinn --lexicon tests/fixtures/rlhf/afinn-mini.txt" \
    --iterations "$iters" --prompts 16 -K 4 --max-new 64 --minibatch 16 2> "$dir/err" \
    | kiln show > "$dir/log.jsonl"
jq -s -r --argjson skip "$([ "$iters" -gt 1 ] && echo 1 || echo 0)" '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  map(select(.t == "metrics" and .stage == "ppo")) | .[$skip:] as $m
  | ["generate", "forward", "reward", "update"] as $parts
  | ($parts | map(. as $p | $m | map(.["time/" + $p + "_s"]) | median)) as $t
  | ($t | add) as $total
  | "| one PPO iteration (64 rollouts x 64 new tokens, small model, \($m | length) measured) | seconds | share |",
    "|---|---|---|",
    ([$parts, $t] | transpose[] | "| \(.[0]) | \(.[1] * 1000 | round / 1000) | \(.[1] / $total * 100 | round)% |"),
    "| total | \($total * 1000 | round / 1000) | 100% |"' "$dir/log.jsonl"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
