# kiln embed, kiln index, kiln search and kiln pairs as stages: records in and out, the
# index as numpy reads it, search equal to a brute-force numpy search, and bad input (an
# index of another width or model, an empty index, pairs missing a side, a NaN vector).
. "$KILN_ROOT/tests/lib.sh"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
[ -f "$BOOK" ] || skip "no examples/data/moby-dick.txt"
export PATH="$KILN_BIN:$PATH"

head -c 30000 "$BOOK" > book.txt
kiln load text:book.txt --split chunk:64 --epochs 0 | kiln tokenize --bytes | kiln batch -B 4 -T 32 \
    | kiln train --layers 1 --dim 32 --heads 2 --ctx 32 --steps 2 | kiln ckpt --dir m | kiln show > /dev/null
kiln load text:book.txt --split chunk:64 --epochs 0 | kiln tokenize --bytes | kiln batch -B 4 -T 32 \
    | kiln train --layers 1 --dim 32 --heads 2 --ctx 32 --steps 2 --seed 9 | kiln ckpt --dir other \
    | kiln show > /dev/null

# embed: one embedding record per tokens record, fields kept, unit length
kiln load text:book.txt --split paragraphs --limit 40 | kiln tokenize --bytes --keep > docs.rec
expect_status 0 kiln embed --ckpt m/latest.safetensors -B 7 --threads 2 --in docs.rec --out emb.rec
n=$(kiln show < emb.rec | jq -c 'select(.t == "embedding")' | wc -l)
expect '[ "$n" = 40 ]' "40 embeddings ($n)"
expect 'kiln show --full < emb.rec | jq -s -e "map(select(.t == \"embedding\")) | all(.text != null and (.embedding.data | map(.*.) | add | . > 0.999 and . < 1.001))" > /dev/null' \
    "texts kept, vectors of length 1"
expect 'kiln show --all < emb.rec | head -1 | jq -e ".dim == 32 and .pool == \"mean\" and (.model_hash | startswith(\"fnv1a64:\"))" > /dev/null' \
    "the hdr names the model, pooling and width"
# the same rows, one at a time, give the same vectors (padding does not leak into a row)
kiln embed --ckpt m/latest.safetensors -B 1 < docs.rec > emb1.rec
expect 'diff <(kiln show --full < emb.rec | jq -c ".embedding.data" | jq -c "map(. * 1e4 | round)") \
    <(kiln show --full < emb1.rec | jq -c ".embedding.data" | jq -c "map(. * 1e4 | round)") > /dev/null' \
    "batching does not change a row's vector"

# index + search: every document finds itself first; numpy reads the index and agrees
expect_status 0 kiln index -o docs.index --in emb.rec --out saved.rec
expect 'kiln show < saved.rec | jq -s -e "map(select(.t == \"saved\")) | .[0].count == 40" > /dev/null' "saved record"
kiln search --index docs.index -k 5 --relevant id < emb.rec > hits.rec 2> search.err
expect 'kiln show < hits.rec | jq -s -e "map(select(.t == \"metrics\")) | .[0] | .[\"recall@1\"] == 1 and .queries == 40" > /dev/null' \
    "each document finds itself ($(cat search.err))"
kiln show < hits.rec | jq -c 'select(.t == "hits") | [.hits[].id]' > kiln_hits.txt
/usr/bin/python3 - > numpy_hits.txt << 'PY' || echo "FAIL: numpy" >&2
import json, struct
import numpy as np
b = open("docs.index", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
data = b[8 + n:]
def arr(name, dt):
    o = h[name]["data_offsets"]
    return np.frombuffer(data[o[0]:o[1]], dtype=dt).reshape(h[name]["shape"])
V, ids = arr("vectors", np.float32), arr("ids", np.int64)
assert h["__metadata__"]["kiln"] == "index" and len(json.loads(h["__metadata__"]["texts"])) == len(ids)
S = V @ V.T
for q in range(len(V)):
    top = np.argsort(-S[q], kind="stable")[:5]
    print(json.dumps([int(ids[i]) for i in top], separators=(",", ":")))
PY
expect 'diff kiln_hits.txt numpy_hits.txt > /dev/null' "search equals brute force in numpy"

# bad input
kiln embed --ckpt other/latest.safetensors < docs.rec > other.rec
expect_status 65 kiln search --index docs.index < other.rec > /dev/null 2> err.txt
expect 'grep -q "embedded by" err.txt' "queries of another model are refused ($(cat err.txt))"
printf '{"t":"embedding","id":1,"embedding":{"dtype":"F32","shape":[3],"data":[1,0,0]}}\n' \
    | kiln import > narrow.rec
expect_status 65 kiln search --index docs.index < narrow.rec > /dev/null 2> err.txt
expect 'grep -q "width 3" err.txt' "a query of another width is refused ($(cat err.txt))"
printf '{"t":"embedding","id":1,"embedding":{"dtype":"F32","shape":[2],"data":[1,2]}}\n' \
    | kiln import | /usr/bin/python3 -c '
import sys
b = sys.stdin.buffer.read()
sys.stdout.buffer.write(b.replace(bytes.fromhex("00000040"), bytes.fromhex("0000c07f")))' > nan.rec
expect_status 65 kiln index -o nan.index < nan.rec > /dev/null 2> err.txt
expect 'grep -q "NaN or Inf" err.txt' "a NaN vector is refused ($(cat err.txt))"
printf '{"t":"sample","text":"x"}\n' | kiln import | kiln tokenize --bytes > none.rec
expect_status 65 kiln index -o empty.index < none.rec > /dev/null 2> err.txt
expect 'grep -q "nothing to index" err.txt' "nothing to index ($(cat err.txt))"
: > empty.st
expect_status 65 kiln search --index empty.st < emb.rec > /dev/null 2> err.txt
expect 'grep -q "truncated" err.txt' "a file that is not an index ($(cat err.txt))"

# pairs: batches without repeated anchors; a missing side is named
printf '{"t":"sample","id":%d,"query":"q%d","pos":"p%d"}\n' 1 1 1 2 2 2 3 1 1 4 4 4 \
    | kiln import | kiln tokenize --bytes --fields query,pos > cols.rec
kiln pairs -B 2 --columns < cols.rec > pairs.rec 2> pairs.err
expect 'kiln show --full < pairs.rec | jq -s -e "map(select(.t == \"pairs\")) | all((.anchor.data | unique | length) == (.anchor.data | length))" > /dev/null' \
    "no batch repeats an anchor"
expect '[ "$(kiln show < pairs.rec | grep -c "\"t\":\"pairs\"")" = 2 ]' "two batches of two"
printf '{"t":"sample","id":1,"query":"q"}\n' | kiln import | kiln tokenize --bytes --fields query,pos \
    > half.rec
expect_status 65 kiln pairs -B 2 --columns < half.rec > /dev/null 2> err.txt
expect 'grep -q "without a positive" err.txt' "an anchor without a positive ($(cat err.txt))"
expect_status 2 kiln pairs --columns < cols.rec
# pairs --by-label --per-label N: up to N pairs of a label in a batch, their labels as group;
# trained with --group-positives (SupCon) and a pretraining batch a step (--ptx)
kiln load idx:"$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz" --limit 120 \
    --size 4x4 | kiln tokenize --levels 4 --no-class-token > lab.rec
kiln pairs -B 8 --by-label --per-label 2 < lab.rec > grp.rec 2> /dev/null
expect 'kiln show --full < grp.rec | jq -s -e "map(select(.t == \"pairs\")) | length > 2
    and all((.group.data | length) == 8 and (.group.data | group_by(.) | map(length) | max) <= 2)
    and any(.group.data | group_by(.) | map(length) | max == 2)" > /dev/null' \
    "--per-label 2: eight pairs a batch, a label twice at most, and twice somewhere"
kiln pairs -B 8 --by-label < lab.rec > one.rec 2> /dev/null
expect 'kiln show --full < one.rec | jq -s -e "map(select(.t == \"pairs\")) | all(.group == null)" > /dev/null' \
    "without --per-label, no group"
expect_status 2 kiln pairs -B 2 --columns --per-label 2 < cols.rec
kiln batch -B 4 -T 16 < lab.rec | kiln train --layers 1 --dim 16 --heads 2 --ctx 17 --steps 2 \
    | kiln ckpt --dir im | kiln show > /dev/null
kiln batch -B 4 -T 16 < lab.rec > ptx.rec
expect_status 0 kiln train --objective contrastive --group-positives --symmetric --finetune \
    --init im/latest.safetensors --steps 3 --log-every 1 --ptx ptx.rec --ptx-coef 0.5 \
    --in grp.rec --out sup.rec
expect 'kiln show < sup.rec | jq -s -e "map(select(.t == \"metrics\" and .loss != null))
    | length == 3 and all(.ptx_loss > 0 and .accuracy >= 0)" > /dev/null' \
    "SupCon steps with a pretraining batch each: loss, accuracy, ptx_loss"
if /usr/bin/python3 -c 'import msgpack' 2> /dev/null; then # a group of the wrong length: 65
    /usr/bin/python3 - grp.rec badgroup.rec << 'PY'
import sys, msgpack
out = open(sys.argv[2], "wb")
for r in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False):
    if r.get("t") == "pairs" and r["seq"] == 1:
        r["group"] = {"dtype": "I64", "shape": [7], "data": r["group"]["data"][:56]}
    out.write(msgpack.packb(r, use_bin_type=True))
PY
    expect_status 65 kiln train --objective contrastive --finetune --init im/latest.safetensors \
        --steps 2 --in badgroup.rec --out /dev/null 2> err.txt
    expect 'grep -q "record 1: group must be I64 \[8\], one per pair" err.txt' \
        "a group of the wrong length is named ($(cat err.txt))"
fi
# eval --queries: the queries' and the corpus's tokenizers must be the checkpoint's (65)
expect_status 0 kiln eval --ckpt m/latest.safetensors --queries docs.rec --corpus docs.rec \
    --threads 2 > ev.rec 2> /dev/null
expect 'kiln show < ev.rec | jq -s -e "map(select(.t == \"metrics\")) | .[0][\"recall@1\"] == 1" > /dev/null' \
    "eval --queries: each document finds itself"
kiln load idx:"$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz" --limit 4 \
    --size 4x4 | kiln tokenize --levels 4 --no-class-token > img.rec
expect_status 65 kiln eval --ckpt m/latest.safetensors --queries img.rec --corpus img.rec \
    > /dev/null 2> err.txt
expect 'grep -q "img.rec: the queries. tokenizer (levels.*) differs from the checkpoint.s (bytes" err.txt' \
    "queries of another tokenizer than the checkpoint's ($(cat err.txt))"
expect_status 65 kiln eval --ckpt m/latest.safetensors --queries docs.rec --corpus img.rec \
    > /dev/null 2> err.txt
expect 'grep -q "img.rec: the corpus.s tokenizer (levels.*) is not the queries. (bytes" err.txt' \
    "a corpus of another tokenizer than the queries' ($(cat err.txt))"
finish
