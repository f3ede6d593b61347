# tools/runs.jq — one line about a run from its metrics.jsonl (README.md, "A run directory"):
#   for run in runs/*/; do jq -rs --arg run "$run" -f tools/runs.jq "$run/metrics.jsonl"; done
# prints "runs/moby/  3000 steps  4m06s of training  best eval 1.5460 at step 3000".
# A resumed run's train metrics restart elapsed_s at each segment: the segments are summed.
(map(select(.stage == "train"))) as $train
| (map(select(.stage == "eval" and .loss != null)) | min_by(.loss)) as $best
| ($train
   | reduce .[] as $m ({done: 0, last: 0};
       if ($m.elapsed_s // 0) < .last then {done: (.done + .last), last: ($m.elapsed_s // 0)}
       else .last = ($m.elapsed_s // 0) end)
   | .done + .last | floor) as $s
| [$run,
   "\($train | last | .step // 0) steps",
   "\($s / 60 | floor)m\($s % 60 | tostring | if length < 2 then "0" + . else . end)s of training",
   if $best then "best eval \($best.loss * 10000 | round / 10000) at step \($best.step)"
   else "no eval yet" end]
| join("  ")
