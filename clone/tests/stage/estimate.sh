# kiln estimate: the table for the README's three cases (the demo, the small model over the
# whole book, a GPT-2-size model), the plan against known numbers, N machines, --hw rows
# and overrides, a run that fits none of the chosen hardware, and bad input (exit 2, 65, 74).
. "$KILN_ROOT/tests/lib.sh"
command -v jq >/dev/null || skip "no jq"

expect '"$K" estimate --help | head -1 | grep -q "^kiln estimate — "' "--help first line"
# the three documented cases print a table with every row of the shipped hardware table
demo=(--layers 4 --dim 128 --heads 4 --ctx 128 -B 16 --steps 3000)
"$K" estimate "${demo[@]}" --measure 0.3 > demo.txt
expect 'grep -q "^this .*(measured)" demo.txt && grep -q "^h100-sxm " demo.txt && grep -q "^laptop-cpu " demo.txt' \
    "the demo's table: this machine measured, and the shipped rows"
expect 'grep -q "the run .*= 3000 steps of B 16 x T 128" demo.txt' "the demo's run: 3000 steps"
"$K" estimate --model small --tokens 1.2e6 --measure 0.3 > book.txt
expect '[ "$(grep -c "fits" book.txt)" -ge 8 ]' "the small model fits everywhere"
gpt2=(--layers 12 --dim 768 --heads 12 --ctx 1024 --vocab 50257 -B 8 --tokens 1e10)
"$K" estimate "${gpt2[@]}" --measure 0 > gpt2.txt
expect 'grep -q "^parameters  124.4 M" gpt2.txt' "GPT-2 size: 124.4 M parameters"
expect 'grep -q "^rtx-4090 .*fits (24.0 GB)" gpt2.txt' "GPT-2 at B 8 fits a 24 GB GPU"
"$K" estimate "${gpt2[@]}" --measure 0 --json > gpt2.json
expect '[ "$(jq .params gpt2.json)" = 124439808 ]' "json: parameters"
expect '[ "$(jq .memory.optim gpt2.json)" = 995518464 ]' "json: AdamW holds 8 bytes a parameter"
expect 'jq -e "(.rows[] | select(.name == \"h100-sxm\") | .seconds) as \$s | (\$s > 3600 and \$s < 86400)" gpt2.json >/dev/null' \
    "GPT-2 on 10B tokens on one H100: hours, not days"

# N machines: with --net 0 the time divided by N, the cost the same; over 10 Gbit/s each
# step adds the ring all-reduce of 498 MB of gradients: 2 x 7/8 x 497.8 MB / 1.25 GB/s
"$K" estimate "${gpt2[@]}" --measure 0 --json --machines 8 --net 0 > gpt2x8.json
expect 'jq -n --slurpfile a gpt2.json --slurpfile b gpt2x8.json -e "[\$a[0].rows[], \$b[0].rows[]] | map(select(.name == \"h100-sxm\")) | (.[0].seconds / .[1].seconds - 8 | fabs) < 1e-6 and (.[0].cost / .[1].cost - 1 | fabs) < 1e-6" >/dev/null' \
    "8 machines: an eighth of the time, the same cost"
"$K" estimate "${gpt2[@]}" --measure 0 --machines 8 > x8.txt
expect 'grep -q "^8 x h100-sxm" x8.txt && grep -q "all-reduce of 498 MB .* over 10 Gbit/s: 0.697 s a step" x8.txt' \
    "8 machines: the all-reduce said ($(grep all-reduce x8.txt))"
"$K" estimate "${gpt2[@]}" --measure 0 --json --machines 8 > gpt2x8net.json
expect 'jq -n --slurpfile a gpt2x8.json --slurpfile b gpt2x8net.json -e "[\$a[0].rows[], \$b[0].rows[]] | map(select(.name == \"h100-sxm\")) | .[1].seconds - .[0].seconds > 1e4" >/dev/null' \
    "8 machines over 10 Gbit/s: the all-reduces add hours"

# --hw: a new row, an override; --on picks rows
"$K" estimate --model tiny --tokens 1e6 --measure 0 --json --hw name=mybox,tflops=2,eff=0.5,price=1 \
    --hw name=h100-sxm,price=9 --on mybox,h100-sxm > hw.json
expect '[ "$(jq -c "[.rows[].name]" hw.json)" = "[\"this\",\"h100-sxm\",\"mybox\"]" ]' "--on: this machine and the rows named"
expect '[ "$(jq ".rows[] | select(.name == \"h100-sxm\") | .price" hw.json)" = 9 ]' "--hw overrides a field"
expect 'jq -e "(.rows[] | select(.name == \"mybox\")) | (.tokens_per_s * $(jq .step_flops_per_token hw.json) / 1e12 - 1) | fabs < 1e-6" hw.json >/dev/null' \
    "a row's tokens/s = peak x eff / FLOPs per token"

# fine-tuning: LoRA trains far fewer parameters and holds far less AdamW state
"$K" estimate --model small --tokens 1e6 --measure 0 --json --lora r=8 > lora.json
expect '[ "$(jq ".trainable < .params / 20 and .memory.optim < .memory.weights / 10" lora.json)" = true ]' "LoRA: few trainable parameters"

# a run that fits none of the chosen hardware: 2, and what would fit
expect_status 2 "$K" estimate "${gpt2[@]}" -B 64 --measure 0 --on rtx-4090 > /dev/null 2> fit.err
expect 'grep -q "more than --on rtx-4090 has (24 GB): -B 2[0-9] fits" fit.err' "too big: says which batch fits"
expect_status 2 "$K" estimate --layers 48 --dim 6400 --heads 50 --ctx 1024 --tokens 1e9 --measure 0 --on rtx-4090 > /dev/null 2> fit2.err
expect 'grep -q "even -B 1 does not" fit2.err' "far too big: says so"

# bad input
expect_status 2 "$K" estimate --model small --measure 0
for bad in "--tokens -1" "--tokens nan" "--tokens 0" "--tokens inf" "--machines 0" "--model huge" \
           "--tokens 1e6 -T 300" "--tokens 1e6 --steps 3" "--tokens 1e6 --lora r=0" \
           "--tokens 1e6 --freeze blocks:9" "--tokens 1e6 --hw name=x" "--tokens 1e6 --hw name=x,tflops=-2" \
           "--tokens 1e6 --hw name=h100-sxm,eff=2" "--tokens 1e6 --hw h100-sxm" "--tokens 1e6 --measure -1"; do
    # shellcheck disable=SC2086
    expect_status 2 "$K" estimate $bad --measure 0
done
expect_status 2 "$K" estimate --tokens 1e6 --measure 0 --on h100 2> on.err
expect 'grep -q "unknown hardware .h100.; did you mean h100-sxm" on.err' "unknown hardware: the closest name"
printf 'name=ok tflops=1\nname=bad tflops=abc\n' > bad.txt
expect_status 65 "$K" estimate --tokens 1e6 --measure 0 --hw-file bad.txt 2> bad.err
expect 'grep -q "bad.txt:2: tflops=abc" bad.err' "a bad row: the file and line"
expect_status 74 "$K" estimate --tokens 1e6 --measure 0 --hw-file missing.txt
KILN_HARDWARE=bad.txt expect_status 65 "$K" estimate --tokens 1e6 --measure 0
finish
