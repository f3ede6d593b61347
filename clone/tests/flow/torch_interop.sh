# PyTorch interop: a checkpoint trained by kiln, loaded by a plain PyTorch GPT-2
# (tests/flow/torch_interop.py: nn.Linear/nn.LayerNorm, HF names, no kiln code), gives the
# logits of `kiln sample --logits` within 1e-4.  Skipped (77) without python3-torch.
. "$KILN_ROOT/tests/lib.sh"
/usr/bin/python3 -c 'import torch' 2> /dev/null || skip "python3-torch is not installed"
book="$KILN_ROOT/examples/data/moby-dick.txt"
[ -f "$book" ] || skip "examples/data/moby-dick.txt missing"
"$K" load text:"$book" --split chunk:64 --limit 400 2> /dev/null | "$K" tokenize --bytes \
    | "$K" batch -B 8 -T 64 | "$K" train --layers 2 --dim 48 --heads 3 --ctx 64 --steps 30 \
        --lr 3e-3 --threads 2 | "$K" ckpt --dir run > /dev/null
tokens=$(head -c 60 "$book" | od -An -tu1 -v | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
expect_status 0 "$K" sample --ckpt run/latest.safetensors --logits --tokens "$tokens" > kiln.txt
expect '[ "$(wc -l < kiln.txt)" = 60 ]' "a line of logits per token"
/usr/bin/python3 "$KILN_ROOT/tests/flow/torch_interop.py" run/latest.safetensors kiln.txt "$tokens" > py.txt 2>&1
read -r _ diff _ big < py.txt
expect 'awk "BEGIN { exit !($diff < 1e-4 && $big > 1) }"' "PyTorch logits = kiln's: $(cat py.txt)"
finish
