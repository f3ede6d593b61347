# pipelines/finetune.sh in each mode: full, frozen and LoRA on text, and frozen on images
# with a new class and augmentation.  Each run must fine-tune from the base's tokenizer,
# write before/after held-out bits and samples; LoRA's model is the merged one.
. "$KILN_ROOT/tests/lib.sh"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
[ -f "$BOOK" ] || skip "no examples/data/moby-dick.txt"
command -v jq > /dev/null || skip "no jq"
export PATH="$KILN_BIN:$PATH"
P="$KILN_ROOT/pipelines/finetune.sh"
steps=3
[ -n "${KILN_SAN:-}" ] && steps=2

head -c 40000 "$BOOK" > book.txt
kiln load text:book.txt --split chunk:64 --epochs 0 | kiln tokenize --bytes | kiln batch -B 4 -T 64 \
    | kiln train --layers 2 --dim 32 --heads 2 --ctx 64 --steps 4 | kiln ckpt --dir base | kiln show > /dev/null
tail -c 30000 "$BOOK" > new.txt
for mode in full frozen lora; do
    "$P" --base base/latest.safetensors --text new.txt --mode $mode --steps $steps --batch 4 --ctx 64 \
        --val-records 8 --threads 2 --out $mode > $mode.log 2>&1
    expect '[ $? = 0 ]' "finetune.sh --mode $mode runs ($(tail -3 $mode.log))"
    expect 'grep -q "held-out bits/byte before [0-9.]*, after [0-9.]* ($mode, $steps steps)" $mode/result.txt' "$mode: before and after"
    expect '[ -s $mode/sample.txt ]' "$mode: a text sample"
done
expect 'grep -q "freeze wpe" frozen.log' "frozen mode freezes wpe and the lower blocks by default"
expect '[ -f lora/merged-step-00000$steps.safetensors ]' "LoRA: the merged model"
expect '[ -s full/metrics.jsonl ] && [ -s full/chain.txt ] && jq -e .loss full/metrics.jsonl > /dev/null' \
    "the run directory holds its chain and its metrics as JSON lines"

# The script's own edges: --help on stdout and 0, --dry-run writes nothing, mistakes are 2.
expect_status 0 "$P" --help > help.txt
expect 'grep -q -- "--mode MODE" help.txt' "--help prints the options on stdout"
expect_status 0 "$P" --base base/latest.safetensors --text new.txt --out dry --dry-run 2> dry.err
expect '[ ! -e dry ] && grep -q "| kiln train --init" dry.err' "--dry-run prints the chain and writes nothing"
expect_status 2 "$P" --base base/latest.safetensors --text nothing.txt --out none 2> none.err
expect 'grep -q "finetune.sh: nothing.txt: no such file" none.err && [ ! -e none ]' "a missing file: $(cat none.err)"

# images: a base on 3 classes, fine-tuned on a 4th (a new class token) with augmentation
kiln load idx:"$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz" \
    --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" --size 8x8 \
    | kiln tokenize --levels 4 | kiln detok --dir png 2> /dev/null
mkdir -p pre new
mv png/Trouser png/Pullover png/Dress pre/ && mv png/Coat new/
printf 'Trouser\nPullover\nDress\n' > pre.classes
kiln load png:pre --classes pre.classes --size 8x8 --epochs 0 | kiln tokenize --levels 4 \
    | kiln batch -B 4 -T 64 | kiln train --layers 2 --dim 32 --heads 2 --ctx 64 --steps 4 \
    | kiln ckpt --dir ibase | kiln show > /dev/null
"$P" --base ibase/latest.safetensors --images png:new --val-images png:new --add-class Coat=Pullover \
    --augment 'hflip shift:1' --mode frozen --steps $steps --batch 4 --samples 2 --threads 2 \
    --out img > img.log 2>&1
expect '[ $? = 0 ]' "finetune.sh on images runs ($(tail -3 img.log))"
expect 'grep -q "bits/dim before" img/result.txt' "images: bits/dim before and after"
expect '[ -s img/before-Coat.png ] && [ -s img/after-Coat.png ]' "images: sample grids of the new class"
expect 'grep -q "kiln augment hflip shift:1" img.log' "images: augmentation in the chain"
"$P" --base ibase/latest.safetensors --images png:new --val-images png:new --add-class Coat=Pullover \
    --out idry --dry-run 2> idry.err
expect '[ $? = 0 ] && [ ! -e idry ] && grep -q "classes idry/classes.txt" idry.err' \
    "images --dry-run: the chain names the classes file it would write, and nothing is written"
finish
