# kiln ppo: a reward that favours 'e' (tests/ppo_reward.py, a Python reward stage on the pipe
# pair) raises the mean score over 12 iterations; metrics under TRL's names; ckpt records kiln
# ckpt writes and kiln sample runs; kiln judge --score afinn as the reward stage with --lora; --resume from an --every ckpt repeats the run's later
# iterations exactly; a reward stage that dies (74) or answers NaN (65) leaves the last good
# ckpt and names the program; SIGTERM ends with a final ckpt (143); no reward stage given is a usage error.  (The arithmetic against
# PyTorch: tests/unit/test_ppo.c.)
. "$KILN_ROOT/tests/lib.sh"
book="$KILN_ROOT/examples/data/moby-dick.txt"
"$K" load text:"$book" --split chunk:500 --limit 100 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 4 -T 64 --pack | "$K" train --model tiny --ctx 64 --steps 30 --threads 2 \
    | "$K" ckpt --dir base > /dev/null
printf '{"prompt":"Call me"}\n{"prompt":"The whale"}\n{"prompt":"It was"}\n{"prompt":"She"}\n' > p.jsonl
"$K" load jsonl:p.jsonl > p.rec 2> /dev/null
reward="/usr/bin/python3 $KILN_ROOT/tests/ppo_reward.py"
ppo() { "$K" ppo --init base/latest.safetensors --in p.rec --prompts 4 -K 4 --max-new 16 \
    --threads 2 --minibatch 8 --epochs 2 --lr 1e-2 --kl-coef 0.01 --missing-eos-penalty 0 "$@"; }

ppo --reward "$reward" --iterations 12 2> err.txt | "$K" ckpt --dir run > log.rec
expect '[ "${PIPESTATUS[0]}" = 0 ]' "ppo runs 12 iterations ($(tail -2 err.txt))"
"$K" show --all --in log.rec > log.json 2> /dev/null
scores=$(jq -s -c 'map(select(.t == "metrics") | ."objective/scores")' log.json)
expect 'jq -s -e "map(select(.t == \"metrics\") | .\"objective/scores\") | length == 12 and
    ((.[9:] | add / 3) > 3 * .[0]) and ((.[9:] | add / 3) > 0.1)" log.json > /dev/null' \
    "the mean share of e rises: $scores"
names='"objective/kl","objective/entropy","objective/non_score_reward","objective/rlhf_reward",
"objective/scores","policy/approxkl_avg","policy/clipfrac_avg","loss/policy_avg","loss/value_avg",
"val/clipfrac_avg","val/ratio","time/generate_s","time/reward_s","time/update_s"'
expect "jq -s -e 'map(select(.t == \"metrics\")) | all(has($names))' log.json > /dev/null" \
    "every metrics record has TRL's names and the time breakdown"
expect 'jq -s -e "map(select(.t == \"metrics\")) | .[0].\"objective/kl\" == 0" log.json > /dev/null' \
    "the first iteration's policy is the reference: KL 0"
expect '[ -f run/latest.safetensors ]' "kiln ckpt writes the final ckpt"
"$K" sample --ckpt run/latest.safetensors --prompt "The " -n 20 --threads 2 > s.txt 2> err.txt
expect '[ $? = 0 ] && [ -s s.txt ]' "kiln sample runs the PPO policy ($(cat err.txt))"

# --ptx: a pretraining batch joins every optimizer step, reported as ptx_loss
"$K" load text:"$book" --split chunk:63 --limit 64 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 4 -T 64 --pack > ptx.rec
ppo --reward "$reward" --iterations 2 --ptx ptx.rec --ptx-coef 1 2> err.txt | "$K" show > ptx.json
expect 'jq -s -e "map(select(.t == \"metrics\") | .ptx_loss) | length == 2 and all(. > 0)" ptx.json > /dev/null' "--ptx: every metrics record has ptx_loss ($(tail -1 err.txt))"

# kiln judge --score afinn as the reward stage (a tiny lexicon); LoRA: the reference is the
# base with the adapters off (KL 0 at first), the ckpt an adapter with the value head
printf 'the\t2\nand\t1\nwhale\t3\nsea\t-2\n' > lex.txt
ppo --reward "$K judge --score afinn --lexicon lex.txt" --iterations 2 --lora r=4 2> err.txt > aj.rec
expect '[ $? = 0 ]' "kiln judge --score afinn as the reward stage, with --lora ($(tail -1 err.txt))"
"$K" show --all --in aj.rec > aj.json 2> /dev/null
expect 'jq -s -e "map(select(.t == \"metrics\")) | length == 2 and .[0].\"objective/kl\" == 0" aj.json > /dev/null' \
    "LoRA: the first iteration's KL to the base with adapters off is 0"
expect 'jq -s -e "map(select(.t == \"ckpt\")) | .[0].adapter.kind == \"lora\" and (.[0].tensors | has(\"score.weight\"))" aj.json > /dev/null' \
    "LoRA: an adapter ckpt that carries the value head"
"$K" ppo --init base/latest.safetensors --in p.rec --prompts 2 -K 2 --max-new 8 --threads 2 --lora r=4 \
    --reward "$K judge --score afinn --lexicon lex.txt" --iterations 1 2> /dev/null | "$K" ckpt --dir lr > /dev/null
"$K" ckpt merge base/latest.safetensors lr/latest.safetensors -o merged.safetensors > /dev/null 2> err.txt
expect '[ $? = 0 ] && "$K" sample --ckpt merged.safetensors -n 8 --threads 2 > /dev/null' \
    "LoRA: kiln ckpt merge folds the adapters (and value head) into the base ($(cat err.txt))"

# exact resume: 4 iterations with a ckpt after 2; resumed from it, iterations 3 and 4 again
ppo --reward "$reward" --iterations 4 --every 2 2> /dev/null | "$K" ckpt --dir r1 > r1.rec
mid=$(ls r1/step-*[0-9].safetensors | head -1)
ppo --reward "$reward" --iterations 4 --resume "$mid" 2> err.txt | "$K" ckpt --dir r2 > r2.rec
strip='map(select(.t == "metrics") | del(.seq, .["time/generate_s","time/forward_s","time/reward_s","time/update_s"]))'
"$K" show --all --in r1.rec 2> /dev/null | jq -s -c "$strip | .[2:]" > m1.json
"$K" show --all --in r2.rec 2> /dev/null | jq -s -c "$strip" > m2.json
expect '[ -s m1.json ] && cmp -s m1.json m2.json' "--resume repeats iterations 3 and 4 exactly ($(cat err.txt))"

# a reward stage that dies mid-run: the last good ckpt, the program named, 74
DIE_AFTER=40 ppo --reward "$reward" --iterations 10 --every 100 > die.rec 2> err.txt
rc=$?
"$K" show --all --in die.rec > die.json 2> /dev/null
expect '[ $rc = 74 ] && grep -q "reward stage .*ppo_reward.py.* (exited with status 3)" err.txt' \
    "a dying reward stage: 74, named ($rc: $(tail -3 err.txt))"
expect 'jq -s -e "map(select(.t == \"ckpt\")) | length == 1 and .[0].step == 8 and .[0].cursor == 2" die.json > /dev/null' \
    "... after the ckpt record of the last good iteration (2 of 10)"
expect 'jq -s -e ".[-1].t == \"eos\" and .[-1].status == \"error\"" die.json > /dev/null' "... and eos error"
NAN_AFTER=20 ppo --reward "$reward" --iterations 10 > nan.rec 2> err.txt
rc=$?
"$K" show --all --in nan.rec > nan.json 2> /dev/null
expect '[ $rc = 65 ] && grep -q "gave reward nan to record 21" err.txt' \
    "a NaN reward: 65, the record named ($rc: $(tail -1 err.txt))"
expect 'jq -s -e "map(select(.t == \"ckpt\")) | length == 1 and .[0].step == 4" nan.json > /dev/null' \
    "... after the last good ckpt"
# SIGTERM (SIGINT alike; a background job of a script ignores SIGINT): the iteration in
# progress dropped, a final ckpt, eos interrupted, 143
"$K" ppo --init base/latest.safetensors --in p.rec --prompts 4 -K 4 --max-new 16 --threads 2 \
    --reward "$reward" --iterations 1000 > int.rec 2> int.txt & # (not through ppo(): $! is kiln's)
pid=$!
for _ in $(seq 100); do [ -s int.rec ] && break; sleep 0.1; done
sleep 1
kill -TERM $pid
wait $pid
rc=$?
"$K" show --all --in int.rec > int.json 2> /dev/null
expect '[ $rc = 143 ] && jq -s -e "(map(select(.t == \"ckpt\")) | length == 1) and .[-1].status == \"interrupted\"" int.json > /dev/null' \
    "SIGTERM: a final ckpt record, eos interrupted, 143 (got $rc: $(jq -s -c "map([.t, .status])" int.json))"
ppo --reward "exit 0" --iterations 2 > gone.rec 2> err.txt
rc=$?
expect '[ $rc = 74 ] && grep -q "reward stage .exit 0." err.txt' "a reward stage that exits at once: 74 ($rc)"
expect_status 2 ppo --iterations 2
finish
