# kiln eval: metrics (stage eval) before each ckpt, bits per byte, the same numbers from a
# ckpt record and from its file, samples, and refusals: eval data with another tokenizer,
# a checkpoint whose tensor shapes do not match its config, a truncated checkpoint.
. "$KILN_ROOT/tests/lib.sh"
book="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$book" ] || skip "examples/data/moby-dick.txt missing"

"$K" load text:"$book" --split chunk:500 --limit 8 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 2 -T 32 --pack > val.rec
"$K" load text:"$book" --split chunk:500 --skip 8 --limit 200 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 4 -T 32 --pack > train.rec
"$K" train --model tiny --ctx 32 --steps 20 --every 10 --threads 2 --in train.rec \
    | "$K" eval --data val.rec --samples 2 --sample-len 20 --threads 2 > out.rec
expect_status 0 "$K" show --in out.rec --out /dev/null > out.jsonl
grep -o '"t":"[a-z]*"[^}]*' out.jsonl | cut -c1-60 > kinds.txt
# Order per checkpoint: eval metrics, 2 samples, then the ckpt itself.
expect '[ "$(grep -n "\"t\":\"metrics\",\"seq\":[0-9]*,\"stage\":\"eval\",\"split\":\"val\",\"step\":10" out.jsonl | cut -d: -f1)" -lt "$(grep -n "\"t\":\"ckpt\".*\"step\":10" out.jsonl | cut -d: -f1)" ]' \
    "eval metrics of step 10 come before the ckpt of step 10"
expect '[ "$(grep -c "\"stage\":\"eval\"" out.jsonl)" = 2 ] && [ "$(grep -c "\"t\":\"sample\"" out.jsonl)" = 4 ]' \
    "two evaluations, two samples each"
expect '[ "$(grep -c "\"t\":\"ckpt\"" out.jsonl)" = 2 ] && [ "$(grep -c "\"stage\":\"train\"" out.jsonl)" = 2 ]' \
    "ckpt and train metrics pass through"
loss10=$(grep '"stage":"eval".*"step":10,' out.jsonl | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
bpb10=$(grep '"stage":"eval".*"step":10,' out.jsonl | sed 's/.*"bits_per_byte":\([0-9.e+-]*\).*/\1/')
expect 'awk "BEGIN { exit !($loss10 > 1 && $loss10 < 6) }"' "a plausible loss ($loss10)"
expect 'awk "BEGIN { exit !($bpb10 > $loss10 / log(2) && $bpb10 < 1.1 * $loss10 / log(2)) }"' \
    "bits per byte just above loss/ln 2 (EOS targets charged to bytes): $bpb10"

# The same checkpoint from a file gives the same metrics.
"$K" ckpt --dir run --in out.rec --out /dev/null
expect_status 0 "$K" eval --data val.rec --ckpt run/step-000010.safetensors --threads 2 2> said.txt > f.rec
expect 'grep -q "\"loss\":$loss10," <("$K" show --in f.rec --out /dev/null)' "file eval = stream eval ($loss10)"
expect 'grep -q "step 10: loss .* bits/byte, perplexity" said.txt' "a human summary on stderr"

# Eval data whose tokenizer is not the checkpoint's: images at 4 levels.
fm="$KILN_ROOT/tests/fixtures/fashion-mnist"
"$K" load idx:"$fm/t10k-200-images-idx3-ubyte.gz,$fm/t10k-200-labels-idx1-ubyte.gz" \
    --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" --limit 4 2> /dev/null \
    | "$K" tokenize --levels 4 | "$K" batch -B 2 -T 32 2> /dev/null > img.rec
expect_status 65 "$K" eval --data img.rec --ckpt run/step-000010.safetensors 2> err.txt > /dev/null
expect 'grep -q "img.rec: the eval data.s tokenizer (levels 4, 10 classes, vocab 17) differs from the checkpoint.s (bytes, 0 classes, vocab 259)" err.txt' \
    "tokenizer mismatch: $(cat err.txt)"
expect_status 65 "$K" eval --data img.rec --in out.rec 2> err.txt > /dev/null
expect 'grep -q "differs from the checkpoint" err.txt' "mismatch in a stream too: $(cat err.txt)"

# A checkpoint whose tensor shape disagrees with its config (same bytes, shape swapped).
if /usr/bin/python3 -c 'import json' 2> /dev/null; then
    /usr/bin/python3 - run/step-000010.safetensors bad-shape.safetensors << 'PY'
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
head = json.loads(raw[8:8 + n])
head['transformer.h.0.mlp.c_fc.weight']['shape'] = [256, 64]  # is [64, 256]
head['__metadata__'].pop('optim', None)
text = json.dumps(head, separators=(',', ':')).encode()
text += b' ' * (n - len(text)) if len(text) <= n else b''
assert len(text) == n
open(sys.argv[2], 'wb').write(raw[:8] + text + raw[8 + n:])
PY
    expect_status 65 "$K" eval --data val.rec --ckpt bad-shape.safetensors 2> err.txt > /dev/null
    expect 'grep -q "bad-shape.safetensors: transformer.h.0.mlp.c_fc.weight is F32 \[256, 64\], the model.s config needs F32 \[64, 256\]" err.txt' \
        "shape mismatch: $(cat err.txt)"
fi
head -c 3000 run/step-000010.safetensors > cut.safetensors
expect_status 65 "$K" eval --data val.rec --ckpt cut.safetensors 2> err.txt > /dev/null
expect 'grep -q "cut.safetensors" err.txt' "truncated checkpoint named: $(cat err.txt)"
expect_status 2 "$K" eval --ckpt run/step-000010.safetensors 2> /dev/null
finish
