# pipelines/rlhf.sh --method dpo --labeller judge on a tiny byte model: rollouts of the base,
# a judge program's preferences (`--judge cmd:...`: the vowels a completion has, so any
# machine runs it without the AFINN lexicon), a reward model with held-out pairwise accuracy,
# DPO, and the report: the judge's mean score rises, the KL to the base is 0 before and
# positive after, held-out bits/byte before and after, samples side by side.
. "$KILN_ROOT/tests/flow/rlhf_base.sh.inc"

"$P" --help > help.txt
expect 'grep -q -- "--labeller" help.txt' "--help lists the options"
expect_status 2 "$P" --base base/latest.safetensors --prompts prompts.txt --held 40 --out x 2> /dev/null
"$P" --base base/latest.safetensors --prompts prompts.txt --held 8 --dry-run --out dry 2> dry.txt
expect 'grep -q "kiln logps" dry.txt && grep -q "objective dpo" dry.txt && [ ! -d dry ]' "--dry-run prints the chain and writes nothing"

"$P" --base base/latest.safetensors --prompts prompts.txt --held 8 --judge 'cmd:tr -cd aeiou | wc -c' \
    -K 2 --max-new 16 --steps 20 --rm-steps 10 --accum 2 --lr 1e-2 --data book.txt --samples 3 \
    --out run > run.log 2>&1
expect '[ -s run/report.txt ]' "a report ($(tail -3 run.log))"
expect 'grep -q "kiln judge --pairs" run.log && grep -q "objective reward" run.log' "the chain is printed"
b=$(jq .score run/eval-before.json) a=$(jq .score run/eval-after.json)
expect 'awk -v b="$b" -v a="$a" "BEGIN{exit !(a > b)}"' "the judge's mean score rises ($b -> $a)"
kb=$(jq .kl run/eval-before.json) ka=$(jq .kl run/eval-after.json)
expect 'awk -v b="$kb" -v a="$ka" "BEGIN{exit !(b * b < 1e-6 && a > 0)}"' "KL to the base: 0 before, positive after ($kb -> $ka)"
expect 'grep -q "reward model held-out pairwise accuracy" run/report.txt' "the reward model's held-out accuracy"
expect 'grep -q "held-out bits/byte" run/report.txt' "held-out bits/byte before and after"
expect '[ "$(sed -n "/^samples/,\$p" run/report.txt | tail -n +2 | grep -c " | ")" = 3 ]' "three samples before and after"
expect '[ -f run/dpo/latest.safetensors ] && [ -f run/rm/latest.safetensors ]' "the DPO model and the reward model"
finish
