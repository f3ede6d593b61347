# pipelines/rlhf.sh --method ppo on a tiny byte model: with the judge itself as kiln ppo's
# reward stage (--rm-steps 0; a judge program counting vowels, so any machine runs it) the
# judge's mean held-out score rises and the KL to the base goes from 0 to positive; with a
# reward model in between (kiln reward as the co-process) the whole chain runs to its report
# with TRL's metrics in the PPO log.
. "$KILN_ROOT/tests/flow/rlhf_base.sh.inc"
common=(--base base/latest.safetensors --prompts prompts.txt --held 8 --judge 'cmd:tr -cd aeiou | wc -c'
    --max-new 16 --ppo-prompts 4 --method ppo)

"$P" "${common[@]}" --dry-run --out dry 2> dry.txt
expect 'grep -q "kiln ppo --init" dry.txt && grep -q "kiln reward --ckpt" dry.txt && [ ! -d dry ]' \
    "--method ppo --dry-run prints kiln ppo with kiln reward as its reward stage"

"$P" "${common[@]}" -K 4 --rm-steps 0 --lr 3e-3 --kl-coef 0.01 --iterations 10 --out judge > judge.log 2>&1
expect '[ -s judge/report.txt ]' "a report ($(tail -3 judge.log))"
b=$(jq .score judge/eval-before.json) a=$(jq .score judge/eval-after.json)
expect 'awk -v b="$b" -v a="$a" "BEGIN{exit !(a > b)}"' "PPO on the judge: the mean held-out score rises ($b -> $a)"
kb=$(jq .kl judge/eval-before.json) ka=$(jq .kl judge/eval-after.json)
expect 'awk -v b="$kb" -v a="$ka" "BEGIN{exit !(b * b < 1e-6 && a > 0)}"' "KL to the base: 0 before, positive after ($kb -> $ka)"

"$P" "${common[@]}" -K 2 --rm-steps 10 --steps 10 --accum 2 --lr 1e-2 --iterations 3 --data book.txt \
    --out rm > rm.log 2>&1
expect '[ -s rm/report.txt ] && grep -q "held-out bits/byte" rm/report.txt' "with a reward model: the report ($(tail -3 rm.log))"
expect 'jq -s -e "map(select(.t == \"metrics\")) | length == 3 and all(has(\"objective/kl\", \"objective/scores\", \"val/ratio\"))" rm/ppo-log.jsonl > /dev/null' \
    "three PPO iterations with TRL's metrics against kiln reward"
expect '[ -f rm/ppo/latest.safetensors ] && [ -f rm/rm/latest.safetensors ]' "the PPO policy and the reward model"
finish
