# Preference training: kiln logps adds the reference's completion log-probabilities (pairs from
# TRL JSON lines and rollouts), kiln train --objective reward trains a scalar head on an LM base
# (metrics, a "scalar" checkpoint, held-out pairwise accuracy in kiln eval), --objective dpo
# moves the policy towards the chosen completions (TRL's metrics, with and without --lora),
# and with --ptx pretraining batches keeps the text's loss lower than without.
# Bad input: a pref record without chosen/rejected (65 naming the record), DPO without
# reference logps, a base whose tokenizer is not the stream's (65).
. "$KILN_ROOT/tests/lib.sh"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$BOOK" ] || skip "no examples/data/moby-dick.txt"
command -v jq >/dev/null || skip "no jq"
export KILN_THREADS=1

head -c 20000 "$BOOK" > book.txt
"$K" load text:book.txt --split lines | "$K" tokenize --bytes | "$K" batch -B 4 -T 32 --pack --out base.rec
"$K" train --in base.rec --layers 2 --dim 32 --heads 2 --ctx 48 --steps 6 | "$K" ckpt --dir base > /dev/null
B=base/latest.safetensors
# cheerful chosen, gloomy rejected: TRL's preference lines
good=(happy glad joyful bright merry kind warm) bad=(sad grim bleak cold dark cruel gloomy)
for i in $(seq 0 27); do
    printf '{"prompt":"The sea was ","chosen":"%s and %s.","rejected":"%s and %s."}\n' \
        "${good[$((i % 7))]}" "${good[$(((i + 3) % 7))]}" "${bad[$((i % 7))]}" "${bad[$(((i + 2) % 7))]}"
done > prefs.jsonl
head -n 20 prefs.jsonl > train.jsonl
tail -n 8 prefs.jsonl > held.jsonl

# ---- kiln logps -----------------------------------------------------------------------------
"$K" load jsonl:train.jsonl | "$K" logps --ckpt $B > ref.rec
"$K" show < ref.rec > ref.jsonl
expect '[ "$(jq -s "map(select(.ref_chosen_logps < 0 and .ref_rejected_logps < 0)) | length" ref.jsonl)" = 20 ]' "logps adds ref_chosen_logps/ref_rejected_logps to every pair"
expect '[ "$(jq -r -s ".[0].t" ref.jsonl)" = sample ]' "the record keeps its type"
printf '{"prompt":"The sea was ","chosen":"happy and merry.","rejected":"sad and bleak."}\n' > one.jsonl
a=$("$K" load jsonl:one.jsonl | "$K" logps --ckpt $B | "$K" show | jq .ref_chosen_logps)
expect 'awk -v a="$a" "BEGIN{exit !(a < -10)}"' "a summed log-probability of a 17-token completion ($a)"
# rollouts: ref_logprobs under the policy itself equal the sampling logprobs
if "$K" rollout --help > /dev/null 2>&1; then
    "$K" load jsonl:held.jsonl | "$K" rollout --ckpt $B -K 2 --max-new 8 | "$K" logps --ckpt $B \
        | "$K" show > roll.jsonl
    expect '[ "$(jq -s "map(select(.t == \"rollout\" and ((.logprobs.mean - .ref_logprobs.mean) | fabs) < 1e-4)) | length" roll.jsonl)" = 16 ]' "rollout ref_logprobs equal the policy's own logprobs"
fi

# ---- the reward model ----------------------------------------------------------------------------
"$K" load jsonl:train.jsonl --epochs 6 | "$K" train --objective reward --init $B --steps 30 \
    --accum 4 --lr 1e-2 --log-every 10 | "$K" ckpt --dir rm | "$K" show > rm.jsonl
expect '[ "$(jq -s -c "map(select(.t == \"metrics\")) | .[0] | [.objective, (.accuracy != null), (.margin != null), (.min_reward != null), (.mean_reward != null), (.max_reward != null)]" rm.jsonl)" = "[\"reward\",true,true,true,true,true]" ]' "reward metrics: accuracy, margin, min/mean/max reward"
first=$(jq -s 'map(select(.t == "metrics")) | .[0].loss' rm.jsonl)
last=$(jq -s 'map(select(.t == "metrics")) | last.loss' rm.jsonl)
expect 'awk -v a="$first" -v b="$last" "BEGIN{exit !(b < a)}"' "the Bradley-Terry loss falls ($first -> $last)"
expect '"$K" ckpt inspect rm/latest.safetensors | grep -q "\"head\":\"scalar\""' "the reward checkpoint has the scalar head"
expect '"$K" ckpt inspect rm/latest.safetensors | grep -q "score.weight"' "and score.weight"
"$K" load jsonl:held.jsonl > held.rec
acc=$("$K" eval --ckpt rm/latest.safetensors --data held.rec 2> /dev/null | "$K" show | jq -s 'map(select(.accuracy != null)) | .[0].accuracy')
expect 'awk -v a="$acc" "BEGIN{exit !(a >= 0.75)}"' "held-out pairwise accuracy ($acc)"
expect '"$K" train --help | grep -q center-rewards' "--center-rewards documented"
"$K" load jsonl:train.jsonl | "$K" train --objective reward --init $B --center-rewards 0.01 --steps 4 \
    --log-every 4 | "$K" show > center.jsonl
expect '[ "$(jq -s "map(select(.t == \"metrics\")) | length" center.jsonl)" = 1 ]' "--center-rewards trains"

# ---- DPO -------------------------------------------------------------------------------------
cat ref.rec ref.rec | "$K" train --objective dpo --init $B --beta 0.1 --steps 20 --lr 3e-3 \
    --log-every 10 | "$K" ckpt --dir dpo | "$K" show > dpo.jsonl
m=$(jq -s -c 'map(select(.t == "metrics")) | last' dpo.jsonl)
expect '[ "$(jq -c "[.objective, (.\"rewards/chosen\" != null), (.\"rewards/rejected\" != null), (.\"logps/chosen\" != null), (.\"logps/rejected\" != null)]" <<< "$m")" = "[\"dpo\",true,true,true,true]" ]' "DPO metrics under TRL's names"
expect 'jq -e ".\"rewards/accuracies\" >= 0.9 and .\"rewards/margins\" > 0" <<< "$m" > /dev/null' "the policy prefers the chosen completions ($(jq -c '[."rewards/accuracies", ."rewards/margins"]' <<< "$m"))"
a2=$("$K" load jsonl:one.jsonl | "$K" logps --ckpt dpo/latest.safetensors | "$K" show | jq '.ref_chosen_logps - .ref_rejected_logps')
a1=$("$K" load jsonl:one.jsonl | "$K" logps --ckpt $B | "$K" show | jq '.ref_chosen_logps - .ref_rejected_logps')
expect 'awk -v a="$a1" -v b="$a2" "BEGIN{exit !(b > a)}"' "DPO raises log p(chosen) - log p(rejected) on a held pair ($a1 -> $a2)"
"$K" train --in ref.rec --objective dpo --init $B --lora r=4,alpha=8 --loss-type ipo --steps 5 \
    --log-every 5 | "$K" show > lora.jsonl
expect 'jq -s -e "map(select(.t == \"ckpt\" and .adapter.kind == \"lora\")) | length == 1" lora.jsonl > /dev/null' "DPO with --lora writes an adapter"

# --ptx: a pretraining batch joins every DPO step (InstructGPT's ptx), the model keeps its text
cat ref.rec ref.rec | "$K" train --objective dpo --init $B --beta 0.1 --steps 20 --lr 3e-3 \
    --log-every 10 --ptx base.rec --ptx-coef 2 | "$K" ckpt --dir ptx | "$K" show > ptx.jsonl
m=$(jq -s -c 'map(select(.t == "metrics")) | last' ptx.jsonl)
expect 'jq -e ".ptx_loss > 0 and .\"rewards/margins\" > 0" <<< "$m" > /dev/null' "DPO with --ptx reports ptx_loss and still prefers the chosen completions ($(jq -c '[.ptx_loss, ."rewards/accuracies"]' <<< "$m"))"
lm() { "$K" eval --ckpt "$1" --data base.rec 2> /dev/null | "$K" show | jq -s 'map(select(.t == "metrics")) | .[0].loss'; }
l0=$(lm $B) l1=$(lm dpo/latest.safetensors) l2=$(lm ptx/latest.safetensors)
expect 'awk -v a="$l1" -v b="$l2" "BEGIN{exit !(b < a)}"' "the text's loss: base $l0, DPO $l1, DPO with --ptx $l2 (lower)"
expect_status 2 "$K" train --in ref.rec --objective reward --init $B --ptx base.rec --ptx-coef 1 --out /dev/null 2> /dev/null
expect_status 2 "$K" train --in ref.rec --objective dpo --init $B --ptx base.rec --out /dev/null 2> /dev/null
expect_status 65 "$K" train --in ref.rec --objective dpo --init $B --ptx ref.rec --ptx-coef 1 --steps 1 --out /dev/null 2> err.txt
expect 'grep -q "no batch records" err.txt' "a --ptx file without batches is named ($(cat err.txt))"

# ---- bad input -------------------------------------------------------------------------------
printf '{"t":"pref","prompt":"The sea","chosen":"calm"}\n' > nochosen.jsonl
"$K" import nochosen.jsonl --out bad.rec
expect_status 65 "$K" train --in bad.rec --objective reward --init $B --steps 1 --out /dev/null 2> err.txt
expect 'grep -q "record 1.*chosen and rejected" err.txt' "a pref without rejected is named ($(cat err.txt))"
expect_status 65 "$K" logps --in bad.rec --ckpt $B --out /dev/null 2> err.txt
expect 'grep -q "record 1" err.txt' "kiln logps names it too"
expect_status 65 "$K" train --in held.rec --objective dpo --init $B --steps 1 --out /dev/null 2> err.txt
expect 'grep -q "ref_chosen_logps" err.txt' "DPO without reference logps says to run kiln logps"
expect_status 2 "$K" train --in held.rec --objective dpo --steps 1 --out /dev/null 2> /dev/null
expect_status 2 "$K" train --in held.rec --objective reward --init $B --lora r=4 --out /dev/null 2> /dev/null
# a base whose tokenizer is not the stream's: a pref stream tokenized for another model
printf 'cat\ndog\n' > two.txt
"$K" load text:book.txt --split lines | "$K" tokenize --bytes --classes two.txt \
    | "$K" batch -B 4 -T 32 --pack | "$K" train --layers 1 --dim 16 --heads 2 --ctx 48 --steps 2 \
    | "$K" ckpt --dir other > /dev/null
if "$K" rollout --help > /dev/null 2>&1; then
    "$K" load jsonl:held.jsonl | "$K" rollout --ckpt $B -K 2 --max-new 4 > roll.rec
    expect_status 65 "$K" train --in roll.rec --objective reward --init other/latest.safetensors --steps 1 --out /dev/null 2> err.txt
    expect 'grep -qi "tokenizer\|class" err.txt' "a reward model whose tokenizer is not the stream's is refused ($(cat err.txt))"
    expect_status 65 "$K" logps --in roll.rec --ckpt other/latest.safetensors --out /dev/null 2> err.txt
    expect 'grep -q "tokenizer" err.txt' "kiln logps refuses it too"
fi
finish
