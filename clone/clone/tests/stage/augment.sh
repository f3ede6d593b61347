# kiln augment: ops change images, text passes through, every op is deterministic for a
# seed (same bytes twice), and a record's result depends only on (seed, id, epoch): the
# same record gives the same image whether it comes alone, in another order, or sharded.
. "$KILN_ROOT/tests/lib.sh"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
IDX="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"
n=60
[ "${KILN_SAN:-}" = 1 ] && n=20
"$K" load "$IDX" --limit $n --channels 3 --out in.rec
for op in hflip@1 vflip@1 crop:2 crop:3,reflect shift:2 rotate:15 scale:0.8-1.2 \
    jitter:0.4,0.4,0.4,0.1 noise:8 cutout:2,6 gray; do
    "$K" augment --seed 7 "$op" --in in.rec --out a.rec
    "$K" augment --seed 7 "$op" --in in.rec --out b.rec
    "$K" augment --seed 8 "$op" --in in.rec --out c.rec
    expect 'cmp -s a.rec b.rec' "$op: same seed, same bytes"
    expect '! cmp -s a.rec in.rec' "$op changes the images"
    case $op in *@1|gray) ;; *) expect '! cmp -s a.rec c.rec' "$op: another seed, other draws" ;; esac
done
expect_status 0 "$K" augment hflip --in in.rec --out /dev/null
expect_status 2 "$K" augment blur --in in.rec --out /dev/null 2>/dev/null
expect_status 2 "$K" augment hflip@1.5 --in in.rec --out /dev/null 2>/dev/null

# Order independence: the full stream vs its shards (other neighbours, other positions).
ops="hflip crop:2 jitter:0.3,0.3 rotate:10 noise:4"
"$K" augment --seed 3 $ops --in in.rec | "$K" show --full | jq -c 'del(.seq)' | sort > all.jsonl
for i in 0 1; do
    "$K" load "$IDX" --limit $((n / 2)) --channels 3 --shard $i/2 | "$K" augment --seed 3 $ops \
        | "$K" show --full | jq -c 'del(.seq)'
done | sort > sharded.jsonl
expect 'cmp -s all.jsonl sharded.jsonl' "a record's draw does not depend on its neighbours"

# Text records pass through unchanged.
printf 'hello\n' > t.txt
"$K" load text:t.txt | "$K" augment hflip@1 | "$K" show > text.jsonl
expect 'grep -q "\"text\":\"hello\\\\n\"" text.jsonl' "text passes through"
finish
