# kiln ppo's exact resume with --lora and with the adaptive KL controller (--target-kl): a run
# stopped by SIGTERM or killed with kill -9 after a few iterations, then resumed from its
# last ckpt, ends on the very checkpoint (model or adapter file, and optimizer file, byte for
# byte) of a run that never stopped, with the same kl_coef in every later metrics record (the
# controller's state travels in the ckpt's `state`).  A checkpoint of another shape is refused.
. "$KILN_ROOT/tests/stage/ppo_base.sh.inc"
args=(--init base/latest.safetensors --in p.rec --prompts 4 -K 4 --max-new 16 --threads 2
    --minibatch 8 --epochs 2 --lr 1e-2 --kl-coef 0.05 --target-kl 1 --kl-horizon 50
    --missing-eos-penalty 0 --reward "$reward" --iterations 4)
ppo() { "$K" ppo "${args[@]}" "$@"; }

# SIGNAL: TERM or KILL.  A run with a ckpt every iteration, stopped once it has written one,
# then resumed from the latest ckpt kiln ckpt has.  Its reward stage answers each rollout
# 0.05 s late (DELAY, tests/ppo_reward.py: the rewards are the same), so an iteration takes
# 0.8 s or more and the signal comes mid-run however fast the machine.
stopped_and_resumed() { # NAME SIGNAL OPTIONS...
    local name=$1 sig=$2
    shift 2
    rm -f "$name.fifo" && mkfifo "$name.fifo"
    "$K" ckpt --dir "$name-a" < "$name.fifo" > "$name-a.rec" &
    local ck=$!
    DELAY=0.05 "$K" ppo "${args[@]}" "$@" --every 1 > "$name.fifo" 2> "$name-a.err" & # ($!: kiln's pid)
    local pid=$!
    for _ in $(seq 300); do
        [ "$(ls "$name-a"/step-*[0-9].safetensors 2> /dev/null | wc -l)" -ge 1 ] && break
        sleep 0.02
    done
    kill -"$sig" $pid 2> /dev/null
    wait $pid
    wait $ck
    ppo "$@" --resume "$name-a/latest.safetensors" 2> "$name-b.err" | "$K" ckpt --dir "$name-b" > "$name-b.rec"
}
same_ckpt() { # DIR-A DIR-B: the final checkpoint and its optimizer file, byte for byte
    local a b
    a=$(readlink -f "$1/latest.safetensors") b=$(readlink -f "$2/latest.safetensors")
    [ -n "$a" ] && [ "$(basename "$a")" = "$(basename "$b")" ] && cmp -s "$a" "$b" \
        && cmp -s "${a%.safetensors}.optim.safetensors" "${b%.safetensors}.optim.safetensors"
}
kl_coefs() { "$K" show --in "$1" 2> /dev/null | jq -s -c 'map(select(.t == "metrics") | [.iteration, .kl_coef])'; }

for mode in lora full; do
    opts=()
    [ $mode = lora ] && opts=(--lora r=4)
    ppo "${opts[@]}" 2> straight.err | "$K" ckpt --dir $mode-straight > $mode-straight.rec
    expect '[ "${PIPESTATUS[0]}" = 0 ]' "$mode: the straight run ($(tail -1 straight.err))"
    straight=$(kl_coefs $mode-straight.rec)
    expect 'echo "$straight" | jq -e "length == 4 and (map(.[1]) | unique | length) == 4" > /dev/null' \
        "$mode: the adaptive kl_coef moves every iteration: $straight"
    sigs=(TERM KILL)
    [ $mode = full ] && sigs=(TERM) # (kill -9 alike: the same resume; a shorter test)
    for sig in "${sigs[@]}"; do
        stopped_and_resumed $mode-$sig $sig "${opts[@]}"
        expect 'same_ckpt $mode-straight $mode-$sig-b' \
            "$mode, $sig and --resume: the straight run's final checkpoint, byte for byte ($(tail -1 $mode-$sig-b.err))"
        resumed=$(kl_coefs $mode-$sig-b.rec)
        expect 'echo "$straight" | jq -e --argjson r "$resumed" "(\$r | length) >= 1 and (\$r | length) <= 3 and .[-(\$r | length):] == \$r" > /dev/null' \
            "$mode, $sig: the resumed iterations' kl_coef are the straight run's ($resumed of $straight)"
    done
    n=$(kl_coefs $mode-TERM-a.rec | jq length)
    expect '[ "$n" -ge 1 ] && [ "$n" -lt 4 ]' "$mode: SIGTERM came mid-run (after $n iterations)"
done

# a checkpoint of another shape: an adapter for a full run, a model for a --lora run, another rank
ppo --iterations 5 --resume lora-straight/latest.safetensors > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "LoRA adapter, not a model" err.txt' "a full run refuses an adapter checkpoint ($(cat err.txt))"
ppo --iterations 5 --lora r=4 --resume full-straight/latest.safetensors > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "whole model" err.txt' "a --lora run refuses a model checkpoint ($(cat err.txt))"
ppo --iterations 5 --lora r=8 --resume lora-straight/latest.safetensors > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "r=4.*not --lora.s r=8" err.txt' "a --lora run refuses adapters of another rank ($(cat err.txt))"
"$K" ppo --init base/latest.safetensors --in p.rec --prompts 4 -K 4 --max-new 16 --threads 2 --minibatch 8 \
    --epochs 2 --reward "$reward" --iterations 5 --resume base/latest.safetensors --target-kl 1 > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "no .kl_coef. in its state" err.txt' \
    "--target-kl refuses a checkpoint without the controller's state ($(cat err.txt))"
finish
