# kiln train: metrics and ckpt records, pass-through, losses that fall, --accum, --every,
# a checkpoint that round-trips through kiln ckpt and --init, SIGTERM (final ckpt, eos
# interrupted, exit 143), and a NaN that stops the run naming the step (exit 65).
. "$KILN_ROOT/tests/lib.sh"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$BOOK" ] || skip "no examples/data/moby-dick.txt"
command -v jq >/dev/null || skip "no jq"

expect '"$K" train --help | head -1 | grep -q "^kiln train — "' "--help first line"
expect_status 2 "$K" train --model huge --in /dev/null
expect_status 2 "$K" train --accum 0 --in /dev/null

head -c 60000 "$BOOK" > book.txt
"$K" load text:book.txt | "$K" tokenize --bytes | "$K" batch -B 4 -T 32 --pack --out batches.rec
# one foreign record in the middle must pass through
"$K" show --all --full < batches.rec > b.jsonl
{ head -3 b.jsonl; echo '{"t":"note","text":"hello"}'; tail -n +4 b.jsonl; } | "$K" import --out mixed.rec

"$K" train --in mixed.rec --model tiny --steps 40 --lr 3e-3 --log-every 10 --every 20 \
    | "$K" show > out.jsonl
expect '[ "$(jq -c "select(.t == \"metrics\") | .step" out.jsonl | tr "\n" " ")" = "10 20 30 40 " ]' "metrics every 10 steps"
expect '[ "$(jq -c "select(.t == \"ckpt\") | .step" out.jsonl | tr "\n" " ")" = "20 40 " ]' "ckpt every 20 steps and none doubled at the end"
expect '[ "$(jq -r "select(.t == \"note\") | .text" out.jsonl)" = hello ]' "unknown records pass through"
first=$(jq "select(.t == \"metrics\") | .loss" out.jsonl | head -1)
last=$(jq "select(.t == \"metrics\") | .loss" out.jsonl | tail -1)
expect 'awk -v a="$first" -v b="$last" "BEGIN{exit !(b < a - 0.5)}"' "loss falls ($first -> $last)"
ck=$(jq -c 'select(.t == "ckpt")' out.jsonl | tail -1)
expect '[ "$(jq -c .config <<<"$ck")" = "{\"n_layer\":2,\"n_embd\":64,\"n_head\":4,\"n_ctx\":256,\"vocab\":259,\"head\":\"lm\"}" ]' "ckpt config"
expect '[ "$(jq ".tensors | length" <<<"$ck")" = 28 ] && [ "$(jq ".optim.m | length" <<<"$ck")" = 28 ]' "ckpt has 28 tensors and their moments"
expect '[ "$(jq -c ".tensors[\"transformer.h.1.mlp.c_fc.weight\"].shape" <<<"$ck")" = "[64,256]" ]' "Conv1D layout [in, out]"
expect '[ "$(jq .tokenizer.vocab <<<"$ck")" = 259 ] && [ "$(jq .optim.step <<<"$ck")" = 40 ]' "tokenizer and optimizer step"
expect '[ "$(jq .cursor <<<"$ck")" -ge 1 ]' "data cursor"

# --accum 2: each step takes two batches, so 10 steps use 20 batches
"$K" train --in batches.rec --model tiny --steps 10 --accum 2 --log-every 10 | "$K" show > acc.jsonl
expect '[ "$(jq -c "select(.t == \"metrics\") | .step" acc.jsonl)" = 10 ]' "--accum steps"

# the checkpoint through kiln ckpt and back with --init: training resumes at its step
"$K" train --in batches.rec --model tiny --steps 5 --log-every 5 | "$K" ckpt --dir run | "$K" show > /dev/null
expect '[ -f run/step-000005.safetensors ]' "kiln ckpt wrote the model file"
"$K" train --in batches.rec --init run/step-000005.safetensors --steps 8 --log-every 1 | "$K" show > resume.jsonl
expect '[ "$(jq -c "select(.t == \"metrics\") | .step" resume.jsonl | head -1)" = 6 ]' "--init resumes at step 6"
expect '[ "$(jq -c "select(.t == \"ckpt\") | .config.n_embd" resume.jsonl)" = 64 ]' "--init takes the checkpoint's shape"

# a NaN weight: the run stops at once with a message naming the step, exit 65, eos error
/usr/bin/python3 - run/step-000005.safetensors run/nan.safetensors <<'PY' || skip "no python3"
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
start = 8 + n + json.loads(raw[8:8 + n])["transformer.ln_f.weight"]["data_offsets"][0]
raw[start:start + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(raw)
PY
"$KILN_BIN/kiln-train" --in batches.rec --init run/nan.safetensors --steps 8 --out nan.rec 2> nan.err
expect '[ $? = 65 ]' "NaN exits 65"
expect 'grep -q "step 6: the loss is not finite" nan.err' "the message names the step ($(cat nan.err))"
"$K" show --all < nan.rec > nan.jsonl 2> /dev/null
expect_status 74 "$K" show < nan.rec > /dev/null 2> /dev/null
expect 'tail -1 nan.jsonl | grep -q "\"status\":\"error\""' "eos error"

# SIGTERM: the step in progress finishes, a final ckpt goes out, eos interrupted, exit 143
"$K" load text:"$BOOK" | "$K" tokenize --bytes | "$K" batch -B 8 -T 64 --pack --out long.rec
"$KILN_BIN/kiln-train" --in long.rec --model tiny --log-every 1000 --out term.rec &
pid=$!
sleep 1.5
kill -TERM $pid
wait $pid
expect '[ $? = 143 ]' "SIGTERM exits 143"
"$K" show --all < term.rec > term.jsonl
expect '[ "$(tail -1 term.jsonl | jq -r .status)" = interrupted ]' "eos interrupted"
expect '[ "$(jq -r "select(.t == \"ckpt\") | .step" term.jsonl | head -1)" -gt 0 ]' "a final ckpt"
finish
