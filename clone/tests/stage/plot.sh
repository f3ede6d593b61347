# kiln plot: a PNG of the requested size from a metrics stream, every record passed
# through unchanged, usage errors (2), an unwritable PNG path (74), an empty stream.
. "$KILN_ROOT/tests/lib.sh"

# png_size FILE: "WIDTHxHEIGHT" from the IHDR chunk (bytes 16-23, big-endian).
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8 }'; }
is_png() { [ "$(od -An -tx1 -N8 "$1" | tr -d ' ')" = 89504e470d0a1a0a ]; }

for i in $(seq 1 60); do
    echo "{\"t\":\"metrics\",\"stage\":\"train\",\"step\":$i,\"loss\":$((100 - i)).5,\"lr\":0.001}"
    [ $((i % 20)) = 0 ] && echo "{\"t\":\"metrics\",\"stage\":\"eval\",\"split\":\"val\",\"step\":$i,\"loss\":$((90 - i)).25}"
done > m.jsonl
echo '{"t":"sample","text":"passes"}' >> m.jsonl
"$K" import m.jsonl > m.rec

expect_status 0 "$K" plot --png loss.png --in m.rec --out out.rec
expect 'is_png loss.png' "a PNG file"
expect '[ "$(png_size loss.png)" = 960x600 ]' "default size (got $(png_size loss.png))"
expect 'cmp -s <("$K" show < m.rec | sed "s/\"seq\":[0-9]*,//") <("$K" show < out.rec | sed "s/\"seq\":[0-9]*,//")' \
    "every record passes through unchanged"
expect '[ -z "$(ls -A | grep "^\.")" ]' "no temp file left"

expect_status 0 "$K" plot --png lr.png --field lr --log-y --width 320 --height 200 --scale 1 \
    --title "learning rate" --in m.rec --out /dev/null
expect '[ "$(png_size lr.png)" = 320x200 ]' "--width/--height (got $(png_size lr.png))"

# An empty stream still gives a (blank) chart.
"$K" import < /dev/null > empty.rec
expect_status 0 "$K" plot --png empty.png --in empty.rec --out /dev/null
expect 'is_png empty.png' "empty stream: a PNG"

expect_status 2 "$K" plot --in m.rec --out /dev/null 2> /dev/null
expect_status 2 "$K" plot --png x.png --width 10 --in m.rec --out /dev/null 2> /dev/null
expect_status 74 "$K" plot --png no/such/dir/x.png --in m.rec --out /dev/null 2> err.txt
expect 'grep -q "no/such/dir/x.png" err.txt' "unwritable path named: $(cat err.txt)"
expect '"$K" plot --help | head -1 | grep -q "^kiln plot — "' "help first line"

# --dir: one PNG per metric family, for metric names kiln does not know yet (RLHF's
# objective/..., rewards/..., retrieval's accuracy@k, recall@k, ndcg@10).
for i in $(seq 1 30); do
    echo "{\"t\":\"metrics\",\"stage\":\"train\",\"step\":$i,\"loss\":$((40 - i)),\"objective/kl\":0.$i,\"objective/rlhf_reward\":$i,\"rewards/margins\":1.$i,\"accuracy\":0.5,\"objective\":\"contrastive\",\"tokens\":100,\"elapsed_s\":$i}"
    [ $((i % 10)) = 0 ] && echo "{\"t\":\"metrics\",\"stage\":\"eval\",\"step\":$i,\"loss\":$((35 - i)),\"accuracy@1\":0.$i,\"accuracy@10\":0.9,\"recall@5\":0.7,\"ndcg@10\":0.6}"
done | "$K" import > fam.rec
expect_status 0 "$K" plot --dir plots --in fam.rec --out /dev/null
ls plots > fam.txt
printf '%s\n' accuracy.png accuracy@k.png loss.png ndcg@k.png objective.png recall@k.png rewards.png > want.txt
expect 'cmp -s want.txt fam.txt' "a PNG per family, no bookkeeping fields: $(tr '\n' ' ' < fam.txt)"
expect 'is_png plots/objective.png && is_png plots/accuracy@k.png' "family plots are PNGs"
expect_status 0 "$K" plot --png both.png --dir plots --in fam.rec --out /dev/null
expect 'is_png both.png' "--png and --dir together"
expect_status 74 "$K" plot --dir no/such/dir --in fam.rec --out /dev/null 2> err.txt
expect 'grep -q "no/such/dir: cannot create" err.txt' "an uncreatable --dir: $(cat err.txt)"
finish
