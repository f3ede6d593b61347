# kiln batch --shard I/N (data-parallel ranks reading one stream): shard I writes batches
# I, I+N, ... of the unsharded stream, unchanged, each with the whole stream's cursor; the
# shards together are the whole; a bad I/N is a usage error.
. "$KILN_ROOT/tests/lib.sh"
head -c 20000 "$KILN_ROOT/examples/data/moby-dick.txt" > book.txt
batches() { "$K" load text:book.txt --split paragraphs | "$K" tokenize --bytes |
    "$K" batch -B 2 -T 32 --pack "$@" | "$K" show --full | jq -c 'select(.t == "batch") | [.x.data, .cursor]'; }
batches > all.txt
batches --shard 0/3 > s0.txt
batches --shard 1/3 > s1.txt
batches --shard 2/3 > s2.txt
n=$(wc -l < all.txt)
expect '[ "$n" -gt 10 ]' "the stream makes batches ($n)"
for i in 0 1 2; do
    awk -v i=$i '(NR - 1) % 3 == i' all.txt > want$i.txt
    expect "cmp -s want$i.txt s$i.txt" "shard $i/3 is batches $i, $((i + 3)), ... with their cursors"
done
expect '[ $(($(wc -l < s0.txt) + $(wc -l < s1.txt) + $(wc -l < s2.txt))) = "$n" ]' "the shards make the whole"
"$K" batch -B 2 -T 32 --shard 3/3 < /dev/null > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 2 ] && grep -q "shard wants I/N with 0 <= I < N" err.txt' "--shard 3/3 refused: $rc $(cat err.txt)"
finish
