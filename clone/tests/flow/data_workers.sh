# 1 worker vs 2 workers over ZeroMQ: load fans out to two augment workers, which fan in to
# tokenize | batch --ordered; the batches must be byte-identical to the single chain.
. "$KILN_ROOT/tests/lib.sh"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
IDX="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"
sock="$PWD/s"

ops="hflip crop:2 jitter:0.3,0.3 rotate:8"
"$K" load "$IDX" --epochs 2 --seed 4 | "$K" augment $ops | "$K" tokenize --levels 16 \
    | "$K" batch -B 16 -T 784 --ordered | "$K" show --full > one.jsonl
timeout -k 5 60 "$K" tokenize --levels 16 --in "@ipc://$sock.in" --fan-in 2 \
    | timeout -k 5 60 "$K" batch -B 16 -T 784 --ordered | "$K" show --full > two.jsonl & col=$!
timeout -k 5 60 "$K" augment $ops --in "ipc://$sock.out" --out ">ipc://$sock.in" & w1=$!
timeout -k 5 60 "$K" augment $ops --in "ipc://$sock.out" --out ">ipc://$sock.in" & w2=$!
timeout -k 5 60 "$K" load "$IDX" --epochs 2 --seed 4 --out "@ipc://$sock.out" --fan-out 2; src=$?
wait $w1; r1=$?; wait $w2; r2=$?; wait $col; rc=$?
expect '[ "$src$r1$r2$rc" = 0000 ]' "all processes exit 0 ($src $r1 $r2 $rc)"
expect '[ $(wc -l < one.jsonl) = 25 ]' "25 batches from 400 images"
expect 'cmp -s one.jsonl two.jsonl' "1 worker and 2 workers give identical batches"

# Parallel loading: two `kiln load --shard I/2` into one fan-in equal a single load.
"$K" load "$IDX" --epochs 2 | "$K" tokenize --levels 16 | "$K" batch -B 16 -T 784 \
    | "$K" show --full > plain.jsonl
timeout -k 5 60 "$K" tokenize --levels 16 --in "@ipc://$sock.lin" --fan-in 2 \
    | timeout -k 5 60 "$K" batch -B 16 -T 784 --ordered | "$K" show --full > sharded.jsonl & col=$!
timeout -k 5 60 "$K" load "$IDX" --epochs 2 --shard 0/2 --out ">ipc://$sock.lin" & l0=$!
timeout -k 5 60 "$K" load "$IDX" --epochs 2 --shard 1/2 --out ">ipc://$sock.lin"; l1=$?
wait $l0; l0=$?; wait $col; rc=$?
expect '[ "$l0$l1$rc" = 000 ]' "sharded loaders and collector exit 0 ($l0 $l1 $rc)"
expect '[ $(wc -l < plain.jsonl) = 25 ] && cmp -s plain.jsonl sharded.jsonl' "2 sharded loaders = 1 loader"
finish
