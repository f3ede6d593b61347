# Ctrl-C keeps the run: SIGINT to the whole process group of pipelines/pretrain.sh, as a
# terminal sends it.  train finishes its step and sends a final ckpt; eval, plot, ckpt and
# show read on to the interrupted eos, so the checkpoint of the last step is saved, the log
# ends with eos interrupted, and --resume continues exactly as a straight run (README.md,
# "Exit codes, signals and closed pipes").
. "$KILN_ROOT/tests/lib.sh"
steps=100 every=50 # no checkpoint between the start and the Ctrl-C but the final one
size=128 # steps slow enough (about 60 ms) for the signal to land well before the end
. "$KILN_ROOT/tests/flow/pretrain_run.sh.inc"

expect_status 0 run --out a 2> a.err
losses a/log.rec > a.txt

# The same run in its own process group; SIGINT to the group between two checkpoints.  On a
# busy machine the run may end before the signal lands: then it is tried again (3 times).
for attempt in 1 2 3; do
    rm -rf b b.status
    stop_at=$(( 3 + RANDOM % 20 ))
    setsid bash -c "$(declare -f run); steps=$steps every=$every size=$size; run --out b; echo \$? > b.status" \
        > /dev/null 2> b.err &
    pid=$!
    for _ in $(seq 1500); do
        [ "$(trained b/log.rec)" -ge "$stop_at" ] && break
        sleep 0.02
    done
    kill -INT -- -"$pid" 2> /dev/null
    timeout 60 tail --pid="$pid" -f /dev/null
    expect '! kill -0 $pid 2> /dev/null' "the pipeline ended within 60 s of Ctrl-C"
    kill -9 -- -"$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    [ "$(cat b.status 2> /dev/null)" != 0 ] && break
done
expect '[ "$(cat b.status 2> /dev/null)" = 130 ]' "pretrain.sh exits 130 (got $(cat b.status 2> /dev/null))"
last=$(trained b/log.rec)
at=$(kiln ckpt inspect b/ckpt/latest.safetensors 2> /dev/null | awk '$1 == "step" { print $2 }')
expect '[ -n "$at" ] && [ "$at" = "$last" ] && [ $((at % every)) != 0 ]' \
    "the final checkpoint is the last step trained (ckpt ${at:-none}, trained $last, stopped near $stop_at)"
kiln show --all --in b/log.rec --out /dev/null > b.jsonl 2> /dev/null
expect 'tail -1 b.jsonl | grep -q "\"status\":\"interrupted\""' "the log ends with eos interrupted ($(tail -1 b.jsonl | cut -c1-80))"

expect_status 0 run --resume b 2> resume.err
losses b/log.rec | awk -v at="${at:-0}" '$2 > at' > b.txt # (log.rec: the whole history)
awk -v at="${at:-0}" '$2 > at' a.txt > a-tail.txt
expect '[ -s b.txt ] && cmp -s a-tail.txt b.txt' \
    "losses after step $at equal the straight run's: $(diff a-tail.txt b.txt | head -3 | tr '\n' ' ')"
kiln ckpt inspect a/ckpt/latest.safetensors | grep -v '^file' > a.ck
kiln ckpt inspect b/ckpt/latest.safetensors | grep -v '^file' > b.ck
expect 'grep -q "^step *$steps$" b.ck && cmp -s a.ck b.ck' \
    "final checkpoints identical: $(diff a.ck b.ck | head -4 | tr '\n' ' ')"
finish
