# make demo in its fast mode: examples/demo.sh with a tiny model for 20 steps writes
# checkpoints, a loss plot and records, prints the progress summary, a sample, and where
# everything is; the eval loss goes down.
. "$KILN_ROOT/tests/lib.sh"
[ -f "$KILN_ROOT/examples/data/moby-dick.txt" ] || skip "examples/data/moby-dick.txt missing"
export DEMO_STEPS=20 DEMO_OUT="$PWD/demo" DEMO_ARGS="--layers 1 --dim 32 --heads 2 --ctx 32 --threads 2"
expect_status 0 "$KILN_ROOT/examples/demo.sh" > sample.txt 2> said.txt
expect '[ -f demo/loss.png ] && [ "$(od -An -tx1 -j1 -N3 demo/loss.png | tr -d " ")" = 504e47 ]' "a loss plot"
expect '[ -f demo/ckpt/step-000020.safetensors ] && [ -e demo/ckpt/best.safetensors ]' "checkpoints"
expect 'grep -q "^Call me Ishmael. ." sample.txt' "a sample continuing the prompt: $(head -c 80 sample.txt)"
expect 'grep -q "^steps  *20 of 20" said.txt && grep -q "loss plot  *$DEMO_OUT/loss.png" said.txt' \
    "summary and where things are"
first=$(kiln show --in demo/log.rec --out /dev/null | grep '"stage":"eval"' | head -1 | sed 's/.*"loss":\([^,]*\).*/\1/')
last=$(kiln show --in demo/log.rec --out /dev/null | grep '"stage":"eval"' | tail -1 | sed 's/.*"loss":\([^,]*\).*/\1/')
expect 'awk "BEGIN { exit !($last < $first - 0.3) }"' "eval loss falls ($first -> $last)"
# A second demo replaces the first run; a directory that is not a run is left alone.
mkdir keep && touch keep/precious
expect_status 2 env DEMO_OUT="$PWD/keep" "$KILN_ROOT/examples/demo.sh" > /dev/null 2>&1
expect '[ -f keep/precious ]' "a foreign directory is not deleted"
finish
