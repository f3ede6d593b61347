# A real learning test: 200 steps of the tiny model on the committed book (bytes, packed
# 8 x 64 batches) bring the loss from ln(259) = 5.56 to below 2.8 nats per byte (a model
# that knows only byte frequencies sits near 3.0).  About 2 s; under sanitizers fewer
# steps and a looser bound.
. "$KILN_ROOT/tests/lib.sh"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$BOOK" ] || skip "no examples/data/moby-dick.txt"
command -v jq >/dev/null || skip "no jq"
steps=200 bound=2.8
if [ -n "${KILN_SAN:-}" ]; then steps=100 bound=3.2; fi

"$K" load text:"$BOOK" | "$K" tokenize --bytes | "$K" batch -B 8 -T 64 --pack \
    | "$K" train --model tiny --steps $steps --lr 3e-3 --log-every 20 --seed 1 \
    | "$K" show > run.jsonl
jq -c 'select(.t == "metrics") | [.step, .loss]' run.jsonl
first=$(jq 'select(.t == "metrics") | .loss' run.jsonl | head -1)
last=$(jq 'select(.t == "metrics") | .loss' run.jsonl | tail -1)
expect '[ "$(jq -c "select(.t == \"metrics\") | .step" run.jsonl | tail -1)" = $steps ]' "ran $steps steps"
expect 'awk -v l="$last" -v b=$bound "BEGIN{exit !(l < b)}"' "final loss $last < $bound"
expect 'awk -v a="$first" -v l="$last" "BEGIN{exit !(l < a - 1)}"' "loss fell from $first"
expect '[ "$(jq -c "select(.t == \"ckpt\") | .step" run.jsonl)" = $steps ]' "final ckpt"
finish
