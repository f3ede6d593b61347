# pipelines/rlhf.sh --labeller human, both methods, with a person's keys sent through tmux: the
# DPO run opens kiln label twice (the training pairs, then the held-out pairs), every pair gets
# "1" (left) and each session q; the pairs become pref records by "person" with the left
# completion chosen, the reward model and DPO train on them and the report is written.  Then
# --method ppo on the same prompts with that label file: kiln label finds every pair labelled
# (nothing is asked twice), the reward model trains on them and kiln ppo runs against it.
. "$KILN_ROOT/tests/flow/rlhf_base.sh.inc"
command -v tmux > /dev/null || skip "tmux is not installed (apt-get install tmux): the human labeller's test skipped"
head -n 6 prompts.txt > p6.txt # 4 training prompts, 2 held out

unset TMUX # a tmux of its own, even when the test runs inside one
sock="$PWD/tmux.sock"
printf 'set -g default-terminal tmux-256color\nset -g remain-on-exit off\n' > tmux.conf
T() { tmux -S "$sock" "$@"; }
trap 'tmux -S "$sock" kill-server 2> /dev/null' EXIT
screen() { T capture-pane -p -t "$1" 2> /dev/null; }
# run NAME ARGS...: rlhf.sh in a detached session NAME; its output in NAME.log, status NAME.rc
run() {
    local name=$1 a cmd=""
    shift
    for a; do cmd="$cmd '$a'"; done
    T -f tmux.conf -u new-session -d -s "$name" -x 120 -y 30 \
        "sh -c 'PATH=\"$PATH\" KILN_THREADS=1 \"$P\" $cmd > $name.log 2>&1'; echo \$? > $name.rc"
}
# drive NAME: a person at the labeller: 1 on every pair, q once every pair is labelled (then
# wait for the screen to leave the labeller, so no key reaches the next session early); until
# the run ends.  Its exit status.
drive() {
    local s
    for _ in $(seq 1200); do
        [ -s "$1.rc" ] && break
        s=$(screen "$1")
        if grep -q "Every pair is labelled" <<< "$s"; then
            T send-keys -t "$1" q
            for _ in $(seq 100); do screen "$1" | grep -q "Every pair is labelled" || break; sleep 0.1; done
        elif grep -q " labelled" <<< "$s"; then
            T send-keys -t "$1" 1
            sleep 0.3
        else
            sleep 0.1
        fi
    done
    cat "$1.rc" 2> /dev/null
}
common=(--base base/latest.safetensors --prompts p6.txt --held 2 --labeller human -K 2 --max-new 8
    --rm-steps 4 --accum 2 --lr 1e-2)

run dpo "${common[@]}" --method dpo --steps 4 --data book.txt --out dpo
expect '[ "$(drive dpo)" = 0 ]' "rlhf.sh --method dpo --labeller human ends with 0 ($(tail -2 dpo.log))"
expect '[ "$(wc -l < dpo/labels.jsonl)" = 6 ]' "the label file holds the 4 training and 2 held-out pairs, once each"
expect '[ "$(kiln show < dpo/prefs.rec | jq -s -c "map(select(.t == \"pref\") | [.by, .chosen_k]) | unique")" = "[[\"person\",0]]" ]' \
    "4 pref records by a person, the left completion chosen ($(kiln show < dpo/prefs.rec | jq -s -c 'map(select(.t == "pref")) | length'))"
expect 'grep -q "reward model held-out pairwise accuracy" dpo/report.txt && grep -q "held-out bits/byte" dpo/report.txt' "the report"
expect '[ -f dpo/dpo/latest.safetensors ] && [ -f dpo/rm/latest.safetensors ]' "the DPO model and the reward model"

mkdir -p ppo && cp dpo/labels.jsonl ppo/
run ppo "${common[@]}" --method ppo --iterations 2 --ppo-prompts 2 --out ppo
expect '[ "$(drive ppo)" = 0 ]' "rlhf.sh --method ppo --labeller human ends with 0 ($(tail -2 ppo.log))"
expect '[ "$(wc -l < ppo/labels.jsonl)" = 6 ]' "nothing is asked twice: the same 6 labels"
expect '[ -f ppo/ppo/latest.safetensors ] && [ -f ppo/rm/latest.safetensors ]' "PPO against the reward model trained on the person's labels"
expect 'jq -s -e "map(select(.t == \"metrics\" and .iteration != null)) | length == 2" ppo/ppo-log.jsonl > /dev/null' "two PPO iterations"
finish
