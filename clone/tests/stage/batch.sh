# kiln batch and kiln shuffle: packed rows (y = x shifted, rows continue each other), one
# sequence a row with PAD and a loss mask, image batches with a padded last batch, cursor,
# --drop-last, --ordered undoing a shuffle; shuffle is a deterministic permutation.
. "$KILN_ROOT/tests/lib.sh"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
IDX="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"

head -c 20000 "$BOOK" > book.txt
"$K" load text:book.txt --split paragraphs | "$K" tokenize --bytes | "$K" batch -B 4 -T 64 --pack \
    | "$K" show --full > pack.jsonl
expect '[ "$(head -1 pack.jsonl | jq -c .x.shape)" = "[4,64]" ]' "x is [4,64]"
expect '[ "$(jq "[.x.data[][1:]] == [.y.data[][:63]]" pack.jsonl | sort -u)" = true ]' "y is x shifted by one"
expect '[ "$(jq "[.x.data[1:][][0]] == [.y.data[:3][][63]]" pack.jsonl | sort -u)" = true ]' "each row starts where the last ended"
expect '[ "$(head -n -1 pack.jsonl | jq -c ".mask.data | flatten | unique" | sort -u)" = "[1]" ]' "packed rows all count"
expect '[ "$(head -1 pack.jsonl | jq "[.x.data[][] | select(. == 257)] | length")" -gt 0 ]' "documents joined by EOS"
# The packed stream is the concatenation of the documents.
"$K" load text:book.txt --split paragraphs | "$K" tokenize --bytes | "$K" show --full \
    | jq -c ".tokens.data[]" | head -n 257 > stream.txt
head -1 pack.jsonl | jq -c ".x.data[][]" > row.txt
expect 'cmp -s <(head -n 256 stream.txt) row.txt' "first batch = first 256 tokens"

# One sequence a row: "Hi" -> x = [H i EOS PAD ...], mask [1 1 0 ...]
printf 'Hi\nabcdefghij\n' > two.txt
"$K" load text:two.txt --split lines | "$K" tokenize --bytes | "$K" batch -B 2 -T 4 | "$K" show --full > rows.jsonl
expect '[ "$(jq -c .x.data rows.jsonl)" = "[[72,105,257,258],[97,98,99,100]]" ]' "x padded and cut"
expect '[ "$(jq -c .y.data rows.jsonl)" = "[[105,257,258,258],[98,99,100,101]]" ]' "y shifted"
expect '[ "$(jq -c .mask.data rows.jsonl)" = "[[1,1,0,0],[1,1,1,1]]" ]' "loss mask"
expect '[ "$(jq -c .cursor rows.jsonl)" = 2 ]' "cursor"

# Images: one a row; 200 images, B 32 -> 7 batches, the last padded.
"$K" load "$IDX" --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" | "$K" tokenize --levels 16 \
    | "$K" batch -B 32 -T 784 --out img.rec
"$K" show --full < img.rec > img.jsonl
expect '[ $(wc -l < img.jsonl) = 7 ] && [ "$(head -1 img.jsonl | jq -c .x.shape)" = "[32,784]" ]' "7 batches of [32,784]"
expect '[ "$(jq -c "[.cursor]" img.jsonl | tr -d "\n")" = "[32][64][96][128][160][192][200]" ]' "cursors"
expect '[ "$(tail -1 img.jsonl | jq "[.mask.data[][]] | add")" = $((8 * 784)) ]' "last batch: 8 real rows"
expect '[ "$(head -1 img.jsonl | jq ".x.data[0][0]")" = 28 ]' "a row starts with the class token"
"$K" load "$IDX" | "$K" tokenize --levels 16 | "$K" batch -B 32 -T 784 --drop-last | "$K" show > drop.jsonl
expect '[ $(wc -l < drop.jsonl) = 6 ]' "--drop-last"

# Shuffle: a permutation, deterministic for a seed; batch --ordered undoes it.
"$K" load "$IDX" | "$K" tokenize --levels 16 --out tok.rec
"$K" shuffle -n 64 --seed 5 --in tok.rec --out s1.rec
"$K" shuffle -n 64 --seed 5 --in tok.rec --out s2.rec
"$K" shuffle -n 64 --seed 6 --in tok.rec --out s3.rec
expect 'cmp -s s1.rec s2.rec' "same seed, same order"
expect '! cmp -s s1.rec s3.rec' "another seed, another order"
"$K" show < s1.rec | jq -c .id > ids.txt
expect '[ "$(sort -n ids.txt | tr "\n" " ")" = "$(seq 0 199 | tr "\n" " ")" ] && ! cmp -s ids.txt <(seq 0 199)' "a true permutation"
"$K" batch -B 32 -T 784 --ordered --in s1.rec --out ordered.rec
"$K" batch -B 32 -T 784 --in tok.rec --out plain.rec
expect 'cmp -s <("$K" show --full < ordered.rec) <("$K" show --full < plain.rec)' "--ordered restores (epoch, id) order"
"$K" batch -B 32 -T 784 --ordered --window 8 --in s1.rec --out small.rec
expect '! cmp -s <("$K" show --full < small.rec) <("$K" show --full < plain.rec)' "a window smaller than the disorder cannot (sanity)"
expect_status 2 "$K" batch -B 0 -T 4 --in tok.rec --out /dev/null 2>/dev/null
finish
