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
expect 'grep -q "^best  *runs/a/step-000010.safetensors$" err.txt' "summary: best checkpoint"
finish
