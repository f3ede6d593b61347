# kiln ppo of a class-conditional image model (8x8, 4 gray levels, from the Fashion-MNIST
# fixture): a prompt is a record's `label`, a completion the image's 64 pixel tokens (no EOS,
# no missing-EOS penalty); the reward stage gets rollout records with `label` and `image` (U8
# [8,8,1]) and `kiln judge --score brightness` scores them; the ckpt is an image model kiln
# sample runs; --lora too.  Bad input: --max-new other than the image's tokens (2), an unknown
# class (65).  (That brightness rises: tests/flow/rlhf_ppo_image.sh.)
. "$KILN_ROOT/tests/lib.sh"
fm="$KILN_ROOT/tests/fixtures/fashion-mnist"
"$K" load idx:"$fm/t10k-200-images-idx3-ubyte.gz,$fm/t10k-200-labels-idx1-ubyte.gz" \
    --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" --size 8x8 2> /dev/null \
    | "$K" tokenize --levels 4 | "$K" batch -B 8 -T 65 \
    | "$K" train --model tiny --ctx 65 --steps 4 --threads 2 2> /dev/null | "$K" ckpt --dir img > /dev/null
printf '{"label":"Bag"}\n{"label":"Sneaker"}\n{"label":"Trouser"}\n' > cls.jsonl
"$K" load jsonl:cls.jsonl > cls.rec 2> /dev/null
ppo() { "$K" ppo --init img/latest.safetensors --in cls.rec --prompts 3 -K 2 --threads 2 \
    --minibatch 6 --epochs 1 --lr 1e-3 "$@"; }

# the reward stage keeps a copy of what it was sent (tee) and scores it with the brightness judge
ppo --reward "tee seen.rec | $K judge --score brightness" --iterations 2 2> err.txt | "$K" ckpt --dir run > log.rec
expect '[ "${PIPESTATUS[0]}" = 0 ]' "kiln ppo trains an image model ($(tail -2 err.txt))"
"$K" show --all --in seen.rec > seen.json 2> /dev/null
expect 'jq -s -e "map(select(.t == \"rollout\")) | length == 12 and all(.image.shape == [8,8,1] and .image.dtype == \"U8\" and .completion_tokens.shape == [64] and .logprobs.shape == [64] and .ended == false and .prompt_tokens.shape == [1])" seen.json > /dev/null' \
    "12 rollouts a run of 2 iterations x 3 prompts x K 2, each an 8x8 U8 image of 64 tokens, no EOS"
expect 'jq -s -e "map(select(.t == \"rollout\")) | map(.label) == [\"Bag\",\"Bag\",\"Sneaker\",\"Sneaker\",\"Trouser\",\"Trouser\",\"Bag\",\"Bag\",\"Sneaker\",\"Sneaker\",\"Trouser\",\"Trouser\"] and map(.id) == [0,0,1,1,2,2,0,0,1,1,2,2] and map(.epoch) == [0,0,0,0,0,0,1,1,1,1,1,1]" seen.json > /dev/null' \
    "the rollouts carry their prompt's label and id, K of each, in order"
expect 'jq -s -e ".[0].t == \"hdr\" and .[0].tokenizer.kind == \"levels\"" seen.json > /dev/null' \
    "the reward stage's hdr has the image tokenizer"
"$K" show --all --in log.rec > log.json 2> /dev/null
# the score is the brightness alone: no missing-EOS penalty for an image that has no EOS
"$K" judge --score brightness --in seen.rec 2> /dev/null | "$K" show | jq -s -c \
    '[map(select(.t == "rollout")) | .[0:6], .[6:12] | map(.reward) | add / length]' > want.json
jq -s -c 'map(select(.t == "metrics") | ."objective/scores")' log.json > got.json
expect 'jq -n -e --slurpfile w want.json --slurpfile g got.json "[\$w[0], \$g[0]] | transpose | all(.[0] - .[1] | fabs < 1e-12)" > /dev/null' \
    "objective/scores is the mean brightness, no missing-EOS penalty ($(cat got.json) vs $(cat want.json))"
expect 'jq -s -e "map(select(.t == \"metrics\")) | length == 2 and .[0].\"objective/kl\" == 0 and all(.\"val/num_eos_tokens\" == 0)" log.json > /dev/null' \
    "metrics: KL 0 at first, no EOS tokens"
"$K" sample --ckpt run/latest.safetensors -n 2 --records --threads 2 2> err.txt | "$K" show > s.json
expect 'jq -s -e "map(select(.t == \"sample\")) | length == 2 and all(.image.shape == [8,8,1])" s.json > /dev/null' \
    "kiln sample draws images from the PPO policy ($(cat err.txt))"

# with --lora: the adapters and the value head in the ckpt
ppo --reward "$K judge --score brightness" --iterations 1 --lora r=4 2> err.txt > lora.rec
expect '[ $? = 0 ] && "$K" show --all --in lora.rec 2> /dev/null | jq -s -e "map(select(.t == \"ckpt\")) | .[0].adapter.kind == \"lora\"" > /dev/null' \
    "an image model with --lora ($(tail -1 err.txt))"

expect_status 2 ppo --reward "$K judge --score brightness" --iterations 1 --max-new 16
printf '{"label":"Unicorn"}\n' > bad.jsonl
"$K" load jsonl:bad.jsonl 2> /dev/null | "$K" ppo --init img/latest.safetensors --reward "$K judge --score brightness" \
    --iterations 1 --threads 2 > /dev/null 2> err.txt
rc=${PIPESTATUS[1]}
expect '[ $rc = 65 ] && grep -q "Unicorn" err.txt' "an unknown class: 65, named (got $rc: $(cat err.txt))"
finish
