# The embedding examples' baselines and one example end to end on tiny sizes:
# bench/embed_baseline.py --pixels searched by kiln equals a brute-force numpy search,
# --tfidf finds each passage from itself, table.bash's paired comparison agrees with itself,
# and examples/embed/text.sh and (where dataset-fashion-mnist is installed)
# examples/embed/fashion.sh print their tables of three systems.
. "$KILN_ROOT/tests/lib.sh"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
command -v jq > /dev/null || skip "no jq"
/usr/bin/python3 -c 'import numpy, msgpack' 2> /dev/null || skip "no numpy or msgpack for /usr/bin/python3"
export PATH="$KILN_BIN:$PATH"
B="$KILN_ROOT/bench/embed_baseline.py"
idx="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"

# pixels: kiln's top 10 equal numpy's cosine top 10 on the raw pixels
kiln load "$idx" --skip 50 > corpus.rec
kiln load "$idx" --limit 50 > queries.rec
/usr/bin/python3 "$B" --pixels < corpus.rec | kiln index -o px.index > /dev/null
/usr/bin/python3 "$B" --pixels < queries.rec | kiln search --index px.index -k 10 --relevant label \
    2> /dev/null > hits.rec
expect 'kiln show < hits.rec | jq -s -e "map(select(.t == \"metrics\")) | .[0].queries == 50 and .[0].knn_accuracy > 0.3" > /dev/null' \
    "pixel baseline: 50 queries scored"
kiln show < hits.rec | jq -c 'select(.t == "hits") | [.hits[].id]' > kiln_hits.txt
/usr/bin/python3 - "$FM" > numpy_hits.txt << 'PY' || echo "FAIL: numpy" >&2
import gzip, json, sys
import numpy as np
fm = sys.argv[1]
x = np.frombuffer(gzip.open(f"{fm}/t10k-200-images-idx3-ubyte.gz").read()[16:], np.uint8)
x = x.reshape(200, 784).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
s = x[:50] @ x[50:].T
for row in s:
    print(json.dumps([int(i) + 50 for i in np.argsort(-row, kind="stable")[:10]], separators=(",", ":")))
PY
expect 'diff kiln_hits.txt numpy_hits.txt > /dev/null' "pixel search equals numpy's brute force"

# examples/embed/table.bash's paired comparison: a system against itself agrees on every query
right=$(kiln show < hits.rec | jq -s '[.[] | select(.t == "hits") | select(.hits[0].label == .label)] | length')
kiln show < hits.rec | jq -r 'select(.t == "hits") | .label + "\tclothes"' | sort -u > categories.tsv
(. "$KILN_ROOT/examples/embed/table.bash" && paired_table pixels hits.rec hits.rec paired.md categories.tsv) > /dev/null
expect 'grep -qx "| first hit | $right | 0 | 0 | $((50 - right)) | 1 |" paired.md' \
    "paired table: $right of 50 right first by both, none by one alone ($(head -3 paired.md | tail -1))"
expect 'grep -q "^| clothes | 50 | [0-9]*% | [0-9]*% |$" paired.md' "paired table: by category"
# ... and against a copy whose first hit is wrong on the right queries among the first 20:
# those n only pixels gets first, and the exact McNemar test's p is 2 / 2^n
kiln show --full --all < hits.rec \
    | jq -c 'if .t == "hits" and .seq <= 20 and .hits[0].label == .label then .hits[0].label = "none" else . end' \
    | kiln import > worse.rec
n=$(kiln show < hits.rec | jq -s '[.[] | select(.t == "hits" and .seq <= 20 and .hits[0].label == .label)] | length')
p=$(/usr/bin/python3 -c "print(f'{2 / 2**$n:.2g}')")
(. "$KILN_ROOT/examples/embed/table.bash" && paired_table pixels hits.rec worse.rec paired2.md) > /dev/null
expect 'grep -qx "| first hit | $((right - n)) | 0 | $n | $((50 - right)) | $p |" paired2.md' \
    "paired table: $n first hits lost, p = $p ($(head -3 paired2.md | tail -1))"

# TF-IDF on byte tokens: each passage finds itself first
kiln load text:"$KILN_ROOT/examples/data/sotu-lincoln.txt" --split paragraphs --limit 60 \
    | kiln tokenize --bytes > docs.rec
/usr/bin/python3 "$B" --tfidf docs.rec < docs.rec > tfidf.rec
kiln index -o tfidf.index < tfidf.rec > /dev/null
kiln search --index tfidf.index -k 10 --relevant id < tfidf.rec 2> /dev/null > thits.rec
expect 'kiln show < thits.rec | jq -s -e "map(select(.t == \"metrics\")) | .[0][\"recall@1\"] == 1" > /dev/null' \
    "TF-IDF: each passage finds itself"
expect_status 2 /usr/bin/python3 "$B" --tfidf
expect_status 65 /usr/bin/python3 "$B" --pixels < /dev/null

# an example end to end: base, contrastive training, TF-IDF, the table
PRE_STEPS=2 STEPS=2 QUERIES=20 THREADS=2 "$KILN_ROOT/examples/embed/text.sh" ex > ex.log 2>&1
expect '[ $? = 0 ]' "examples/embed/text.sh runs ($(tail -3 ex.log))"
expect '[ "$(grep -Ec "^\| (TF-IDF|pretrained|after contrastive).* \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|$" ex/results.md)" = 3 ]' \
    "three systems in the table ($(cat ex/results.md))"

# the Fashion-MNIST example at its default settings but a handful of steps and images
if [ -r /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    PRE_STEPS=2 STEPS=4 QUERIES=30 CORPUS=200 THREADS=2 "$KILN_ROOT/examples/embed/fashion.sh" fm > fm.log 2>&1
    expect '[ $? = 0 ]' "examples/embed/fashion.sh runs ($(tail -3 fm.log))"
    expect '[ "$(grep -Ec "^\| (pixels|pretrained|after contrastive).* \| [0-9.]+ \|$" fm/results.md)" = 3 ]' \
        "three systems in the Fashion-MNIST table ($(cat fm/results.md))"
    expect 'kiln ckpt inspect fm/base/latest.safetensors | grep -q "\"levels\":16"' "the base reads 16 gray levels"
fi
finish
