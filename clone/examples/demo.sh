#!/usr/bin/env bash
# make demo — pretrain a byte-level GPT on Moby-Dick (examples/data/moby-dick.txt) for about
# four minutes on two quiet cores (4 min 6 s measured, docs/stages-pretrain.md "Results"; longer
# on a shared machine), with a progress bar; then print samples and where everything is.
#
#   DEMO_STEPS  optimizer steps (default 3000: ~4 minutes on 2 quiet cores)
#   DEMO_OUT    output directory (default runs/demo; a previous demo run there is replaced)
#   DEMO_ARGS   more pipelines/pretrain.sh options (e.g. "--dim 64" for a quick try)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
PATH="${KILN_BIN:-$root/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
steps=${DEMO_STEPS:-3000}
out=${DEMO_OUT:-runs/demo}
[ -x bin/kiln-train ] || make -s all

if [ -e "$out" ]; then
    [ -f "$out/run.env" ] || { echo "demo: $out exists and is not a pretrain run; set DEMO_OUT" >&2; exit 2; }
    rm -rf "$out"
fi
echo "demo: pretraining a 4-layer byte-level GPT on Moby-Dick for $steps steps (Ctrl-C stops it;" \
    "'pipelines/pretrain.sh --resume $out' continues)" >&2
# shellcheck disable=SC2086
pipelines/pretrain.sh --text examples/data/moby-dick.txt --out "$out" --steps "$steps" \
    --every $(( steps / 10 > 0 ? steps / 10 : 1 )) --log-every $(( steps / 100 > 0 ? steps / 100 : 1 )) \
    ${DEMO_ARGS:-}

best=$out/ckpt/best.safetensors
[ -e "$best" ] || best=$out/ckpt/latest.safetensors
echo >&2
echo "demo: three samples from $best (temperature 0.8, top-k 40; the model learned" \
    "documents of --ctx bytes, so each ends after about that many):" >&2
for seed in 1 2 3; do
    echo >&2
    kiln sample --ckpt "$best" --prompt "Call me Ishmael. " -n 400 --temperature 0.8 --top-k 40 --seed $seed
done
cat >&2 << MSG

demo: everything is in $out/ (the commands below need kiln on PATH: export PATH="$root/bin:\$PATH")
  loss plot      $out/loss.png (train and eval loss against step)
  checkpoints    $out/ckpt/ (best.safetensors, latest.safetensors; safetensors with GPT-2
                 names, loadable by PyTorch)
  records        $out/log.rec (kiln show --in $out/log.rec | less), metrics as JSON lines
                 $out/metrics.jsonl, the chain that made it $out/chain.txt
  summary        kiln show --progress --in $out/log.rec
  more samples   kiln sample --ckpt $best --prompt "The whale" -n 500 --top-p 0.9
  evaluate       kiln eval --data $out/val.rec --ckpt $best --out /dev/null
  continue       pipelines/pretrain.sh --resume $out --steps $(( steps * 2 ))
MSG
