#!/usr/bin/env bash
# bench/pretrain.sh [DIR] — learning quality: kiln against PyTorch on the same job.
#
# The same model (4 layers, 128 wide, context 128, byte tokens), the same initial weights
# (PyTorch draws them and writes a safetensors file; kiln train --init starts from it), the
# very same batches of Moby-Dick (one record file both read), the same optimizer and
# schedule, the same held-out batches (the last 5% of the book).  Prints a Markdown table
# of eval loss at each eval point and the relative difference (target: within 2%), and
# draws both runs' train and eval loss into one PNG (docs/pretrain-kiln-vs-pytorch.png).
#   STEPS (default 600), EVERY (default 100), THREADS (default 2), PNG override.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="$root/bin:$PATH"
dir=${1:-runs/bench-pretrain}
steps=${STEPS:-600} every=${EVERY:-100} threads=${THREADS:-2}
png=${PNG:-$root/docs/pretrain-kiln-vs-pytorch.png}
B=16 T=128 shape=(--layers 4 --dim 128 --heads 4)
mkdir -p "$dir"
book=$root/examples/data/moby-dick.txt
bytes=$(wc -c < "$book")
head -c $(( bytes - bytes / 20 )) "$book" > "$dir/train.txt"
tail -c $(( bytes / 20 )) "$book" > "$dir/val.txt"

# the batches, once, for both
kiln load text:"$dir/train.txt" --split chunk:$T --epochs 0 --limit $(( steps * B )) 2> /dev/null \
    | kiln tokenize --bytes | kiln batch -B $B -T $T > "$dir/train.rec"
kiln load text:"$dir/val.txt" --split chunk:$T --limit 64 2> /dev/null \
    | kiln tokenize --bytes | kiln batch -B $B -T $T > "$dir/val.rec"
kiln show --full --in "$dir/train.rec" --out /dev/null > "$dir/train.jsonl"
kiln show --full --in "$dir/val.rec" --out /dev/null > "$dir/val.jsonl"
/usr/bin/python3 "$root/bench/pretrain_torch.py" init "$dir/init.safetensors" \
    --layers 4 --dim 128 --heads 4 --ctx $T --vocab 259 --seed 1

echo "bench/pretrain: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
t0=$(date +%s)
kiln train "${shape[@]}" --ctx $T --steps "$steps" --lr 2e-3 --every "$every" \
    --threads "$threads" --init "$dir/init.safetensors" --in "$dir/train.rec" \
    | kiln eval --data "$dir/val.rec" --threads "$threads" \
    | kiln show --out /dev/null | grep '"t":"metrics"' > "$dir/kiln.jsonl"
t1=$(date +%s)
OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$root/bench/pretrain_torch.py" train \
    "$dir/init.safetensors" "$dir/train.jsonl" "$dir/val.jsonl" --steps "$steps" \
    --every "$every" --lr 2e-3 --threads "$threads" > "$dir/torch.jsonl"
t2=$(date +%s)
echo "bench/pretrain: kiln $((t1 - t0)) s, PyTorch $((t2 - t1)) s (train + eval, $threads threads);" \
    "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# the table: eval loss at each eval point
evals() { grep '"stage":"eval"' "$1" | sed 's/.*"step":\([0-9]*\),"loss":\([0-9.e+-]*\).*/\1 \2/'; }
echo "| step | kiln eval loss | PyTorch eval loss | difference |"
echo "|---|---|---|---|"
join <(evals "$dir/kiln.jsonl" | sort -k1,1) <(evals "$dir/torch.jsonl" | sort -k1,1) | sort -n \
    | awk '{ d = ($2 - $3) / $3 * 100; if (d > 2 || d < -2) bad++
             printf "| %d | %.4f | %.4f | %+.2f%% |\n", $1, $2, $3, d }
           END { exit bad > 0 }' && ok=1 || ok=0

# one plot: both runs' curves
{
    sed 's/"stage":"train"/"stage":"kiln train"/; s/"stage":"eval","split":"val"/"stage":"kiln eval"/' "$dir/kiln.jsonl"
    sed 's/"stage":"train"/"stage":"PyTorch train"/; s/"stage":"eval","split":"val"/"stage":"PyTorch eval"/' "$dir/torch.jsonl"
} | kiln import | kiln plot --png "$png" --title "kiln vs PyTorch: same model, data, init" --out /dev/null
echo "bench/pretrain: plot $png" >&2
[ $ok = 1 ] || { echo "bench/pretrain: an eval point differs by more than 2%" >&2; exit 1; }
