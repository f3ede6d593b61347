# Fault campaign: pipelines/pretrain.sh with one random stage SIGKILLed at a random step,
# resumed with --resume, three times over; the final checkpoint and the losses after the
# last resume equal an uninterrupted run's, bit for bit (README.md, "Exit codes, signals").
. "$KILN_ROOT/tests/lib.sh"
steps=150 every=5 rounds=3
size=96 # steps slow enough for a kill to land before the end on a busy machine
. "$KILN_ROOT/tests/flow/pretrain_run.sh.inc"
latest_step() { kiln ckpt inspect b/ckpt/latest.safetensors 2> /dev/null | awk '$1 == "step" { print $2 }'; }

expect_status 0 run --out a 2> a.err
losses a/log.rec > a.txt

stages=(kiln-load kiln-tokenize kiln-batch kiln-train kiln-eval kiln-plot kiln-ckpt kiln-show)
log=b/log.rec at=0 killed="" landed=0 round=0
while [ $round -lt $rounds ] && [ "$at" -lt $steps ]; do
    round=$((round + 1))
    stage=${stages[RANDOM % ${#stages[@]}]}
    # The first victim is one whose death always ends the run: an upstream stage may already
    # have written into the pipes all the data the run needs.
    [ $round = 1 ] && stage=${stages[3 + RANDOM % 4]}
    kill_at=$(( at + every + 2 + RANDOM % 20 ))
    args=(--out b); [ $round -gt 1 ] && args=(--resume b)
    setsid bash -c "$(declare -f run); steps=$steps every=$every size=$size; run ${args[*]}" \
        > /dev/null 2>> b.err &
    pid=$!
    for _ in $(seq 1200); do
        [ "$(trained "$log")" -ge "$kill_at" ] && break
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.02
    done
    victim=$(pgrep -s "$pid" -x "$stage" | head -1)
    [ -n "$victim" ] && kill -9 "$victim" && killed+="$stage@$(trained "$log") "
    timeout 60 tail --pid="$pid" -f /dev/null
    kill -9 -- -"$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    new_at=$(latest_step)
    expect '[ -n "$new_at" ]' "round $round: a checkpoint survives killing $stage ($(ls -A b/ckpt | tr '\n' ' '))"
    [ -z "$new_at" ] && break
    [ "$new_at" -lt $steps ] && landed=$((landed + 1))
    [ "$new_at" -ge $steps ] && break # the kill came after the end: this run is the last
    at=$new_at # (a resumed run's log.rec starts with the run so far: pretrain.sh --resume)
done
expect '[ $landed -ge 1 ]' "at least one kill stopped the run before its end ($killed)"
if [ "${new_at:-0}" -lt $steps ]; then
    expect_status 0 run --resume b 2> resume.err
    from=$at
else
    from=$at
fi
expect '[ -z "$(ls -A b/ckpt | grep "^\.")" ]' "no temp file left ($(ls -A b/ckpt | tr '\n' ' '))"
losses "$log" | awk -v at="$from" '$2 > at' > b.txt
awk -v at="$from" '$2 > at' a.txt > a-tail.txt
expect '[ -s b.txt ] && cmp -s a-tail.txt b.txt' \
    "killed $killed- losses after step $from equal the straight run's: $(diff a-tail.txt b.txt | head -3 | tr '\n' ' ')"
kiln ckpt inspect a/ckpt/latest.safetensors | grep -v '^file' > a.ck
kiln ckpt inspect b/ckpt/latest.safetensors | grep -v '^file' > b.ck
expect 'grep -q "^step *$steps$" b.ck && cmp -s a.ck b.ck' \
    "killed $killed- final checkpoints identical: $(diff a.ck b.ck | head -4 | tr '\n' ' ')"
finish
