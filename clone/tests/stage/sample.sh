# kiln sample: text streams and is a function of the seed, greedy ignores it, --logits
# prints V numbers per position, --records, an image model draws a per-class PNG grid.
. "$KILN_ROOT/tests/lib.sh"
book="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$book" ] || skip "examples/data/moby-dick.txt missing"

"$K" load text:"$book" --split chunk:500 --limit 100 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 4 -T 32 --pack | "$K" train --model tiny --ctx 32 --steps 15 --threads 2 \
    | "$K" ckpt --dir run > /dev/null
ck=run/latest.safetensors
s() { "$K" sample --ckpt "$ck" --threads 2 "$@"; }
s --prompt "Call me" -n 80 --seed 1 > a.txt
s --prompt "Call me" -n 80 --seed 1 > b.txt
s --prompt "Call me" -n 80 --seed 2 > c.txt
expect 'cmp -s a.txt b.txt' "same seed, same text"
expect '! cmp -s a.txt c.txt' "another seed, another text"
expect 'grep -q "^Call me" a.txt' "the prompt comes first"
s --prompt "Call me" -n 5000 --seed 1 2> err.txt | head -c 10 > /dev/null
rc=${PIPESTATUS[0]}
expect '[ $rc = 0 ] && [ ! -s err.txt ]' "text into a closed pipe: exit 0, quiet (got $rc)"
s --prompt "Call me" -n 40 --temperature 0 --seed 1 > g1.txt
s --prompt "Call me" -n 40 --temperature 0 --seed 9 > g2.txt
expect 'cmp -s g1.txt g2.txt' "greedy does not depend on the seed"
s --prompt "Call me" -n 40 --top-k 1 --seed 4 > k1.txt
expect 'cmp -s g1.txt k1.txt' "top-k 1 is greedy"

s --logits --tokens 67,97,108,108 > logits.txt
expect '[ "$(wc -l < logits.txt)" = 4 ] && [ "$(awk "{ print NF }" logits.txt | sort -u)" = 259 ]' \
    "--logits: a line of 259 per token"
s --logits --prompt Call > logits2.txt
expect 'cmp -s logits.txt logits2.txt' "--prompt Call gives the same tokens as --tokens 67,97,108,108"

s --records --count 3 -n 20 --seed 1 > recs.rec
expect '[ "$("$K" show --in recs.rec --out /dev/null | grep -c "\"t\":\"sample\"")" = 3 ]' "--records: 3 samples"
expect_status 2 s --count 2 -n 5
expect_status 2 s --bogus
expect_status 74 "$K" sample --ckpt missing.safetensors 2> /dev/null

# An image model: 8x8 gray at 4 levels, class token first.
fm="$KILN_ROOT/tests/fixtures/fashion-mnist"
"$K" load idx:"$fm/t10k-200-images-idx3-ubyte.gz,$fm/t10k-200-labels-idx1-ubyte.gz" \
    --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" --size 8x8 2> /dev/null \
    | "$K" tokenize --levels 4 | "$K" batch -B 8 -T 64 \
    | "$K" train --model tiny --ctx 64 --steps 10 --threads 2 | "$K" ckpt --dir img > /dev/null
"$K" sample --ckpt img/latest.safetensors -n 3 --png grid.png --scale 1 --threads 2 2> said.txt
expect '[ "$(od -An -tx1 -j1 -N3 grid.png | tr -d " ")" = 504e47 ]' "a PNG grid"
# 10 classes x 3 images of 8x8 with 2-pixel gaps: 32 wide, 102 high (IHDR at byte 16).
expect '[ "$(od -An -tu1 -j16 -N8 grid.png | tr -s " ")" = " 0 0 0 32 0 0 0 102" ]' "grid: a row per class"
"$K" sample --ckpt img/latest.safetensors --class Bag -n 4 --png bag.png --scale 1 --threads 2 2> /dev/null
expect '[ "$(od -An -tu1 -j16 -N8 bag.png | tr -s " ")" = " 0 0 0 22 0 0 0 22" ]' "--class: a 2x2 grid"
expect_status 2 "$K" sample --ckpt img/latest.safetensors --class Unicorn --png u.png 2> /dev/null
"$K" sample --ckpt img/latest.safetensors --class Bag -n 2 --records --threads 2 > imgs.rec
expect '"$K" show --in imgs.rec --out /dev/null | grep -q "\"label\":\"Bag\",\"image\":{\"dtype\":\"U8\",\"shape\":\[8,8,1\]"' \
    "image sample records with label"
finish
