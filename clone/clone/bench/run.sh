#!/usr/bin/env bash
# bench/run.sh — every benchmark, one after another (`make bench`).  Each prints a Markdown
# table; BENCHMARKS.md keeps the latest figures with the machine they ran on.
# Takes a long time (tens of minutes on 2 cores); run one script alone to refresh a section.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n## gemm\n\n'
"$here/../build/rel/bench/gemm"
printf '\n## generate (64 rows x 64 new tokens, 2 threads)\n\n'
"$here/../build/rel/bench/generate"
if /usr/bin/python3 -c 'import torch' 2> /dev/null; then /usr/bin/python3 "$here/generate_torch.py"; fi
for b in stream.sh data train.sh pretrain.sh finetune.sh embed.sh rollout.sh bpe.sh bpe_vs_bytes.sh mpi.sh; do
    [ -x "$here/$b" ] || continue
    printf '\n## %s\n\n' "$b"
    "$here/$b"
done
