# kiln ckpt: files per ckpt record, --keep / best / latest, pass-through, resume into the
# same directory, a plain-PyTorch load of the file, damaged files (exit 65 naming the
# file) and a write that fails half-way (exit 74, earlier checkpoints intact).
. "$KILN_ROOT/tests/lib.sh"

# ckpt STEP EVAL_LOSS [N]: an eval metrics record then a ckpt record of step STEP whose
# wte has N rows of 3 (default 2); wte[1][2] = STEP, so files can be told apart.  The
# model is whole (1 layer, 3 wide, context 4): wte and ln_f.bias first, then the rest at
# zero, so the first two tensors' offsets are [0,24] and [24,36].
z() { # z R [C]: zeros, a vector of R or R rows of C
    local row
    if [ $# = 1 ]; then row=$(printf '0,%.0s' $(seq "$1")); echo "[${row%,}]"; return; fi
    row=$(printf '0,%.0s' $(seq "$2")); row="[${row%,}]"
    local all=$(printf "$row,%.0s" $(seq "$1")); echo "[${all%,}]"
}
rest_tensors() {
    local name shape
    while read -r name shape; do
        printf ',"%s":{"dtype":"F32","shape":[%s],"data":%s}' "$name" "$shape" "$(z ${shape/,/ })"
    done << 'EOF2'
transformer.wpe.weight 4,3
transformer.h.0.ln_1.weight 3
transformer.h.0.ln_1.bias 3
transformer.h.0.attn.c_attn.weight 3,9
transformer.h.0.attn.c_attn.bias 9
transformer.h.0.attn.c_proj.weight 3,3
transformer.h.0.attn.c_proj.bias 3
transformer.h.0.ln_2.weight 3
transformer.h.0.ln_2.bias 3
transformer.h.0.mlp.c_fc.weight 3,12
transformer.h.0.mlp.c_fc.bias 12
transformer.h.0.mlp.c_proj.weight 12,3
transformer.h.0.mlp.c_proj.bias 3
transformer.ln_f.weight 3
EOF2
}
REST=$(rest_tensors)
ckpt() {
    local n=${3:-2} rows="[1,2,3]" ones="[1,1,1],[1,1,1]" twos="[2,2,2],[2,2,2]"
    if [ "$n" -gt 2 ]; then
        rows="$rows$(printf ',[0,0,0]%.0s' $(seq 3 "$n"))"
        ones="$ones$(printf ',[0,0,0]%.0s' $(seq 3 "$n"))" twos="$ones"
    fi
    echo "{\"t\":\"metrics\",\"stage\":\"eval\",\"split\":\"val\",\"step\":$1,\"loss\":$2}"
    echo "{\"t\":\"ckpt\",\"step\":$1,\"cursor\":$(($1 * 10)),\"seed\":5," \
        "\"config\":{\"n_layer\":1,\"n_embd\":3,\"n_head\":1,\"n_ctx\":4,\"vocab\":$n,\"head\":\"lm\"}," \
        "\"tokenizer\":{\"kind\":\"bytes\",\"vocab\":$n,\"classes\":[\"cat\",\"dog\"]}," \
        "\"tensors\":{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[$n,3],\"data\":[[4,5,$1],$rows]}," \
        "\"transformer.ln_f.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data\":[0.5,0,-0.25]}$REST}," \
        "\"optim\":{\"step\":$1,\"lr\":0.001," \
        "\"m\":{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[$n,3],\"data\":[$ones]}}," \
        "\"v\":{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[$n,3],\"data\":[$twos]}}}}"
}

# ---- keep / best / latest, pass-through ---------------------------------------------------
{ ckpt 100 3.0; ckpt 200 2.0; echo '{"t":"sample","text":"x"}'; ckpt 300 2.5; ckpt 400 2.6
  ckpt 500 2.7; } | "$K" import > run1.rec
expect_status 0 "$K" ckpt --dir runs/a --keep 2 --in run1.rec --out out.rec
"$K" show < out.rec > out.jsonl
expect '[ $(grep -c "\"t\":\"saved\"" out.jsonl) = 5 ]' "one saved record per ckpt"
expect '! grep -q "\"t\":\"ckpt\"" out.jsonl' "ckpt records are consumed"
expect '[ $(grep -c "\"t\":\"metrics\"" out.jsonl) = 5 ] && grep -q "\"t\":\"sample\"" out.jsonl' \
    "other records pass through"
expect 'grep -q "\"step\":200,\"path\":\"runs/a/step-000200.safetensors\",\"eval_loss\":2.0,\"best\":true" out.jsonl' \
    "saved record names step, path, eval loss, best"
expect 'grep -q "\"step\":500,.*\"best\":false" out.jsonl' "step 500 is not the best"
ls runs/a > files.txt
expect '[ "$(grep -c "^step-.*[0-9].safetensors$" files.txt)" = 3 ]' "two newest + best kept ($(tr '\n' ' ' < files.txt))"
expect '[ -f runs/a/step-000200.safetensors ] && [ -f runs/a/step-000400.safetensors ] && [ -f runs/a/step-000500.safetensors ]' \
    "kept: 200 (best), 400, 500"
expect '[ ! -e runs/a/step-000100.safetensors ] && [ ! -e runs/a/step-000100.optim.safetensors ] && [ ! -e runs/a/step-000300.safetensors ]' \
    "pruned: 100, 300 and their optimizer files"
expect '[ "$(readlink runs/a/latest.safetensors)" = step-000500.safetensors ]' "latest -> 500"
expect '[ "$(readlink runs/a/best.safetensors)" = step-000200.safetensors ]' "best -> 200"
expect '[ -f runs/a/step-000500.optim.safetensors ]' "optimizer state beside the model"
expect '[ -z "$(ls -A runs/a | grep "^\.")" ]' "no temp files left"

# ---- inspect -------------------------------------------------------------------------------
expect_status 0 "$K" ckpt inspect runs/a/latest.safetensors > inspect.txt
expect 'grep -q "^step *500$" inspect.txt && grep -q "^cursor *5000$" inspect.txt' "inspect: step, cursor"
expect 'grep -q "\"n_layer\":1" inspect.txt && grep -q "\"classes\":\[\"cat\",\"dog\"\]" inspect.txt' \
    "inspect: config and tokenizer"
expect 'grep -q "transformer.wte.weight *F32 *\[2, 3\] *crc32 [0-9a-f]\{8\}" inspect.txt' "inspect: tensor line"
expect 'grep -q "m.transformer.wte.weight" inspect.txt' "inspect: optimizer tensors"

# ---- resume into the same directory: old files count towards --keep, best remembered ------
{ ckpt 600 2.9; ckpt 700 2.8; } | "$K" import | "$K" ckpt --dir runs/a --keep 2 > /dev/null
expect '[ -f runs/a/step-000200.safetensors ] && [ -f runs/a/step-000600.safetensors ] && [ -f runs/a/step-000700.safetensors ] && [ ! -e runs/a/step-000500.safetensors ]' \
    "resumed: 200 (best from metadata), 600, 700 kept, 500 pruned"
expect '[ "$(readlink runs/a/best.safetensors)" = step-000200.safetensors ]' "best still 200"

# A resumed run that writes a step below the kept ones keeps it (and points latest at it).
ckpt 650 3.5 | "$K" import | "$K" ckpt --dir runs/a --keep 2 > /dev/null
expect '[ -f runs/a/step-000650.safetensors ] && [ "$(readlink runs/a/latest.safetensors)" = step-000650.safetensors ]' \
    "a lower step just written is kept and latest"
ckpt 700 2.8 | "$K" import | "$K" ckpt --dir runs/a --keep 2 > /dev/null
expect '[ -f runs/a/step-000650.safetensors ] && [ ! -e runs/a/step-000600.safetensors ] && [ -f runs/a/step-000200.safetensors ]' \
    "then the newest two by step (650, 700) and the best (200) stay"

# A damaged checkpoint found in the directory is reported and left alone, never deleted.
mkdir -p runs/c && printf 'junk' > runs/c/step-000001.safetensors
{ ckpt 10 1.0; ckpt 20 1.0; } | "$K" import | "$K" ckpt --dir runs/c --keep 1 > /dev/null 2> err.txt
expect '[ -f runs/c/step-000001.safetensors ] && grep -q "step-000001.safetensors: truncated.*left alone" err.txt' \
    "damaged file left alone: $(cat err.txt)"

# ---- plain PyTorch reads the file (independent reader of the format) -----------------------
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 - runs/a/latest.safetensors > py.txt 2>&1 <<'EOF'
import json, struct, sys, torch
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
meta = hdr.pop("__metadata__")
data = raw[8 + n:]
t = {k: torch.frombuffer(bytearray(data[v["data_offsets"][0]:v["data_offsets"][1]]),
                         dtype=torch.float32).reshape(v["shape"]) for k, v in hdr.items()}
assert (8 + n) % 8 == 0
assert meta["format"] == "pt" and meta["step"] == "700", meta
assert json.loads(meta["config"])["n_embd"] == 3
assert t["transformer.wte.weight"][0].tolist() == [4.0, 5.0, 700.0]
assert t["transformer.ln_f.bias"].tolist() == [0.5, 0.0, -0.25]
print("ok", sorted(t))
EOF
    expect 'grep -q "^ok" py.txt' "python reads the checkpoint: $(tail -1 py.txt)"
fi

# ---- damaged files: exit 65 naming the file --------------------------------------------------
cp runs/a/step-000700.safetensors good.safetensors
size=$(stat -c %s good.safetensors)
head -c $((size - 5)) good.safetensors > truncated.safetensors
expect_status 65 "$K" ckpt inspect truncated.safetensors 2> err.txt
expect 'grep -q "^kiln ckpt: truncated.safetensors: .*outside the data" err.txt' "truncated: $(cat err.txt)"
head -c 8 good.safetensors > cut-header.safetensors
expect_status 65 "$K" ckpt inspect cut-header.safetensors 2> err.txt
expect 'grep -q "cut-header.safetensors: truncated" err.txt' "header cut off: $(cat err.txt)"
# Corrupt the header JSON in place (byte 8 is its opening brace).
cp good.safetensors corrupt.safetensors
printf 'X' | dd of=corrupt.safetensors bs=1 seek=8 conv=notrunc 2> /dev/null
expect_status 65 "$K" ckpt inspect corrupt.safetensors 2> err.txt
expect 'grep -q "corrupt.safetensors: header does not start" err.txt' "corrupted header: $(cat err.txt)"
# Offsets beyond the file: a header rewritten with a bigger end offset, same length.
sed 's/"data_offsets":\[672,684\]/"data_offsets":[672,999]/' good.safetensors > outside.safetensors # the last
expect '! cmp -s good.safetensors outside.safetensors' "test setup: offsets rewritten"
expect_status 65 "$K" ckpt inspect outside.safetensors 2> err.txt
expect 'grep -q "outside.safetensors: .*outside the data buffer" err.txt' "offsets outside: $(cat err.txt)"
# Overlapping tensors: the second starts inside the first.
sed 's/"data_offsets":\[24,36\]/"data_offsets":[20,32]/' good.safetensors > overlap.safetensors
expect '! cmp -s good.safetensors overlap.safetensors' "test setup: offsets rewritten"
expect_status 65 "$K" ckpt inspect overlap.safetensors 2> err.txt
expect 'grep -q "overlap.safetensors: .*overlaps" err.txt' "overlap: $(cat err.txt)"
expect_status 74 "$K" ckpt inspect missing.safetensors 2> /dev/null

# ---- bad records, usage ----------------------------------------------------------------------
echo '{"t":"ckpt","step":1,"config":{},"tensors":{"w":3}}' | "$K" import > bad.rec
expect_status 65 "$K" ckpt --dir runs/b --in bad.rec --out /dev/null 2> err.txt
expect 'grep -q "bad.rec: ckpt record 1 (step 1): config n_layer is missing" err.txt' \
    "bad ckpt record: $(cat err.txt)"
expect '[ ! -e runs/b/step-000001.safetensors ]' "nothing written for a bad record"
expect_status 2 "$K" ckpt --out /dev/null < run1.rec 2> /dev/null
expect '"$K" ckpt --help | head -1 | grep -q "^kiln ckpt — "' "help first line"

# ---- a write that fails half-way (file size limit standing in for a full disk) -------------
ckpt 100 1.0 | "$K" import | "$K" ckpt --dir runs/full > /dev/null
ckpt 200 0.5 20000 | "$K" import > big.rec # a 240 KB checkpoint
(ulimit -f 64; trap '' XFSZ; exec "$K" ckpt --dir runs/full --in big.rec --out /dev/null) 2> err.txt
rc=$?
expect '[ $rc = 74 ]' "failed write exits 74 (got $rc)"
expect 'grep -q "runs/full/step-000200.\(optim.\)\{0,1\}safetensors: write: file too large" err.txt' "message: $(cat err.txt)"
expect '[ ! -e runs/full/step-000200.safetensors ] && [ -z "$(ls -A runs/full | grep "^\.")" ]' \
    "no partial or temp file left"
expect_status 0 "$K" ckpt inspect runs/full/latest.safetensors > /dev/null
expect '[ "$(readlink runs/full/latest.safetensors)" = step-000100.safetensors ]' "latest still the earlier one"

# ---- records that contradict their config: refused (65) before the directory is touched ----
ckpt 100 1.0 | "$K" import | "$K" ckpt --dir runs/g --keep 1 > /dev/null
contra() { # label, jq filter on the ckpt record, expected message
    ckpt 900 0.1 | jq -c "if .t == \"ckpt\" then $2 else . end" | "$K" import > contra.rec
    "$K" ckpt --dir runs/g --keep 1 --in contra.rec --out /dev/null 2> err.txt
    rc=$? want=$3
    expect '[ $rc = 65 ] && grep -q "$want" err.txt' "$1: refused with 65 (got $rc: $(cat err.txt))"
    expect '[ "$(ls runs/g | tr "\n" " ")" = "best.safetensors latest.safetensors step-000100.optim.safetensors step-000100.safetensors " ]' \
        "$1: the directory is untouched ($(ls -A runs/g | tr '\n' ' '))"
}
contra "a missing tensor" 'del(.tensors["transformer.wpe.weight"])' \
    "contra.rec: ckpt record 2 (step 900): tensors: no tensor transformer.wpe.weight"
contra "a transposed shape" \
    '.tensors["transformer.h.0.attn.c_attn.weight"] |= (.shape = [9,3] | .data = [range(9) | [0,0,0]])' \
    "transformer.h.0.attn.c_attn.weight is F32 \[9, 3\], the model's config needs F32 \[3, 9\]"
contra "an I32 tensor" '.tensors["transformer.ln_f.bias"] = {dtype: "I32", shape: [3], data: [1,2,3]}' \
    "transformer.ln_f.bias is I32 \[3\], the model's config needs F32 \[3\]"
contra "a layer count off" '.config.n_layer = 2' "tensors: no tensor transformer.h.1.ln_1.weight"
contra "a tensor the config lacks" '.tensors["transformer.h.7.ln_1.bias"] = .tensors["transformer.ln_f.bias"]' \
    "transformer.h.7.ln_1.bias is not a tensor of the config"
contra "moments of another shape" '.optim.m["transformer.wte.weight"] |= (.shape = [3,2] | .data = [[1,1],[1,1],[1,1]])' \
    "optim.m: transformer.wte.weight is F32 \[3, 2\]"

# ---- what a killed writer left is cleaned up by the next kiln ckpt on the directory --------
dead=$(sh -c 'echo $$')
touch "runs/g/.step-000200.safetensors.tmp.$dead.0" "runs/g/.latest.safetensors.tmp.$dead.1" \
    "runs/g/.step-000300.safetensors.tmp.$$.0" runs/g/step-000250.optim.safetensors
ckpt 400 0.5 | "$K" import | "$K" ckpt --dir runs/g --keep 1 > /dev/null 2> err.txt
expect '[ ! -e "runs/g/.step-000200.safetensors.tmp.$dead.0" ] && [ ! -e "runs/g/.latest.safetensors.tmp.$dead.1" ]' \
    "temp files of a dead writer removed ($(ls -A runs/g | tr '\n' ' '))"
expect '[ ! -e runs/g/step-000250.optim.safetensors ]' "an optimizer file without its model file removed"
expect '[ -e "runs/g/.step-000300.safetensors.tmp.$$.0" ]' "a live writer's temp file left alone"
expect 'grep -q "step-000250.optim.safetensors: removed" err.txt' "says what it removed ($(cat err.txt))"
expect '[ -f runs/g/step-000400.safetensors ] && [ -f runs/g/step-000400.optim.safetensors ]' "then saves as usual"
finish
