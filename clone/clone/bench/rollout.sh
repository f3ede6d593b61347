#!/usr/bin/env bash
# bench/rollout — RL rollout generation, kiln against PyTorch, side by side in one run, 2
# threads each: the small model (4 layers, 256 wide, random initialisation), 16 prompts of 16
# tokens x K 4 = 64 sequences x 64 new tokens, temperature-1 sampling with a key/value cache,
# and every drawn token's log-probability recorded (what PPO needs).  kiln: krollout_generate
# (lib/run/rollout.h) through build/rel/bench/generate --logprobs 1; PyTorch: the same model
# and loop in bench/generate_torch.py --logprobs 1 (log_softmax + gather each step).  Best of
# --reps 3 each.  Prints a Markdown table with kiln's speed-up (the target is 2x or more).
# Usage: bench/rollout.sh   (after `make`; needs /usr/bin/python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/rel/bench/generate ] || make -s
field() { sed -E "s/.*\"$2\": ?([0-9.]+).*/\1/" <<<"$1"; }
args=(--rows 64 --new 64 --prompt 16 --threads 2 --reps 3 --logprobs 1 --k 4)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
k=$(build/rel/bench/generate "${args[@]}")
t=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/generate_torch.py "${args[@]}")
echo
echo "| rollouts: 64 sequences x 64 new tokens, small model | kiln | PyTorch $(sed -E "s/.*\"torch\": \"([^\"]*)\".*/\1/" <<<"$t") | kiln's speed-up |"
echo "|---|---|---|---|"
awk -v a="$(field "$k" tokens_per_s_best)" -v b="$(field "$t" tokens_per_s_best)" \
    'BEGIN { printf "| new tokens/s (with logprobs), best of 3 | %.0f | %.0f | %.2fx |\n", a, b, a / b }'
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
