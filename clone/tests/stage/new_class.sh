# A new class learned through its embedding row alone (kiln train --add-class NAME
# --train-new-classes, textual inversion): the checkpoint is a small rows adapter; folded
# into the base it changes exactly the new row, every other weight bit for bit the base's;
# eval and sample take it with --adapter.
. "$KILN_ROOT/tests/lib.sh"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
export PATH="$KILN_BIN:$PATH"
kiln load idx:"$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz" \
    --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" --size 6x6 \
    | kiln tokenize --levels 4 | kiln detok --dir png 2> /dev/null
mkdir -p pre new && mv png/Trouser png/Dress pre/ && mv png/Coat new/
printf 'Trouser\nDress\n' > pre.classes
kiln load png:pre --classes pre.classes --size 6x6 --epochs 0 | kiln tokenize --levels 4 \
    | kiln batch -B 4 -T 36 | kiln train --layers 1 --dim 32 --heads 2 --ctx 40 --steps 3 \
    | kiln ckpt --dir base | kiln show > /dev/null
printf 'Trouser\nDress\nCoat\n' > all.classes
kiln load png:new --classes all.classes --size 6x6 --epochs 0 | kiln tokenize --levels 4 \
    | kiln batch -B 4 -T 36 \
    | kiln train --init base/latest.safetensors --add-class Coat --train-new-classes --steps 5 \
        --lr 0.05 2> train.err | kiln ckpt --dir coat | kiln show > /dev/null
expect 'grep -q ": 32 of 14[0-9]* parameters train" train.err' "one row of 32 trains ($(cat train.err))"
kiln ckpt inspect coat/latest.safetensors > inspect.txt
expect 'grep -q "\"kind\":\"rows\"" inspect.txt' "a rows adapter ($(head -5 inspect.txt))"
expect 'grep -q "^tensors    1, 32 parameters" inspect.txt' "one tensor of one row in it"
expect_status 0 kiln ckpt merge base/latest.safetensors coat/latest.safetensors -o merged.safetensors
/usr/bin/python3 - << 'PY' || { echo "FAIL: only the new row changed" >&2; exit 1; }
import json, struct
import numpy as np
def tensors(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], np.float32).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}
base, merged = tensors("base/latest.safetensors"), tensors("merged.safetensors")
assert base.keys() == merged.keys()
for k in base:
    if k == "transformer.wte.weight":
        assert merged[k].shape[0] == base[k].shape[0] + 1, merged[k].shape
        assert np.array_equal(merged[k][:-1].view(np.uint32), base[k].view(np.uint32)), "old rows"
        assert not np.array_equal(merged[k][-1], base[k].mean(axis=0)), "the new row trained"
    else:
        assert np.array_equal(merged[k].view(np.uint32), base[k].view(np.uint32)), k
PY
kiln load png:new --classes all.classes --size 6x6 --limit 8 | kiln tokenize --levels 4 \
    | kiln batch -B 4 -T 36 > val.rec
expect_status 0 kiln eval --ckpt base/latest.safetensors --adapter coat/latest.safetensors --data val.rec \
    --out /dev/null
expect_status 0 kiln sample --ckpt base/latest.safetensors --adapter coat/latest.safetensors \
    --class Coat -n 2 --png coat.png
expect '[ -s coat.png ]' "samples of the new class"
expect_status 2 kiln train --init base/latest.safetensors --train-new-classes < /dev/null
finish
