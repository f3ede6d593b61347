# pipelines/embed.sh end to end on small data: text (inverse cloze pairs) with full
# fine-tuning and with LoRA, and images (pairs by label) with kNN accuracy.  Each run
# trains contrastively, evaluates retrieval at each checkpoint, indexes the corpus and
# prints the base model's and the trained model's metrics side by side.
. "$KILN_ROOT/tests/lib.sh"
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
[ -f "$BOOK" ] || skip "no examples/data/moby-dick.txt"
command -v jq > /dev/null || skip "no jq"
export PATH="$KILN_BIN:$PATH"
P="$KILN_ROOT/pipelines/embed.sh"

head -c 60000 "$BOOK" > book.txt
kiln load text:book.txt --split chunk:64 --epochs 0 | kiln tokenize --bytes | kiln batch -B 4 -T 64 \
    | kiln train --layers 2 --dim 32 --heads 2 --ctx 64 --steps 4 | kiln ckpt --dir base | kiln show > /dev/null
for mode in full lora; do
    "$P" --base base/latest.safetensors --text book.txt --mode $mode --steps 4 --batch 4 --ctx 64 \
        --val-records 30 --threads 2 --out $mode > $mode.log 2>&1
    expect '[ $? = 0 ]' "embed.sh --mode $mode runs ($(tail -3 $mode.log))"
    expect 'grep -Eq "^base +[0-9.]+ +[0-9.]+ +[0-9.]+" $mode/result.txt && grep -Eq "^trained +[0-9.]+" $mode/result.txt' \
        "$mode: base and trained metrics ($(cat $mode/result.txt))"
    expect 'kiln show < $mode/log.rec | jq -s -e "map(select(.t == \"metrics\" and .split == \"retrieval\")) | length > 0 and all(.[\"mrr@10\"] >= 0)" > /dev/null' \
        "$mode: retrieval metrics at the checkpoints"
    expect 'kiln show < $mode/log.rec | jq -s -e "map(select(.t == \"metrics\" and .objective == \"contrastive\")) | length > 0 and all(.accuracy >= 0)" > /dev/null' \
        "$mode: contrastive training metrics"
    expect '[ -s $mode/trained.index ]' "$mode: the index"
done
expect 'grep -q "kiln pairs -B 4 -T 64 --cloze" full.log' "the chain is printed"

kiln load idx:"$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz" \
    --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" --size 6x6 --epochs 0 \
    | kiln tokenize --levels 4 | kiln batch -B 4 -T 37 \
    | kiln train --layers 2 --dim 32 --heads 2 --ctx 40 --steps 4 | kiln ckpt --dir ibase | kiln show > /dev/null
idx="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"
"$P" --base ibase/latest.safetensors --images "$idx" --val-images "$idx" --steps 4 --batch 8 \
    --val-records 40 --corpus-records 150 --augment "shift:1 jitter:0.2" --per-label 2 \
    --group-positives --ptx-coef 0.5 --threads 2 --out img > img.log 2>&1
expect '[ $? = 0 ]' "embed.sh on images runs ($(tail -3 img.log))"
expect 'grep -Eq "^trained +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+" img/result.txt' "images: kNN accuracy ($(cat img/result.txt))"
expect 'grep -q "^  | kiln augment --seed 1 shift:1 jitter:0.2$" img.log' "images: --augment in the chain"
expect 'kiln show < img/log.rec | jq -s -e "map(select(.t == \"metrics\" and .objective == \"contrastive\")) | length > 0" > /dev/null' \
    "images: augmented pairs train"
expect 'grep -q "kiln pairs -B 8 -T 37 --by-label --per-label 2 " img.log && grep -q -- "--group-positives" img.log' \
    "images: --per-label and --group-positives in the chain"
expect 'kiln show < img/log.rec | jq -s -e "map(select(.t == \"metrics\" and .objective == \"contrastive\" and .ptx_loss > 0)) | length > 0" > /dev/null' \
    "images: --ptx-coef adds a pretraining batch to each step"
expect_status 2 "$P" --base ibase/latest.safetensors --text "$KILN_ROOT/examples/data/sotu-lincoln.txt" --augment hflip --dry-run
expect_status 2 "$P" --base base/latest.safetensors
expect_status 2 "$P" --base base/latest.safetensors --text book.txt --per-label 2 --dry-run
finish
