# kiln reward: a reward model's score on every rollout (other records kept in order), the same
# in any batch size, over a pipe or ZeroMQ, after kiln rollout and before kiln judge reward; a Python script of a few lines in its place makes
# the same record shape; bad input: a reward model whose tokenizer is not the stream's, a
# checkpoint without a scalar head, a rollout without tokens (65).
. "$KILN_ROOT/tests/lib.sh"
fx="$KILN_ROOT/tests/fixtures/rlhf"
py=/usr/bin/python3
"$py" -c 'import msgpack' 2> /dev/null || skip "needs /usr/bin/python3 with msgpack"
book="$KILN_ROOT/examples/data/moby-dick.txt"
"$K" load text:"$book" --split chunk:500 --limit 40 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 4 -T 32 --pack | "$K" train --model tiny --ctx 32 --steps 2 --threads 2 \
    | "$K" ckpt --dir run > /dev/null
# A scalar-head checkpoint of that model: what kiln train --objective reward writes.
"$py" "$fx/scalar_head.py" run/latest.safetensors rm.safetensors
cat > in.jsonl << 'EOF2'
{"id":0,"k":0,"prompt":"The day","completion":" was sad and bad.","ended":true}
{"id":0,"k":1,"prompt":"The day","completion":" was a good, happy day!","ended":true}
{"id":1,"k":0,"prompt":"I","completion":" love the sea, and the sea loves me back: a long one"}
{"id":1,"k":1,"prompt":"","completion":"x"}
EOF2
"$py" "$fx/rollouts.py" r.rec < in.jsonl
"$K" reward --ckpt rm.safetensors --in r.rec --threads 2 > a.rec
"$K" reward --ckpt rm.safetensors --in r.rec --threads 2 -B 1 > b.rec
"$K" show --in a.rec | jq -s -c 'map([.reward, .judge])' > a.json
"$K" show --in b.rec | jq -s -c 'map(.reward)' > b.json
expect 'jq -e "length == 4 and all(.[1] == \"reward:rm.safetensors\") and (map(.[0]) | unique | length) == 4" a.json > /dev/null' \
    "a reward and the judge on every rollout ($(cat a.json))"
expect 'jq -e --slurpfile b b.json "[map(.[0]), \$b[0]] | transpose | all((.[0] - .[1]) | fabs < 1e-5)" a.json > /dev/null' \
    "-B 1 scores as -B 16 does"
"$K" show --all --in a.rec > a.jsonl
expect 'jq -s -e ".[0].reward_model == \"rm.safetensors\" and .[1].prompt == \"The day\" and .[1].logprobs.shape == [18]" a.jsonl > /dev/null' \
    "the rollouts' other fields kept"

# end to end: the policy's rollouts, scored by the reward model, paired by its scores
printf '{"prompt":"Call me"}\n{"prompt":"The sea"}\n' > p.jsonl
"$K" load jsonl:p.jsonl 2> /dev/null | "$K" rollout --ckpt run/latest.safetensors -K 3 --max-new 8 --threads 2 \
    | "$K" reward --ckpt rm.safetensors --threads 2 | "$K" judge reward 2> said.txt | "$K" show > pairs.json
expect 'jq -s -e "length == 2 and all(.by == \"judge:reward:rm.safetensors\" and .chosen_score > .rejected_score and .chosen_tokens.shape[0] <= 9)" pairs.json > /dev/null' \
    "rollout | reward | judge reward: a pair per prompt by the reward model ($(cat said.txt))"
"$K" judge reward --in r.rec > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "no .reward." err.txt' "judge reward without a reward stage: 65 (got $rc)"

# over ZeroMQ, as on another machine
sock="$PWD/s"
timeout 60 "$K" cat --in r.rec --out "@ipc://$sock.a" & s1=$!
timeout 60 "$K" reward --ckpt rm.safetensors --threads 2 --in "ipc://$sock.a" --out "@ipc://$sock.b" & s2=$!
timeout 60 "$K" cat --in "ipc://$sock.b" > z.rec; rc=$?
wait $s1; r1=$?; wait $s2; r2=$?
"$K" show --in z.rec | jq -s -c 'map([.reward, .judge])' > z.json
expect '[ "$r1$r2$rc" = 000 ] && cmp -s a.json z.json' "over ZeroMQ: the same rewards ($r1 $r2 $rc)"

# Any program that adds `reward` is a reward stage: five lines of Python in its place.
cat > reward.py << 'PY'
import sys, msgpack
for r in msgpack.Unpacker(sys.stdin.buffer, raw=False):
    if r["t"] == "rollout":
        r["reward"], r["judge"] = float(len(r["completion"])), "python"
    sys.stdout.buffer.write(msgpack.packb(r))
PY
"$py" reward.py < r.rec > p.rec
"$K" show --in p.rec | jq -s -c 'map(keys)' > p_keys.json
"$K" show --in a.rec | jq -s -c 'map(keys)' > a_keys.json
expect 'cmp -s p_keys.json a_keys.json' "the Python stage writes the records kiln reward writes"
"$K" show --in p.rec | jq -s -c 'map(.reward)' > p.json
expect '[ "$(cat p.json)" = "[17,23,52,1]" ]' "its rewards ($(cat p.json))"

# bad input
ROLLOUT_TOKENIZER='{"kind":"levels","vocab":17,"bos":4,"eos":5,"pad":6,"class_base":7,"classes":["0","1","2","3","4","5","6","7","8","9"],"levels":4,"height":8,"width":8,"channels":1}' \
    "$py" "$fx/rollouts.py" lv.rec < in.jsonl
"$K" reward --ckpt rm.safetensors --in lv.rec > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "rm.safetensors: the reward model.s tokenizer (bytes, 0 classes, vocab 259) is not the stream.s (levels 4, 10 classes, vocab 17)" err.txt' \
    "a reward model of another tokenizer: 65, naming both (got $rc: $(cat err.txt))"
"$K" reward --ckpt run/latest.safetensors --in r.rec > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "not a reward model" err.txt' "a language model: 65 (got $rc)"
"$py" "$fx/drop_field.py" r.rec notok.rec 2 completion_tokens
"$K" reward --ckpt rm.safetensors --in notok.rec > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "record 2 (rollout): no .completion_tokens." err.txt' "a rollout without tokens: 65 (got $rc: $(cat err.txt))"
expect_status 2 "$K" reward --in r.rec 2> /dev/null

# As a co-process (kiln ppo's pipe pair): 4 rollouts, fewer than -B 16, come back scored while
# the input is still open — the stage scores what it holds before it waits for more.
cat > coproc.py << 'EOF2'
import subprocess, sys, msgpack, select
data = open("r.rec", "rb").read()
recs = list(msgpack.Unpacker(__import__("io").BytesIO(data), raw=False))
p = subprocess.Popen([sys.argv[1], "reward", "--ckpt", "rm.safetensors", "--threads", "1"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
for r in recs[:-1]:
    p.stdin.write(msgpack.packb(r))
p.stdin.flush()
u, got = msgpack.Unpacker(raw=False), []
while len(got) < len(recs) - 1:
    if not select.select([p.stdout], [], [], 10)[0]:
        sys.exit("no answer in 10 s with the input open: got %d records" % len(got))
    u.feed(p.stdout.read1(65536))
    got += list(u)
p.stdin.close(); p.wait()
print(sum(1 for r in got if "reward" in r))
EOF2
expect '[ "$("$py" coproc.py "$K" 2> /dev/null)" = 4 ]' \
    "a partial batch is scored while the input stays open (a pipe pair)"
finish
