#!/usr/bin/env bash
# bench/embed — kiln's embedding and search paths against PyTorch and numpy, side by side in
# one run, 2 threads each: `kiln embed`'s forward + mean pooling on the small model (4 layers,
# 256 wide, 1,024 rows of 128 tokens, 64 a forward) against the same GPT in PyTorch eval mode
# under no_grad; exact top-10 search of 1,000 queries in 100,000 vectors of width 256 against
# numpy (matrix product + argpartition).  Best of 3 rounds each.  Prints a Markdown table.
# Usage: bench/embed.sh   (after `make`; needs /usr/bin/python3 with torch and numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/rel/bench/embed_kiln ] || make -s
field() { sed -E "s/.*\"$2\": ?([0-9.]+).*/\1/" <<<"$1"; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
k=$(KILN_THREADS=2 build/rel/bench/embed_kiln 2)
t=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/embed_torch.py 2)
ke=$(grep '"embed"' <<<"$k") ks=$(grep '"search"' <<<"$k")
te=$(grep '"embed"' <<<"$t") ts=$(grep '"search"' <<<"$t")
echo
echo "| task | kiln | PyTorch / numpy | kiln's speed-up |"
echo "|---|---|---|---|"
awk -v a="$(field "$ke" vectors_per_s)" -v b="$(field "$te" vectors_per_s)" \
    'BEGIN { printf "| embed, vectors/s | %.0f | %.0f | %.2fx |\n", a, b, a / b }'
awk -v a="$(field "$ks" queries_per_s)" -v b="$(field "$ts" queries_per_s)" \
    'BEGIN { printf "| search top-10 in 100k x 256, queries/s | %.0f | %.0f | %.2fx |\n", a, b, a / b }'
