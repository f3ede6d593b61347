# PPO of an image model against a judge: pipelines/pretrain.sh --images trains a tiny
# class-conditional model (8x8, 4 gray levels, the Fashion-MNIST fixture), kiln ppo trains it
# with `kiln judge --score brightness` as its reward stage, and the mean brightness of the
# policy's images of every class (kiln sample) goes up.
. "$KILN_ROOT/tests/lib.sh"
R="$KILN_ROOT"
fm="$R/tests/fixtures/fashion-mnist"
idx="idx:$fm/t10k-200-images-idx3-ubyte.gz,$fm/t10k-200-labels-idx1-ubyte.gz"
"$R/pipelines/pretrain.sh" --images "$idx" --val-images "$idx" --classes "$R/examples/data/fashion-mnist.classes" \
    --size 8x8 --levels 4 --model tiny --steps 120 --batch 8 --lr 5e-3 --every 120 --val-records 8 \
    --threads 2 --out base > pretrain.log 2>&1
expect '[ -f base/ckpt/latest.safetensors ]' "pretrain.sh --images: a base ($(tail -3 pretrain.log))"
sed 's/.*/{"label":"&"}/' "$R/examples/data/fashion-mnist.classes" > classes.jsonl
"$K" load jsonl:classes.jsonl > classes.rec 2> /dev/null

# the mean brightness of 40 images, 4 of each class in turn (kiln sample), the same seed for
# every model
brightness() {
    "$K" sample --ckpt "$1" -n 40 --records --seed 5 --threads 2 2> /dev/null | "$K" show \
        | jq -s 'map(select(.t == "sample") | .image.mean / 255) | add / length'
}
"$K" ppo --init base/ckpt/latest.safetensors --in classes.rec --reward "$K judge --score brightness" \
    --iterations 10 --prompts 4 -K 4 --minibatch 8 --epochs 2 --lr 2e-3 --kl-coef 0.01 --threads 2 \
    2> ppo.err | "$K" ckpt --dir ppo > log.rec
expect '[ "${PIPESTATUS[0]}" = 0 ] && [ -f ppo/latest.safetensors ]' "kiln ppo, 10 iterations ($(tail -2 ppo.err))"
scores=$("$K" show --in log.rec 2> /dev/null | jq -s -c 'map(select(.t == "metrics") | ."objective/scores")')
expect 'echo "$scores" | jq -e "length == 10 and (.[7:] | add / 3) > .[0] + 0.1" > /dev/null' \
    "the training score (brightness) rises by more than 0.1: $scores"
before=$(brightness base/ckpt/latest.safetensors) after=$(brightness ppo/latest.safetensors)
expect 'awk -v b="$before" -v a="$after" "BEGIN{exit !(a > b + 0.1)}"' \
    "the policy's images of every class are brighter: $before -> $after"
finish
