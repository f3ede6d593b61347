# kiln show --progress: progress lines (step of total, loss, eval, tokens/s) on stderr, no
# JSON lines on stdout, and a summary table with the best eval and the checkpoints.
. "$KILN_ROOT/tests/lib.sh"
cat > m.jsonl << 'EOF2'
{"t":"metrics","stage":"train","step":10,"loss":4.5,"tokens_per_s":1000.0}
{"t":"metrics","stage":"eval","split":"val","step":10,"loss":4.25,"bits_per_byte":6.2}
{"t":"saved","step":10,"path":"runs/a/step-000010.safetensors","eval_loss":4.25,"best":true}
{"t":"metrics","stage":"train","step":20,"loss":3.5,"tokens_per_s":3000.0}
{"t":"metrics","stage":"eval","split":"val","step":20,"loss":4.5,"bits_per_byte":6.5}
{"t":"saved","step":20,"path":"runs/a/step-000020.safetensors","eval_loss":4.5,"best":false}
EOF2
"$K" import < m.jsonl > m.rec
expect_status 0 "$K" show --progress --total 40 --in m.rec > out.txt 2> err.txt
expect '[ ! -s out.txt ]' "nothing on stdout"
expect 'grep -q "^step 10/40 \[#####---------------\] loss 4.5000  eval 4.2500  1.0k tok/s" err.txt' \
    "a progress line at the eval: $(head -2 err.txt)"
expect 'grep -q "^steps  *20 of 40$" err.txt' "summary: steps"
expect 'grep -q "^train loss  *4.5000 at step 10 -> 3.5000 at step 20$" err.txt' "summary: train loss"
expect 'grep -q "^eval loss  *4.5000 at step 20 (best 4.2500 at step 10), 6.5000 bits/byte$" err.txt' \
    "summary: eval: $(grep eval err.txt | tail -1)"
expect 'grep -q "^tokens/s  *2000$" err.txt' "summary: mean tokens/s"
expect 'grep -q "^best  *runs/a/step-000010.safetensors (no longer on disk)$" err.txt' \
    "summary: the best checkpoint, marked when --keep (or anyone) has deleted it since"
mkdir -p runs/a && : > runs/a/step-000020.safetensors
"$K" show --progress --in m.rec 2> err.txt
expect 'grep -q "^checkpoints  *2 written, last runs/a/step-000020.safetensors$" err.txt' \
    "a checkpoint still on disk is named plainly: $(grep checkpoints err.txt)"

# Other metrics, by family: an objective's (a prefix before '/'), retrieval's (@k).
cat > fam.jsonl << 'EOF2'
{"t":"metrics","stage":"train","step":5,"loss":2,"objective/kl":0.5,"objective/rlhf_reward":1,"accuracy":0.25,"objective":"contrastive","tokens":64,"elapsed_s":1}
{"t":"metrics","stage":"train","step":10,"loss":1,"objective/kl":0.125,"objective/rlhf_reward":3,"accuracy":0.75,"objective":"contrastive","tokens":64,"elapsed_s":2}
{"t":"metrics","stage":"eval","step":10,"loss":1.5,"accuracy@1":0.5,"accuracy@10":0.875,"ndcg@10":0.625}
EOF2
"$K" import < fam.jsonl | "$K" show --progress 2> err.txt
expect 'grep -q "^train objective kl 0.1250 rlhf_reward 3.0000  (step 10)$" err.txt' "objective/ family: $(grep objective err.txt)"
expect 'grep -q "^train accuracy  *0.7500  (step 10)$" err.txt' "a plain metric: $(grep "train accuracy" err.txt)"
expect 'grep -q "^eval accuracy@k @1 0.5000 @10 0.8750  (step 10)$" err.txt' "@k family: $(grep accuracy@ err.txt)"
expect 'grep -q "^eval ndcg@k  *@10 0.6250  (step 10)$" err.txt' "ndcg: $(grep ndcg err.txt)"
expect '! grep -Eq "tokens |elapsed" err.txt' "no bookkeeping fields"

# A resumed run's log: elapsed_s starts again; the summary sums the segments.
cat > seg.jsonl << 'EOF2'
{"t":"metrics","stage":"train","step":10,"loss":2,"elapsed_s":60}
{"t":"metrics","stage":"train","step":20,"loss":1.5,"elapsed_s":120}
{"t":"metrics","stage":"train","step":30,"loss":1.2,"elapsed_s":50}
EOF2
"$K" import < seg.jsonl | "$K" show --progress 2> err.txt
expect 'grep -q "(the whole run: 2m50s of training in 2 segments)" err.txt' "segments summed: $(grep ^time err.txt)"
finish
