# Fine-tuning: --finetune restarts the schedule from a base; --freeze keeps frozen tensors
# bit-identical (CRC-32 of each tensor) and holds no moments for them; --lora writes an
# adapter checkpoint (just the adapters, the base hash) that kiln ckpt merge folds into a
# model equal to base + s A^T B^T (checked with numpy); --add-class grows the vocabulary.
# Bad input: a base hash mismatch, a --freeze naming a missing layer, an --init whose
# tokenizer does not match the stream, --add-class of an existing name.
. "$KILN_ROOT/tests/lib.sh"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$BOOK" ] || skip "no examples/data/moby-dick.txt"
command -v jq >/dev/null || skip "no jq"
/usr/bin/python3 -c 'import numpy' 2>/dev/null || skip "no numpy for /usr/bin/python3"

# labelled text: two classes for the base, a third one for --add-class
awk 'NR % 3 == 1 { n++; printf "{\"text\":%s,\"label\":\"%s\"}\n", "\"" $0 "\"", (n % 2 ? "cat" : "dog") }' \
    <(head -c 30000 "$BOOK" | tr -d '"\\\r' | grep -v '^$') > base.jsonl
awk 'NR % 3 == 1 { printf "{\"text\":\"%s\",\"label\":\"lion\"}\n", $0 }' \
    <(tail -c 8000 "$BOOK" | tr -d '"\\\r' | grep -v '^$') > lion.jsonl
printf 'cat\ndog\n' > two.txt
printf 'cat\ndog\nlion\n' > three.txt
"$K" load jsonl:base.jsonl | "$K" tokenize --bytes --classes two.txt \
    | "$K" batch -B 4 -T 32 --pack --out base.rec
"$K" load jsonl:base.jsonl | "$K" tokenize --bytes --classes three.txt \
    | "$K" batch -B 4 -T 32 --pack --out base3.rec
"$K" load jsonl:lion.jsonl | "$K" tokenize --bytes --classes three.txt \
    | "$K" batch -B 4 -T 32 --pack --out lion.rec

"$K" train --in base.rec --layers 2 --dim 32 --heads 2 --ctx 32 --steps 6 | "$K" ckpt --dir base \
    | "$K" show > /dev/null
B=base/latest.safetensors
expect '[ -f $B ]' "a base checkpoint"

# full fine-tuning: weights from the base, a new schedule from step 0
"$K" train --in base.rec --init $B --finetune --steps 3 --log-every 1 | "$K" show > full.jsonl
expect '[ "$(jq -c "select(.t == \"metrics\") | .step" full.jsonl | tr "\n" " ")" = "1 2 3 " ]' "fine-tuning starts at step 1"
expect '[ "$(jq -r "select(.t == \"metrics\") | .lr" full.jsonl | head -1)" != "" ]' "metrics carry lr"

# freezing: frozen tensors bit-identical, their moments absent
"$K" train --in base.rec --init $B --freeze embeddings,blocks:0 --steps 4 --lr 1e-2 \
    | "$K" ckpt --dir frozen | "$K" show > /dev/null
"$K" ckpt inspect $B > base.txt
"$K" ckpt inspect frozen/latest.safetensors > frozen.txt
crc() { grep "^  $2 " "$1" | awk '{print $NF}' | head -1; }
same=0 moved=0
for t in transformer.wte.weight transformer.wpe.weight transformer.h.0.ln_1.weight \
    transformer.h.0.attn.c_attn.weight transformer.h.0.mlp.c_proj.bias; do
    [ "$(crc base.txt $t)" = "$(crc frozen.txt $t)" ] && same=$((same + 1))
done
for t in transformer.h.1.attn.c_attn.weight transformer.h.1.ln_2.bias transformer.ln_f.weight; do
    [ "$(crc base.txt $t)" != "$(crc frozen.txt $t)" ] && moved=$((moved + 1))
done
expect '[ $same = 5 ]' "frozen tensors are bit-identical ($same of 5)"
expect '[ $moved = 3 ]' "trained tensors moved ($moved of 3)"
expect 'grep -q "optimizer .* 28 tensors" frozen.txt' "moments only for the 14 trained tensors ($(grep optimizer frozen.txt))"
expect '! grep -q "m.transformer.wte.weight" frozen.txt' "no moments for a frozen tensor"

# LoRA: an adapter checkpoint, merged by kiln ckpt merge
"$K" train --in base.rec --init $B --lora r=4,alpha=8,targets=qkv,proj,fc,fcproj --steps 4 \
    --lr 1e-2 --log-every 4 | "$K" ckpt --dir lora | "$K" show > lora.jsonl
A=lora/latest.safetensors
"$K" ckpt inspect $A > lora.txt
expect 'grep -q "^adapter .*\"base_hash\":\"fnv1a64:" lora.txt' "the adapter names its base's hash"
expect '[ "$(grep -c "^  base_model.*lora_[AB].weight" lora.txt)" = 16 ]' "only adapters (2 layers x 4 targets x A,B) in the file"
expect '! grep -q "^  transformer.h" lora.txt' "no base tensor in the adapter file"
fullopt=$(jq "select(.t == \"metrics\") | .optim_bytes" full.jsonl | tail -1)
loraopt=$(jq "select(.t == \"metrics\") | .optim_bytes" lora.jsonl | tail -1)
expect '[ "$loraopt" -lt "$((fullopt / 2))" ]' "LoRA optimizer state ($loraopt bytes) under half of full ($fullopt)"
expect_status 0 "$K" ckpt merge $B $A -o merged.safetensors
/usr/bin/python3 - $B $A merged.safetensors > merge.txt <<'PY'
import json, struct, sys
import numpy as np
def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    out = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                            dtype=np.float32).reshape(v["shape"]) for k, v in head.items()}
    return out, meta
base, _ = load(sys.argv[1]); ad, meta = load(sys.argv[2]); merged, _ = load(sys.argv[3])
cfg = json.loads(meta["adapter"]); s = cfg["alpha"] / cfg["r"]
worst, n = 0.0, 0
for name, w in base.items():
    want = w.astype(np.float64)
    key = "base_model.model." + name.replace(".weight", ".lora_A.weight")
    if key in ad:
        A = ad[key].astype(np.float64); Bm = ad[key.replace("lora_A", "lora_B")].astype(np.float64)
        want = want + s * A.T @ Bm.T
        n += 1
    worst = max(worst, float(np.abs(merged[name] - want).max()))
print(n, worst)
PY
read nmerged worst < merge.txt
expect '[ "$nmerged" = 8 ]' "numpy folded 8 adapted weights"
expect 'awk -v w="$worst" "BEGIN{exit !(w < 1e-5)}"' "merged = base + s A^T B^T (max error $worst)"
# the same logits from the merged model and from base + adapter (kiln sample --adapter)
"$K" sample --ckpt merged.safetensors --logits --tokens 259,67,97,108,108,32,109,101 > l1.txt
"$K" sample --ckpt $B --adapter $A --logits --tokens 259,67,97,108,108,32,109,101 > l2.txt
"$K" sample --ckpt $B --logits --tokens 259,67,97,108,108,32,109,101 > l0.txt
maxdiff() { paste -d' ' "$1" "$2" | awk '{ n = NF / 2; for (i = 1; i <= n; i++) { d = $i - $(i + n);
    if (d < 0) d = -d; if (d > m) m = d } } END { printf "%g", m }'; }
d12=$(maxdiff l1.txt l2.txt) d01=$(maxdiff l0.txt l1.txt)
expect '[ -s l1.txt ] && awk -v d="$d12" "BEGIN{exit !(d < 1e-5)}"' "merged and base+adapter logits agree (max diff $d12)"
expect 'awk -v d="$d01" "BEGIN{exit !(d > 1e-3)}"' "the adapter changed the logits (max diff $d01)"
# kiln eval in the stream: adapter ckpt records folded into --base, the same loss as merged
"$K" train --in base.rec --init $B --lora r=4,alpha=8,targets=qkv,proj,fc,fcproj --steps 4 \
    --lr 1e-2 --log-every 4 | "$K" eval --data base.rec --max-batches 2 --base $B | "$K" show > ev.jsonl
"$K" eval --ckpt merged.safetensors --data base.rec --max-batches 2 < /dev/null | "$K" show > evm.jsonl
l1=$(jq 'select(.t == "metrics" and .stage == "eval") | .loss' ev.jsonl)
l2=$(jq 'select(.t == "metrics" and .stage == "eval") | .loss' evm.jsonl)
expect '[ -n "$l1" ] && awk -v a="$l1" -v b="$l2" "BEGIN{d = a - b; exit !(d < 1e-5 && d > -1e-5)}"' "eval --base on adapter records = eval of the merged file ($l1 vs $l2)"
"$K" train --in base.rec --init $B --lora r=2 --steps 1 | "$KILN_BIN/kiln-eval" --data base.rec \
    --out /dev/null 2> nobase.err; rc=$?
expect '[ $rc = 65 ] && grep -q "holds LoRA adapters, not a model" nobase.err' "adapter records without --base ($(cat nobase.err))"
# --lora --train: named modules train beside the adapters, travel in the adapter file, merge
"$K" train --in base.rec --init $B --lora r=2 --train ln_f,blocks:1 --steps 2 --lr 1e-2 \
    | "$K" ckpt --dir lt | "$K" show > /dev/null
"$K" ckpt inspect lt/latest.safetensors > lt.txt
expect 'grep -q "^  transformer.ln_f.weight" lt.txt && grep -q "^  transformer.h.1.mlp.c_fc.weight" lt.txt && ! grep -q "^  transformer.h.0" lt.txt' "--train tensors in the adapter file"
expect_status 0 "$K" ckpt merge $B lt/latest.safetensors -o lt.safetensors
"$K" ckpt inspect lt.safetensors > ltm.txt
expect '[ "$(crc lt.txt transformer.ln_f.weight)" = "$(crc ltm.txt transformer.ln_f.weight)" ]' "merge takes the trained ln_f"
"$KILN_BIN/kiln-train" --in base.rec --init $B --lora r=2 --train blocks:4 --steps 1 --out /dev/null 2> tr.err; rc=$?
expect '[ $rc = 2 ] && grep -q "train: blocks:4: the model has blocks 0-1" tr.err' "--train a missing layer ($(cat tr.err))"
# the merged model is a standalone checkpoint: training can start from it
expect_status 0 "$K" train --in base.rec --init merged.safetensors --finetune --steps 1 --out /dev/null

# --add-class: the base's two classes plus lion; the new row starts as cat's
"$K" train --in lion.rec --init $B --add-class lion=cat --steps 2 | "$K" show > add.jsonl
expect '[ "$(jq "select(.t == \"ckpt\") | .config.vocab" add.jsonl)" = 262 ]' "vocabulary 261 + lion"
expect '[ "$(jq -c "select(.t == \"ckpt\") | .tokenizer.classes" add.jsonl)" = "[\"cat\",\"dog\",\"lion\"]" ]' "ckpt tokenizer has lion"
# with LoRA the adapter carries the grown wte, and merge grows the base
"$K" train --in lion.rec --init $B --add-class lion --lora r=2 --steps 2 | "$K" ckpt --dir lion \
    | "$K" show > /dev/null
expect_status 0 "$K" ckpt merge $B lion/latest.safetensors -o lion.safetensors
expect '"$K" ckpt inspect lion.safetensors | grep -q "transformer.wte.weight .*\[262, 32\]"' "merged vocabulary 262"

# bad input: each a clear error
"$KILN_BIN/kiln-ckpt" merge frozen/latest.safetensors $A -o x.safetensors 2> hash.err; rc=$?
expect '[ $rc = 65 ] && grep -q "trained on base fnv1a64:.*but this base is" hash.err' "base hash mismatch ($(cat hash.err))"
"$KILN_BIN/kiln-train" --in base.rec --init $B --freeze blocks:0-5 --steps 1 --out /dev/null 2> fr.err; rc=$?
expect '[ $rc = 2 ] && grep -q "blocks:0-5: the model has blocks 0-1" fr.err' "--freeze a missing layer ($(cat fr.err))"
"$KILN_BIN/kiln-train" --in base.rec --init $B --freeze transformer.h.1.mpl --steps 1 --out /dev/null 2> fr2.err; rc=$?
expect '[ $rc = 2 ] && grep -q "names no tensor" fr2.err' "--freeze a misspelt module ($(cat fr2.err))"
"$KILN_BIN/kiln-train" --in base3.rec --init $B --finetune --steps 1 --out /dev/null 2> tok.err; rc=$?
expect '[ $rc = 65 ] && grep -q "not the checkpoint" tok.err' "--init tokenizer mismatch ($(cat tok.err))"
"$K" load text:"$BOOK" --limit 1 | "$K" tokenize --bytes | "$K" batch -B 2 -T 16 --pack --out nolabel.rec
"$KILN_BIN/kiln-train" --in nolabel.rec --init $B --steps 7 --out /dev/null 2> tok2.err; rc=$?
expect '[ $rc = 65 ] && grep -q "tokenizer" tok2.err' "--init (resume) tokenizer mismatch ($(cat tok2.err))"
"$KILN_BIN/kiln-train" --in base.rec --init $B --add-class dog --steps 1 --out /dev/null 2> add.err; rc=$?
expect '[ $rc = 65 ] && grep -q "already has class .dog." add.err' "--add-class of an existing name ($(cat add.err))"
"$KILN_BIN/kiln-train" --in base.rec --init $A --steps 9 --out /dev/null 2> ad.err; rc=$?
expect '[ $rc = 65 ] && grep -q "a LoRA adapter, not a model" ad.err' "--init an adapter file ($(cat ad.err))"
"$KILN_BIN/kiln-train" --in base.rec --lora r=0 --init $B --steps 1 --out /dev/null 2> lr.err; rc=$?
expect '[ $rc = 2 ]' "--lora r=0 is a usage error ($(cat lr.err))"
"$KILN_BIN/kiln-train" --in base.rec --freeze embeddings --steps 1 --out /dev/null 2> ni.err; rc=$?
expect '[ $rc = 2 ] && grep -q "needs --init" ni.err' "fine-tuning without --init"
finish
