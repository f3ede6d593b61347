# Train -> ckpt -> resume: 40 steps in one go and 20 steps + a resume from the step-20
# checkpoint (kiln train --init, kiln load --skip CURSOR) give the same step-40 checkpoint,
# bit for bit: weights, optimizer state, config, tokenizer (kiln ckpt inspect checksums).
. "$KILN_ROOT/tests/lib.sh"
[ -f "$KILN_ROOT/examples/data/moby-dick.txt" ] || skip "examples/data/moby-dick.txt missing"

data() { # data SKIP: the batches of the flow, skipping SKIP samples
    "$K" load text:"$KILN_ROOT/examples/data/moby-dick.txt" --split chunk:65 --skip "$1" 2> /dev/null \
        | "$K" tokenize --bytes | "$K" batch -B 4 -T 32 2> /dev/null
}
train() { "$K" train --model tiny --ctx 32 --steps 40 --every 20 --threads 2 "$@"; }

data 0 | train | "$K" ckpt --dir a --keep 0 > /dev/null
expect '[ -f a/step-000020.safetensors ] && [ -f a/step-000040.safetensors ]' "two checkpoints"
cursor=$("$K" ckpt inspect a/step-000020.safetensors | awk '/^cursor/ { print $2 }')
expect '[ "${cursor:-0}" -gt 0 ]' "the checkpoint has a data cursor ($cursor)"

data "$cursor" | train --init a/step-000020.safetensors | "$K" ckpt --dir b --keep 0 > /dev/null
expect '[ -f b/step-000040.safetensors ] && [ ! -e b/step-000020.safetensors ]' "resumed run ends at step 40"
# Everything but the file name and the cursor (counted from the resumed stream's start).
"$K" ckpt inspect a/step-000040.safetensors | grep -v '^file\|^cursor' > a.txt
"$K" ckpt inspect b/step-000040.safetensors | grep -v '^file\|^cursor' > b.txt
expect 'grep -q "transformer.h.1.mlp.c_proj.weight" a.txt' "inspect lists the tensors"
expect 'cmp -s a.txt b.txt' "resumed == straight run: $(diff a.txt b.txt | head -4 | tr '\n' ' ')"

# An optimizer file without one tensor's moments: refused, naming it (65), not resumed from
# zeros; --reset-optimizer resumes with every moment at zero.
mkdir c && cp a/step-000020.safetensors a/step-000020.optim.safetensors c/
python3 - c/step-000020.optim.safetensors << 'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head, data = json.loads(raw[8:8 + n]), raw[8 + n:]
del head["m.transformer.h.0.attn.c_attn.weight"]
out, off = b"", 0
for k, v in head.items():
    if k == "__metadata__": continue
    a, b = v["data_offsets"]
    out += data[a:b]; v["data_offsets"] = [off, off + b - a]; off += b - a
h = json.dumps(head).encode(); h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + out)
PY
data "$cursor" | train --init c/step-000020.safetensors > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "optim.safetensors: the optimizer state has no moments for transformer.h.0.attn.c_attn.weight" err.txt' \
    "missing moments refused: exit $rc ($(cat err.txt))"
data "$cursor" | train --init c/step-000020.safetensors --reset-optimizer | "$K" ckpt --dir d --keep 0 > /dev/null
expect '[ -f d/step-000040.safetensors ]' "--reset-optimizer resumes"
finish
