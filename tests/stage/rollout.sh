# kiln rollout: K rollouts per prompt with tokens, logprobs and text; the output does not depend
# on how many prompts share a decode; an image model draws a class's images; bad input: no
# prompts (65), --max-new past the context (2), an unknown class (65).  (That the logprobs
# equal a teacher-forced forward's is tests/unit/test_rollout.c.)
. "$KILN_ROOT/tests/lib.sh"
book="$KILN_ROOT/examples/data/moby-dick.txt"
"$K" load text:"$book" --split chunk:500 --limit 100 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 4 -T 32 --pack | "$K" train --model tiny --ctx 32 --steps 10 --threads 2 \
    | "$K" ckpt --dir run > /dev/null
ck=run/latest.safetensors
printf '{"prompt":"Call me"}\n{"prompt":"The whale"}\n{"prompt":""}\n' > p.jsonl
roll() { "$K" load jsonl:p.jsonl 2> /dev/null | "$K" rollout --ckpt "$ck" --threads 2 "$@"; }
roll -K 2 --max-new 12 --seed 3 > a.rec
roll -K 2 --max-new 12 --seed 3 --prompts 1 > b.rec
"$K" show --all --in a.rec > a.json
expect '[ "$(jq -s "map(select(.t == \"rollout\")) | length" a.json)" = 6 ]' "3 prompts x K 2 = 6 rollouts"
expect 'jq -s -e "map(select(.t == \"rollout\")) | all(.completion_tokens.shape[0] == .logprobs.shape[0] and .logprobs.max <= 0)" a.json > /dev/null' \
    "a logprob per completion token, each <= 0"
expect 'jq -s -e "map(select(.t == \"rollout\")) | map(.k) == [0,1,0,1,0,1]" a.json > /dev/null' "k counts each prompt's completions"
expect 'jq -s -e "map(select(.t == \"rollout\")) | .[2].prompt == \"The whale\" and .[2].prompt_tokens.shape[0] == 9" a.json > /dev/null' \
    "prompt text and tokens"
expect 'jq -s -e "map(select(.t == \"rollout\")) | all(.ended == false or .completion_tokens.shape[0] <= 12)" a.json > /dev/null' "ended"
expect 'jq -s -e ".[0].t == \"hdr\" and .[0].schema == \"rollout\" and .[0].tokenizer.kind == \"bytes\"" a.json > /dev/null' \
    "the hdr carries the policy's tokenizer"
expect 'cmp -s a.rec b.rec' "--prompts 1 gives what --prompts 3 gives"
roll -K 2 --max-new 12 --seed 4 > c.rec
expect '! cmp -s a.rec c.rec' "another seed, other rollouts"

# bad input
: > empty.jsonl
"$K" load jsonl:empty.jsonl 2> err.txt | "$K" rollout --ckpt "$ck" --max-new 12 > /dev/null 2>> err.txt
rc=("${PIPESTATUS[@]}")
expect '[ "${rc[*]}" = "65 74" ] && grep -q "no records" err.txt' "an empty prompt file: kiln load 65, said (got ${rc[*]})"
echo '{"question":"no prompt here"}' > none.jsonl
"$K" load jsonl:none.jsonl 2> /dev/null | "$K" rollout --ckpt "$ck" --max-new 12 > /dev/null 2> err.txt
rc=${PIPESTATUS[1]}
expect '[ $rc = 65 ] && grep -q "stdin: no prompts" err.txt' "records without prompts: 65, said (got $rc)"
expect_status 2 roll --max-new 32 2> /dev/null
roll -K 1 > half.rec
expect '"$K" show --in half.rec | jq -s -e "all(.completion_tokens.shape[0] <= 16)" > /dev/null' \
    "without --max-new: half the context (16 of 32)"

# an image model: class token first, an image of its pixels
fm="$KILN_ROOT/tests/fixtures/fashion-mnist"
"$K" load idx:"$fm/t10k-200-images-idx3-ubyte.gz,$fm/t10k-200-labels-idx1-ubyte.gz" \
    --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" --size 8x8 2> /dev/null \
    | "$K" tokenize --levels 4 | "$K" batch -B 8 -T 65 \
    | "$K" train --model tiny --ctx 65 --steps 4 --threads 2 | "$K" ckpt --dir img > /dev/null
printf '{"label":"Bag"}\n{"label":"Sneaker"}\n' > cls.jsonl
"$K" load jsonl:cls.jsonl 2> /dev/null | "$K" rollout --ckpt img/latest.safetensors -K 2 --threads 2 \
    | "$K" show > img.json
expect 'jq -s -e "map(select(.t == \"rollout\")) | length == 4 and all(.image.shape == [8,8,1] and .logprobs.shape[0] == 64) and .[3].label == \"Sneaker\"" img.json > /dev/null' \
    "image rollouts: label, an 8x8 image, 64 logprobs"

# --png: a grid of the images drawn, a row per prompt, K a row; each cell is the record's image
"$K" load jsonl:cls.jsonl 2> /dev/null | "$K" rollout --ckpt img/latest.safetensors -K 3 --threads 2 \
    --png grid/g.png --scale 1 > grid.rec 2> said.txt
rc=${PIPESTATUS[1]}
expect '[ $rc = 74 ] && [ ! -e grid/g.png ] && grep -q "grid/g.png" said.txt' \
    "--png into a missing folder: 74, the file named (got $rc)"
mkdir -p grid
"$K" load jsonl:cls.jsonl 2> /dev/null | "$K" rollout --ckpt img/latest.safetensors -K 3 --threads 2 \
    --png grid/g.png --scale 1 > grid.rec 2> said.txt
expect 'grep -q "6 images, 2 prompts x K 3, in grid/g.png" said.txt' "--png says what it wrote"
expect '[ "$(od -An -tu1 -j16 -N8 grid/g.png | tr -s " ")" = " 0 0 0 32 0 0 0 22" ]' \
    "--png: 2 rows of 3 8x8 images, 2 pixels apart (32 x 22)"
"$K" load png:grid > grid-png.rec 2> /dev/null
/usr/bin/python3 - grid.rec grid-png.rec > cells.txt 2>&1 << 'PY'
import io, sys, msgpack
def recs(path):
    return list(msgpack.Unpacker(open(path, "rb"), raw=False))
rolls = [r for r in recs(sys.argv[1]) if r["t"] == "rollout"]
g = [r for r in recs(sys.argv[2]) if r["t"] == "sample"][0]["image"]
H, W = g["shape"][0], g["shape"][1]
ok = 0
for n, r in enumerate(rolls):
    y0, x0 = 2 + (n // 3) * 10, 2 + (n % 3) * 10
    im = r["image"]["data"]
    ok += all(g["data"][(y0 + y) * W + x0 + x] == im[y * 8 + x] for y in range(8) for x in range(8))
print(len(rolls), ok)
PY
expect '[ "$(cat cells.txt)" = "6 6" ]' "--png: every cell holds its rollout's image ($(cat cells.txt))"
expect_status 2 "$K" rollout --ckpt "$ck" --png t.png < /dev/null 2> /dev/null

# an image model trained as pipelines/pretrain.sh --images trains one (context = its pixels):
# class token + 64 pixels is one row longer than the context, as in training
"$K" load idx:"$fm/t10k-200-images-idx3-ubyte.gz,$fm/t10k-200-labels-idx1-ubyte.gz" \
    --classes "$KILN_ROOT/examples/data/fashion-mnist.classes" --size 8x8 2> /dev/null \
    | "$K" tokenize --levels 4 | "$K" batch -B 8 -T 64 \
    | "$K" train --model tiny --ctx 64 --steps 4 --threads 2 | "$K" ckpt --dir img64 > /dev/null
"$K" load jsonl:cls.jsonl 2> /dev/null | "$K" rollout --ckpt img64/latest.safetensors -K 2 --threads 2 \
    | "$K" show > img64.json
expect 'jq -s -e "map(select(.t == \"rollout\")) | length == 4 and all(.image.shape == [8,8,1] and .completion_tokens.shape[0] == 64)" img64.json > /dev/null' \
    "context 64: an 8x8 image after the class token"

printf '{"label":"Unicorn"}\n' > bad.jsonl
"$K" load jsonl:bad.jsonl 2> /dev/null | "$K" rollout --ckpt img/latest.safetensors > /dev/null 2> err.txt
rc=${PIPESTATUS[1]}
expect '[ $rc = 65 ] && grep -q "Unicorn" err.txt' "an unknown class: 65, named (got $rc)"
finish
