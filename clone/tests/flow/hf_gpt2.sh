# Hugging Face GPT-2 directories both ways.  A BPE model trained by kiln, exported with
# kiln ckpt export --hf, built by plain PyTorch from config.json + model.safetensors
# (tests/flow/hf_gpt2.py) gives kiln's logits; the directory rewritten as transformers saves
# a GPT2LMHeadModel (only format metadata, lm_head.weight, attn.bias buffers) is read by
# kiln sample, eval and train --init; spoilt directories are refused naming the file.
# Skipped (77) without python3-torch.
. "$KILN_ROOT/tests/lib.sh"
/usr/bin/python3 -c 'import torch' 2> /dev/null || skip "python3-torch is not installed"
book="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$book" ] || skip "examples/data/moby-dick.txt missing"
py="$KILN_ROOT/tests/flow/hf_gpt2.py"
"$K" load text:"$book" --split chunk:1000 --limit 100 2> /dev/null > part.rec
"$K" bpe --vocab 400 --dir voc --in part.rec 2> /dev/null
"$K" tokenize --bpe voc --in part.rec | "$K" batch -B 4 -T 32 --pack > train.rec
"$K" train --layers 2 --dim 48 --heads 3 --ctx 32 --steps 10 --lr 3e-3 --threads 2 \
    --in train.rec 2> /dev/null | "$K" ckpt --dir run > /dev/null
expect_status 0 "$K" ckpt export run/latest.safetensors --hf hf 2> said.txt
expect '[ -f hf/config.json ] && [ -f hf/model.safetensors ] && [ -f hf/encoder.json ] && [ -f hf/vocab.bpe ]' \
    "the export holds config.json, model.safetensors, encoder.json, vocab.bpe"
expect 'cmp -s hf/vocab.bpe voc/vocab.bpe && cmp -s hf/encoder.json voc/encoder.json' "the tokenizer files are the vocabulary's"
expect '[ "$(jq .vocab_size hf/config.json)" = 400 ] && [ "$(jq .n_positions hf/config.json)" = 32 ] && [ "$(jq .eos_token_id hf/config.json)" = 399 ]' \
    "config.json: vocab_size, n_positions, eos_token_id"
tokens=$(seq 3 7 380 | head -30 | paste -sd,)
"$K" sample --ckpt run/latest.safetensors --logits --tokens "$tokens" > kiln.txt
/usr/bin/python3 "$py" logits hf kiln.txt "$tokens" > py.txt 2>&1
read -r _ diff _ big < py.txt
expect 'awk "BEGIN { exit !($diff < 1e-4 && $big > 1) }"' "PyTorch from the export = kiln: $(cat py.txt)"

# As transformers writes one: kiln reads the directory wherever it reads a checkpoint.
/usr/bin/python3 "$py" plain hf plain
expect_status 0 "$K" sample --ckpt plain --logits --tokens "$tokens" > plain.txt
expect 'cmp -s plain.txt kiln.txt' "kiln sample --ckpt DIR: the same logits"
expect_status 0 "$K" sample --ckpt plain -n 8 --prompt " the" --seed 1 > s.txt
expect 'grep -q "^ the" s.txt' "sample from the directory decodes with its vocab files"
"$K" load text:"$book" --split chunk:500 --limit 4 2> /dev/null | "$K" tokenize --bpe plain \
    | "$K" batch -B 2 -T 32 --pack > val.rec
expect_status 0 "$K" eval --data val.rec --ckpt plain --threads 2 > /dev/null 2> eval.txt
expect 'grep -q "bits/byte" eval.txt' "eval --ckpt DIR reports bits per byte"
expect_status 0 "$K" train --init plain --steps 2 --threads 2 --in train.rec --out /dev/null 2> /dev/null
expect_status 0 "$K" ckpt inspect plain > inspect.txt
# LoRA adapters with PEFT's adapter_config.json beside them: plain PyTorch folding them in
# as PEFT does gives kiln's logits of the adapted model.
"$K" train --init run/latest.safetensors --lora r=4,alpha=8,targets=qkv,proj,fc,fcproj --lr 3e-2 \
    --steps 4 --threads 2 --in train.rec 2> /dev/null | "$K" ckpt --dir lora > /dev/null
expect '[ "$(jq -r ".peft_type, .r, .lora_alpha, .fan_in_fan_out, (.target_modules | join(\",\"))" lora/adapter_config.json | paste -sd" ")" = "LORA 4 8 true attn.c_attn,attn.c_proj,mlp.c_fc,mlp.c_proj" ]' \
    "adapter_config.json: $(tr -d '\n' < lora/adapter_config.json)"
expect '[ "$(readlink lora/adapter_model.safetensors)" = step-000004.safetensors ]' "adapter_model.safetensors links to the newest"
"$K" sample --ckpt run/latest.safetensors --adapter lora/adapter_model.safetensors --logits --tokens "$tokens" > lora.txt
/usr/bin/python3 "$py" peft hf lora lora.txt "$tokens" > peft.txt 2>&1
read -r _ diff _ _ _ n < peft.txt
expect 'awk "BEGIN { exit !($diff < 1e-4) }" && ! cmp -s lora.txt kiln.txt && [ "$n" = 8 ]' "PEFT's reading of the adapters = kiln: $(cat peft.txt)"

# Spoilt: shapes that disagree with config.json, another epsilon, an untied head, and a
# tokenizer whose vocabulary is not the model's.
cp -r plain bad1 && /usr/bin/python3 "$py" break bad1 shape
expect_status 65 "$K" sample --ckpt bad1 -n 1 2> err.txt > /dev/null
expect 'grep -q "bad1/model.safetensors: transformer.wte.weight is F32 \[400, 48\], the model.s config needs F32 \[400, 96\]" err.txt' "shapes against config.json: $(cat err.txt)"
cp -r plain bad2 && /usr/bin/python3 "$py" break bad2 eps
expect_status 65 "$K" sample --ckpt bad2 -n 1 2> err.txt > /dev/null
expect 'grep -q "bad2/config.json: layer_norm_epsilon 1e-06" err.txt' "epsilon: $(cat err.txt)"
cp -r plain bad3 && /usr/bin/python3 "$py" break bad3 head
expect_status 65 "$K" eval --data val.rec --ckpt bad3 2> err.txt > /dev/null
expect 'grep -q "bad3/model.safetensors: lm_head.weight differs" err.txt' "untied head: $(cat err.txt)"
cp -r plain bad4 && cp run/../voc/vocab.bpe bad4/ && head -50 voc/vocab.bpe > bad4/vocab.bpe
expect_status 65 "$K" sample --ckpt bad4 -n 1 2> err.txt > /dev/null
expect 'grep -q "bad4/encoder.json" err.txt' "vocabulary files that disagree: $(cat err.txt)"
"$K" bpe --vocab 300 --dir v300 --in part.rec 2> /dev/null
cp -r plain bad5 && cp v300/* bad5/
expect_status 65 "$K" sample --ckpt bad5 -n 1 2> err.txt > /dev/null
expect 'grep -q "bad5/encoder.json: the vocabulary has 300 ids, but bad5/config.json says vocab_size 400" err.txt' \
    "a tokenizer that is not the model's: $(cat err.txt)"
mkdir -p empty
expect_status 74 "$K" sample --ckpt empty -n 1 2> err.txt > /dev/null
expect 'grep -q "empty/model.safetensors" err.txt' "a directory without the model file: $(cat err.txt)"
finish
