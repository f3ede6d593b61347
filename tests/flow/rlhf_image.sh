# pipelines/rlhf.sh on an image base: a tiny class-conditional Fashion-MNIST model (8x8, 4
# levels, trained here on the 200-image fixture), class names as prompts, the brightness
# judge (the default for an image base), a reward model and DPO; the report has the judge's
# scores, the KL and the held-out bits/dim before and after, and PNG sample grids.
. "$KILN_ROOT/tests/lib.sh"
command -v jq > /dev/null || skip "no jq"
export PATH="$KILN_BIN:$PATH" KILN_THREADS=1
P="$KILN_ROOT/pipelines/rlhf.sh"
fm="$KILN_ROOT/tests/fixtures/fashion-mnist"
idx="idx:$fm/t10k-200-images-idx3-ubyte.gz,$fm/t10k-200-labels-idx1-ubyte.gz"
classes="$KILN_ROOT/examples/data/fashion-mnist.classes"

# the base, as pipelines/pretrain.sh --images trains one: the context is the image's pixels
kiln load "$idx" --classes "$classes" --size 8x8 --epochs 3 --shuffle 2> /dev/null \
    | kiln tokenize --levels 4 | kiln batch -B 8 -T 64 \
    | kiln train --layers 2 --dim 32 --heads 2 --ctx 64 --steps 60 --lr 1e-2 --log-every 60 \
    | kiln ckpt --dir base > /dev/null
for _ in 1 2 3 4; do cat "$classes"; done > prompts.txt # 40: the last 10 held out

"$P" --base base/latest.safetensors --prompts prompts.txt --held 10 --val-images "$idx" \
    --dry-run --out dry 2> dry.txt
expect 'grep -q "kiln judge --pairs brightness" dry.txt && grep -q "tokenize --levels 4" dry.txt \
    && grep -q "samples-before.png" dry.txt && [ ! -d dry ]' "--dry-run: the image chain, nothing written"
printf 'Sneaker\nUnicorn\nBag\n' > bad.txt
expect_status 2 "$P" --base base/latest.safetensors --prompts bad.txt --held 1 --out bad 2> bad.err
expect 'grep -q "prompt 2: {\"label\":\"Unicorn\"}" bad.err' "an unknown class is named ($(cat bad.err))"
expect_status 2 "$P" --base base/latest.safetensors --prompts prompts.txt --held 10 \
    --val-images idx:nowhere.gz,nowhere-labels.gz --out badval 2> badval.err
expect 'grep -q "val-images idx:nowhere.gz.*cannot open" badval.err && [ ! -e badval/prefs.rec ]' \
    "a bad --val-images stops the run before it rolls out ($(tail -1 badval.err))"
expect_status 2 "$P" --base base/latest.safetensors --prompts prompts.txt --held 10 --judge afinn \
    --out bad 2> /dev/null
expect_status 2 "$P" --base base/latest.safetensors --prompts prompts.txt --held 10 \
    --data "$classes" --out bad 2> /dev/null

"$P" --base base/latest.safetensors --prompts prompts.txt --held 10 --val-images "$idx" \
    --val-records 64 -K 4 --steps 24 --rm-steps 8 --accum 2 --lr 3e-3 --beta 0.5 --out run \
    > run.log 2>&1
expect '[ -s run/report.txt ]' "a report ($(tail -3 run.log))"
kiln show < run/prefs.rec > prefs.jsonl
expect 'jq -s -e "map(select(.t == \"pref\")) | length >= 20" prefs.jsonl > /dev/null' \
    "pairs made ($(jq -s 'map(select(.t == "pref")) | length' prefs.jsonl) of 30 prompts)"
expect 'jq -s -e "map(select(.t == \"pref\")) | all(.chosen_score > .rejected_score
    and .chosen_tokens.mean > .rejected_tokens.mean and .prompt_tokens.shape == [1])" prefs.jsonl > /dev/null' \
    "chosen brighter than rejected (score and pixel levels), the class token as prompt"
expect 'jq -s -e "map(select(.t == \"metrics\" and .objective == \"dpo\")) | length > 0
    and all(.[\"rewards/accuracies\"] != null and .[\"rewards/margins\"] != null)" run/dpo-log.jsonl > /dev/null' \
    "DPO metrics"
expect 'grep -q "reward model held-out pairwise accuracy: [0-9.]" run/report.txt' "the reward model's accuracy"
num='[0-9]+\.[0-9]+'
expect 'grep -Eq "^held-out bits/dim +$num +$num$" run/report.txt' "held-out bits/dim before and after"
expect 'grep -Eq "^mean judge score +$num +$num$" run/report.txt' "the judge's mean score before and after"
b=$(jq .score run/eval-before.json) a=$(jq .score run/eval-after.json)
expect 'awk -v b="$b" -v a="$a" "BEGIN{exit !(a > b)}"' "brightness rises ($b -> $a)"
for g in before after; do # 10 rows (the held-out classes) of 8 images, 16x16 at scale 2
    expect '[ "$(od -An -tx1 -j1 -N3 run/samples-$g.png | tr -d " ")" = 504e47 ] \
        && [ "$(od -An -tu1 -j16 -N8 run/samples-$g.png | tr -s " ")" = " 0 0 0 146 0 0 0 182" ]' \
        "samples-$g.png: a PNG grid of 10 rows of 8"
    expect 'grep -q "run/samples-$g.png" run/report.txt' "the report names samples-$g.png"
done
# kiln reward scores an image rollout (class token + pixels: one more than the context) as the
# reward model's pairs were scored in training and by kiln eval: the same margins
head -10 prompts.txt | jq -R -c '{label: .}' > ten.jsonl
kiln load jsonl:ten.jsonl 2> /dev/null | kiln rollout --ckpt base/latest.safetensors -K 3 2> /dev/null \
    | kiln reward --ckpt run/rm/latest.safetensors | kiln judge --pairs reward > rm-pairs.rec 2> /dev/null
m1=$(kiln show < rm-pairs.rec | jq -s 'map(select(.t == "pref") | .chosen_score - .rejected_score) | add / length')
m2=$(kiln eval --ckpt run/rm/latest.safetensors --data rm-pairs.rec 2> /dev/null | kiln show | jq -s 'map(select(.margin)) | .[0].margin')
expect 'awk -v a="$m1" -v b="$m2" "BEGIN { d = a - b; exit !(a > 0 && d * d < 1e-10) }"' \
    "kiln reward and kiln eval score image pairs alike (margins $m1, $m2)"
mkdir -p grids && cp run/samples-*.png grids/
expect 'kiln load png:grids 2> /dev/null | kiln show | jq -s -e "map(select(.t == \"sample\")) | length == 2" > /dev/null' \
    "both grids decode"
finish
