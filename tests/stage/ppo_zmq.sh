# kiln ppo with its reward stage on ZeroMQ sockets (--reward URL --reward-in URL), as on
# another machine, here on localhost tcp: the same metrics, bit for bit, as with the same
# stage on a pipe pair, with batches of 32 rollouts (4 x the transport's credit window: a
# single chunk would leave both ends waiting on each other), whichever end starts first.  A
# reward stage that exits mid-answer or is killed with kill -9: the ckpt record of the last
# finished iteration, eos error, exit 74.  Usage: --reward URL without --reward-in (2).
. "$KILN_ROOT/tests/lib.sh"
book="$KILN_ROOT/examples/data/moby-dick.txt"
"$K" load text:"$book" --split chunk:500 --limit 100 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 4 -T 64 --pack | "$K" train --model tiny --ctx 64 --steps 30 --threads 2 \
    | "$K" ckpt --dir base > /dev/null
printf '{"prompt":"Call me"}\n{"prompt":"The whale"}\n{"prompt":"It was"}\n{"prompt":"She"}\n' > p.jsonl
"$K" load jsonl:p.jsonl > p.rec 2> /dev/null
args=(--init base/latest.safetensors --in p.rec --prompts 4 -K 8 --max-new 16 --threads 2
    --minibatch 16 --epochs 1 --lr 1e-2 --iterations 3)
port=$((20000 + RANDOM % 20000))
at() { echo "tcp://127.0.0.1:$1"; }
strip='map(select(.t == "metrics") | del(.seq, .["time/generate_s","time/forward_s","time/reward_s","time/update_s"]))'
judge=(judge --score length --target 8)

"$K" ppo "${args[@]}" --reward "$K ${judge[*]}" 2> pipe.err > pipe.rec
expect '[ $? = 0 ]' "over a pipe pair ($(tail -1 pipe.err))"
"$K" show --all --in pipe.rec 2> /dev/null | jq -s -c "$strip" > pipe.json

# kiln ppo binds both sockets; the reward stage connects, first or second
timeout 120 "$K" ppo "${args[@]}" --reward "@$(at $port)" --reward-in "@$(at $((port + 1)))" 2> z.err > z.rec &
ppo=$!
timeout 120 "$K" "${judge[@]}" --in "$(at $port)" --out ">$(at $((port + 1)))" 2> j.err
jrc=$?
wait $ppo
rc=$?
expect '[ $rc = 0 ] && [ $jrc = 0 ]' "over tcp: both end 0 (ppo $rc: $(tail -1 z.err); judge $jrc: $(tail -1 j.err))"
"$K" show --all --in z.rec 2> /dev/null | jq -s -c "$strip" > z.json
expect '[ "$(jq length z.json)" = 3 ] && cmp -s pipe.json z.json' "over tcp: the pipe pair's metrics, bit for bit"
expect 'grep -q "rollouts to @tcp" z.err' "kiln ppo says where the rollouts go"

port=$((port + 2))
timeout 120 "$K" "${judge[@]}" --in "$(at $port)" --out ">$(at $((port + 1)))" 2> j2.err &
judge_pid=$!
sleep 0.5
timeout 120 "$K" ppo "${args[@]}" --reward "@$(at $port)" --reward-in "@$(at $((port + 1)))" 2> z2.err > z2.rec
rc=$?
wait $judge_pid
"$K" show --all --in z2.rec 2> /dev/null | jq -s -c "$strip" > z2.json
expect '[ $rc = 0 ] && cmp -s pipe.json z2.json' "the reward stage up first: the same ($rc: $(tail -1 z2.err))"

# a reward stage (python between two kiln cat bridges) that exits after 40 answers: 2 of 3
# iterations done
port=$((port + 2))
timeout 120 "$K" ppo "${args[@]}" -K 4 --reward "@$(at $port)" --reward-in "@$(at $((port + 1)))" \
    --iterations 10 > die.rec 2> die.err &
ppo=$!
(timeout 120 "$K" cat --in "$(at $port)" | DIE_AFTER=40 /usr/bin/python3 "$KILN_ROOT/tests/ppo_reward.py" \
    | timeout 120 "$K" cat --out ">$(at $((port + 1)))") 2> bridge.err
wait $ppo
rc=$?
"$K" show --all --in die.rec > die.json 2> /dev/null
expect '[ $rc = 74 ] && grep -q "reward stage .@tcp" die.err' "a reward stage that exits: 74, named ($rc: $(tail -2 die.err))"
expect 'jq -s -e "(map(select(.t == \"ckpt\")) | length == 1 and .[0].cursor == 2) and .[-1].t == \"eos\" and .[-1].status == \"error\"" die.json > /dev/null' \
    "... the ckpt record of the last finished iteration (2), then eos error"

# kill -9 of the reward stage once an iteration is done
port=$((port + 2))
timeout 120 "$K" ppo "${args[@]}" --reward "@$(at $port)" --reward-in "@$(at $((port + 1)))" \
    --iterations 1000 > kill.rec 2> kill.err &
ppo=$!
"$K" "${judge[@]}" --in "$(at $port)" --out ">$(at $((port + 1)))" 2> /dev/null & # ($!: kiln's pid)
judge_pid=$!
for _ in $(seq 300); do grep -q "iteration" kill.rec 2> /dev/null && break; sleep 0.05; done
kill -KILL $judge_pid
wait $ppo
rc=$?
"$K" show --all --in kill.rec > kill.json 2> /dev/null
expect '[ $rc = 74 ]' "a reward stage killed with kill -9: 74 ($rc: $(tail -2 kill.err))"
expect 'jq -s -e "(map(select(.t == \"ckpt\")) | length == 1 and .[0].cursor >= 1) and .[-1].status == \"error\"" kill.json > /dev/null' \
    "... after the ckpt record of the last finished iteration, then eos error"

"$K" ppo "${args[@]}" --reward "@$(at $port)" > /dev/null 2> err.txt
expect '[ $? = 2 ] && grep -q "reward-in" err.txt' "--reward URL without --reward-in: 2"
"$K" ppo "${args[@]}" --reward "$K judge --score length" --reward-in "@$(at $port)" > /dev/null 2> err.txt
expect '[ $? = 2 ]' "--reward-in with a command: 2"
finish
