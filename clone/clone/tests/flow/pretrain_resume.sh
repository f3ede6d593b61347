# Exact resume: pipelines/pretrain.sh killed with SIGKILL at a random step and resumed with
# --resume gives, from its checkpoint on, the same train losses (every step), eval losses
# and final checkpoint, bit for bit, as a run that was never interrupted.  The resumed run's
# log.rec, metrics.jsonl and progress summary hold the whole run, not the last segment.
# And the script's own edges: --help, --dry-run, a missing --text file.
. "$KILN_ROOT/tests/lib.sh"
book="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$book" ] || skip "examples/data/moby-dick.txt missing"
head -c 60000 "$book" > book.txt
steps=60
[ -n "${KILN_SAN:-}" ] && steps=32
PATH="$KILN_BIN:$PATH"
run() {
    "$KILN_ROOT/pipelines/pretrain.sh" --text book.txt --layers 2 --dim 64 --heads 2 --ctx 64 \
        --batch 8 --steps $steps --every 4 --log-every 1 --val-records 8 --threads 2 "$@"
}
losses() { # losses LOG...: "stage step loss" lines, loss as its exact JSON text
    for f in "$@"; do kiln show --in "$f" --out /dev/null; done \
        | sed -n 's/.*"stage":"\([a-z]*\)",\(.*"split":"val",\)\{0,1\}"step":\([0-9]*\),"loss":\([^,}]*\).*/\1 \3 \4/p'
}

expect_status 0 "$KILN_ROOT/pipelines/pretrain.sh" --help > help.txt
expect 'grep -q -- "--resume DIR" help.txt' "--help prints the options on stdout"
expect_status 0 run --out dry --dry-run 2> dry.err
expect '[ ! -e dry ] && grep -q "| kiln train" dry.err' "--dry-run prints the chain on stderr and writes nothing"
expect_status 2 run --text nothing.txt --out none 2> none.err
expect 'grep -q "pretrain.sh: nothing.txt: no such file" none.err && [ ! -e none ]' \
    "a missing --text file is a usage error: $(cat none.err)"
expect_status 2 run --out none --steps 2> none.err
expect 'grep -q "pretrain.sh: --steps needs a value" none.err' "an option without its value: $(cat none.err)"

expect_status 0 run --out a 2> a.err
losses a/log.rec > a.txt
expect '[ "$(grep -c "^train" a.txt)" = $steps ] && [ "$(grep -c "^eval" a.txt)" = $((steps / 4)) ]' \
    "the straight run logs every step and every eval ($(wc -l < a.txt) lines)"

# The same run, killed at a random step past the first checkpoint.
kill_at=$(( 6 + RANDOM % (steps - 24) ))
setsid bash -c "$(declare -f run); steps=$steps; run --out b" > /dev/null 2> b.err &
pid=$!
for _ in $(seq 600); do
    [ "$(losses b/log.rec 2> /dev/null | awk '$1 == "train" { s = $2 } END { print s + 0 }')" -ge "$kill_at" ] && break
    sleep 0.1
done
kill -9 -- -"$pid" 2> /dev/null
wait "$pid" 2> /dev/null
at=$(kiln ckpt inspect b/ckpt/latest.safetensors | awk '$1 == "step" { print $2 }')
expect '[ "${at:-0}" -ge 4 ] && [ "${at:-0}" -lt $steps ]' "killed at step ~$kill_at with a checkpoint at step $at ($(ls b/ckpt 2>&1 | tr "\n" " "); $(tail -2 b.err | tr "\n" " "))"

expect_status 0 run --resume b 2> resume.err
expect 'grep -q "resuming b at step $at" resume.err' "says where it resumes: $(grep resum resume.err)"
losses b/log.rec > b.txt
expect '[ -s b.txt ] && cmp -s a.txt b.txt' \
    "b/log.rec holds the whole run, and its losses equal the straight run's: $(diff a.txt b.txt | head -3 | tr '\n' ' ')"
expect '[ "$(grep -c "\"stage\":\"train\"" b/metrics.jsonl)" = $steps ] && jq -e .loss b/metrics.jsonl > /dev/null' \
    "metrics.jsonl holds every train step as JSON lines"
expect '[ "$(grep -c "^# " b/chain.txt)" = 2 ] && grep -q "kiln cat --prepend" b/chain.txt' "chain.txt: both segments"
expect 'grep -q "^steps *$steps of $steps" resume.err && grep -q "2 segments" resume.err' \
    "the summary covers the whole run: $(grep -E "^(steps|time)" resume.err | tr '\n' ' ')"
expect '[ ! -e b/history.rec ]' "history.rec removed after the run"
expect '[ -s b/loss.png ] && [ -s b/plots/loss.png ] && [ -s b/plots/grad_norm.png ]' \
    "loss.png and a plot per metric family: $(ls b/plots 2>&1 | tr "\n" " ")"
kiln ckpt inspect a/ckpt/latest.safetensors | grep -v '^file' > a.ck
kiln ckpt inspect b/ckpt/latest.safetensors | grep -v '^file' > b.ck
expect 'grep -q "^step *$steps$" b.ck && cmp -s a.ck b.ck' \
    "final checkpoints identical, cursor included: $(diff a.ck b.ck | head -4 | tr '\n' ' ')"
finish
