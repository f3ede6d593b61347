# kiln tokenize + detok: byte tokens and their layout, PNG -> tokens (--levels 256) -> PNG
# exact, class tokens first, unknown labels refused (65), palette tokens, kiln palette.
. "$KILN_ROOT/tests/lib.sh"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
IDX="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"
CLASSES="$KILN_ROOT/examples/data/fashion-mnist.classes"

printf 'Hi \xc3\xa9' > t.txt
"$K" load text:t.txt | "$K" tokenize --bytes --bos | "$K" show --full --all > tok.jsonl
expect '[ "$(sed -n 2p tok.jsonl | jq -c .tokens.data)" = "[256,72,105,32,195,169,257]" ]' "BOS bytes EOS"
expect '[ "$(head -1 tok.jsonl | jq -c "[.tokenizer.kind,.tokenizer.vocab,.tokenizer.pad]")" = "[\"bytes\",259,258]" ]' "tokenizer in hdr"
"$K" load text:t.txt | "$K" tokenize --bytes | "$K" detok > back.txt
expect '[ "$(cat back.txt)" = "$(cat t.txt)" ]' "detok gives the text back"

# --prompt: the prompt goes first with mask 0; the text and EOS count (mask 1).
printf '{"prompt":"Q? ","text":"A"}\n' > qa.jsonl
"$K" load jsonl:qa.jsonl | "$K" tokenize --bytes --prompt prompt | "$K" show --full > qa.out
expect '[ "$(jq -c "[.tokens.data, .mask.data, .prompt]" qa.out)" = "[[81,63,32,65,257],[0,0,0,1,1],null]" ]' "prompt masked out"

# PNG -> tokens (--levels 256) -> PNG is exact, class folders and names included.
"$K" load "$IDX" --classes "$CLASSES" --limit 30 | "$K" tokenize --levels 256 | "$K" detok --dir a 2>/dev/null
"$K" load png:a | "$K" tokenize --levels 256 --out a.rec
"$K" detok --dir b --in a.rec 2>/dev/null
expect 'diff -r a b' "PNG -> tokens -> PNG is exact"
expect '[ $(find b -name "*.png" | wc -l) = 30 ]' "30 PNG files"
"$K" load png:a --channels 3 | "$K" tokenize --levels 256 | "$K" detok --dir c 2>/dev/null
/usr/bin/python3 - <<'PY' > cmp.out
import zlib, struct, os
def pixels(p):
    d = open(p, "rb").read(); i = 8; idat = b""; w = h = ct = 0
    while i < len(d):
        n, = struct.unpack(">I", d[i:i+4]); t = d[i+4:i+8]; body = d[i+8:i+8+n]; i += 12 + n
        if t == b"IHDR": w, h, _, ct = struct.unpack(">IIBB", body[:10])
        if t == b"IDAT": idat += body
    return w, h, ct
for root, _, files in os.walk("c"):
    for f in files: print(pixels(os.path.join(root, f)))
PY
expect '[ "$(sort -u cmp.out)" = "(28, 28, 2)" ]' "--channels 3 writes RGB PNGs (colour type 2)"

# Class token first: levels 16 puts class_base at 16 + 3 = 19; Ankle boot (9) is 28.
"$K" load "$IDX" --classes "$CLASSES" --limit 1 | "$K" tokenize --levels 16 | "$K" show --full > lv.jsonl
expect '[ "$(jq -c ".tokens.data[0]" lv.jsonl)" = 28 ] && [ "$(jq -c ".tokens.shape" lv.jsonl)" = "[785]" ]' "class token then 784 pixels"
expect '[ "$(jq "[.tokens.data[1:][] | select(. > 15)] | length" lv.jsonl)" = 0 ]' "levels below 16"
printf 'T-shirt/top\nTrouser\n' > two.classes
expect_status 65 "$K" tokenize --levels 16 --classes two.classes --in <("$K" load "$IDX" --classes "$CLASSES" --limit 3) --out /dev/null 2> unk.err
expect 'grep -q "label .Ankle boot. is not in two.classes" unk.err' "unknown label: $(cat unk.err)"
expect_status 2 "$K" tokenize --levels 300 --in /dev/null --out /dev/null 2>/dev/null
expect_status 2 "$K" tokenize --bytes --levels 4 --in /dev/null --out /dev/null 2>/dev/null

# Palette: learn 4 colours from RGB images, tokens use them; same input, same palette.
"$K" load png:a --channels 3 --out rgb.rec
"$K" palette -k 4 -o p1.pal --in rgb.rec
"$K" palette -k 4 -o p2.pal --in rgb.rec
expect 'cmp -s p1.pal p2.pal && [ $(grep -vc "^#" p1.pal) = 4 ]' "palette deterministic, 4 colours"
"$K" tokenize --palette p1.pal --in rgb.rec | "$K" show --full --all > pal.jsonl
expect '[ "$(head -1 pal.jsonl | jq .tokenizer.vocab)" = 17 ] && [ "$(sed -n 2p pal.jsonl | jq .tokens.shape[0])" = 785 ]' "palette tokens"
expect '[ "$(sed -n "2,\$p" pal.jsonl | jq "select(.t==\"tokens\") | .tokens.data[1:][] | select(. > 3)" | wc -l)" = 0 ]' "palette ids below 4"
"$K" tokenize --palette p1.pal --in rgb.rec | "$K" detok --dir pd 2>/dev/null
expect '[ $(find pd -name "*.png" | wc -l) = 30 ]' "palette tokens decode to PNGs"

# ---- the README's jq round trip keeps the hdr; a labelled image without classes is refused ---
FMR="$KILN_ROOT/tests/fixtures/fashion-mnist"
IDXR="idx:$FMR/t10k-200-images-idx3-ubyte.gz,$FMR/t10k-200-labels-idx1-ubyte.gz"
"$K" load "$IDXR" --limit 20 --size 4x4 | "$K" show --all --full | jq -c 'select(.label != "3")' \
    | "$K" import | "$K" tokenize --levels 4 | "$K" show > rt.jsonl
expect '[ "$(grep -c "\"t\":\"tokens\"" rt.jsonl)" -gt 10 ] && ! grep -q "\"label\":\"3\"" rt.jsonl && grep -q "\"max\":16.0" rt.jsonl' \
    "show --all --full | jq | import | tokenize keeps the classes (class tokens present)"
"$K" load "$IDXR" --limit 20 --size 4x4 | "$K" show --full | "$K" import | "$K" tokenize --levels 4 \
    > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "labelled .9. but no classes are known" err.txt' \
    "a labelled image whose classes are unknown: 65 ($(cat err.txt))"
# --no-class-token: the label stays a field, the sequence starts with BOS, no classes unless
# --classes names them (then the tokenizer matches a class-conditional model's)
"$K" load "$IDXR" --limit 5 --size 4x4 | "$K" tokenize --levels 4 --no-class-token \
    | "$K" show --all --full > nc.jsonl
expect 'head -1 nc.jsonl | jq -e ".tokenizer.vocab == 7" > /dev/null && sed -n "2,\$p" nc.jsonl \
    | jq -s -e "map(select(.t == \"tokens\")) | length == 5 and all(.label != null and .tokens.data[0] == 4)" > /dev/null' \
    "--no-class-token: BOS first, labels kept, no classes"
"$K" load "$IDXR" --limit 5 --size 4x4 --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" \
    | "$K" tokenize --levels 4 --no-class-token --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" \
    | "$K" show --all --full > ncc.jsonl
expect 'head -1 ncc.jsonl | jq -e ".tokenizer.vocab == 17" > /dev/null && sed -n "2,\$p" ncc.jsonl \
    | jq -s -e "map(select(.t == \"tokens\")) | all(.tokens.data[0] == 4)" > /dev/null' \
    "--no-class-token --classes: the classes in the tokenizer, none in the sequence"
finish
