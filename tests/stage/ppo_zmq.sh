# kiln ppo with its reward stage on ZeroMQ sockets (--reward URL --reward-in URL), as on
# another machine, here on localhost tcp: the same metrics, bit for bit, as with the same
# stage on a pipe pair, with batches of 32 rollouts (4 x the transport's credit window: a
# single chunk would leave both ends waiting on each other), whichever end starts first.  A
# reward stage that exits mid-answer or is killed with kill -9: the ckpt record of the last
# finished iteration, eos error, exit 74.  Usage: --reward URL without --reward-in (2).
. "$KILN_ROOT/tests/stage/ppo_base.sh.inc"
args=(--init base/latest.safetensors --in p.rec --prompts 4 -K 8 --max-new 16 --threads 2
    --minibatch 16 --epochs 1 --lr 1e-2 --iterations 3)
port=$((20000 + RANDOM % 20000))
at() { echo "tcp://127.0.0.1:$1"; }
strip='map(select(.t == "metrics") | del(.seq, .["time/generate_s","time/forward_s","time/reward_s","time/update_s"]))'
judge=(judge --score length --target 8)

"$K" ppo "${args[@]}" --reward "$K ${judge[*]}" 2> pipe.err > pipe.rec
expect '[ $? = 0 ]' "over a pipe pair ($(tail -1 pipe.err))"
"$K" show --all --in pipe.rec 2> /dev/null | jq -s -c "$strip" > pipe.json

# kiln ppo in the background, bound on the next two ports: rollouts out, answers in
ppo_bg() { # NAME OPTIONS...   ($ppo: its pid)
    local name=$1
    shift
    port=$((port + 2))
    timeout 120 "$K" ppo "${args[@]}" --reward "@$(at $port)" --reward-in "@$(at $((port + 1)))" "$@" \
        > "$name.rec" 2> "$name.err" &
    ppo=$!
}
ended() { # NAME: wait for kiln ppo ($rc), its records as JSON lines in NAME.json
    wait $ppo
    rc=$?
    "$K" show --all --in "$1.rec" > "$1.json" 2> /dev/null
}
stage_urls() { rs=(--in "$(at $port)" --out ">$(at $((port + 1)))"); } # the reward stage's

# the reward stage connects to kiln ppo's two sockets, second or first
ppo_bg z
stage_urls
timeout 120 "$K" "${judge[@]}" "${rs[@]}" 2> j.err
jrc=$?
ended z
expect '[ $rc = 0 ] && [ $jrc = 0 ]' "over tcp: both end 0 (ppo $rc: $(tail -1 z.err); judge $jrc: $(tail -1 j.err))"
expect '[ "$(jq -s -c "$strip" z.json | tee z.m | jq length)" = 3 ] && cmp -s pipe.json z.m' \
    "over tcp: the pipe pair's metrics, bit for bit"
expect 'grep -q "rollouts to @tcp" z.err' "kiln ppo says where the rollouts go"
timeout 120 "$K" "${judge[@]}" --in "$(at $((port + 2)))" --out ">$(at $((port + 3)))" 2> /dev/null &
judge_pid=$!
sleep 0.5
ppo_bg z2
ended z2
wait $judge_pid
expect '[ $rc = 0 ] && jq -s -c "$strip" z2.json | cmp -s pipe.json -' "the reward stage up first: the same ($rc: $(tail -1 z2.err))"

# a reward stage (python between two kiln cat bridges) that exits after 40 answers: 2 of 10
# iterations done
ppo_bg die -K 4 --iterations 10
(timeout 120 "$K" cat --in "$(at $port)" | DIE_AFTER=40 /usr/bin/python3 "$KILN_ROOT/tests/ppo_reward.py" \
    | timeout 120 "$K" cat --out ">$(at $((port + 1)))") 2> bridge.err
ended die
expect '[ $rc = 74 ] && grep -q "reward stage .@tcp" die.err' "a reward stage that exits: 74, named ($rc: $(tail -2 die.err))"
expect 'jq -s -e "(map(select(.t == \"ckpt\")) | length == 1 and .[0].cursor == 2) and .[-1].t == \"eos\" and .[-1].status == \"error\"" die.json > /dev/null' \
    "... the ckpt record of the last finished iteration (2), then eos error"

# kill -9 of the reward stage once an iteration is done
ppo_bg kill --iterations 1000
stage_urls
"$K" "${judge[@]}" "${rs[@]}" 2> /dev/null & # ($!: kiln's pid)
judge_pid=$!
for _ in $(seq 300); do grep -q "iteration" kill.rec 2> /dev/null && break; sleep 0.05; done
kill -KILL $judge_pid
ended kill
expect '[ $rc = 74 ]' "a reward stage killed with kill -9: 74 ($rc: $(tail -2 kill.err))"
expect 'jq -s -e "(map(select(.t == \"ckpt\")) | length == 1 and .[0].cursor >= 1) and .[-1].status == \"error\"" kill.json > /dev/null' \
    "... after the ckpt record of the last finished iteration, then eos error"

"$K" ppo "${args[@]}" --reward "@$(at $port)" > /dev/null 2> err.txt
expect '[ $? = 2 ] && grep -q "reward-in" err.txt' "--reward URL without --reward-in: 2"
"$K" ppo "${args[@]}" --reward "$K judge --score length" --reward-in "@$(at $port)" > /dev/null 2> err.txt
expect '[ $? = 2 ]' "--reward-in with a command: 2"
finish
