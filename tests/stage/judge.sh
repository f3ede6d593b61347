# kiln judge: each built-in judge (afinn mean and sum, words, repetition, length, brightness) and
# --cmd, as --score (a reward on every rollout) and --pairs (best vs worst per prompt, ties
# skipped and counted), a --cmd program that echoes more than a pipe holds as it reads; bad
# input: a judge program that fails (74) or prints garbage (65), a malformed or missing
# lexicon, a rollout without logprobs, no judge named (2).
. "$KILN_ROOT/tests/lib.sh"
fx="$KILN_ROOT/tests/fixtures/rlhf"
lex="$fx/afinn-mini.txt"
py=/usr/bin/python3
"$py" -c 'import msgpack' 2> /dev/null || skip "needs /usr/bin/python3 with msgpack"
cat > in.jsonl << 'EOF2'
{"id":0,"k":0,"prompt":"The day","completion":" was sad and bad.","ended":true}
{"id":0,"k":1,"prompt":"The day","completion":" was a good, happy day!","ended":true}
{"id":1,"k":0,"prompt":"I","completion":" love the sea"}
{"id":1,"k":1,"prompt":"I","completion":" hate the sea"}
{"id":2,"k":0,"prompt":"","completion":"whale whale whale whale"}
{"id":2,"k":1,"prompt":"","completion":"ship ship ship ship"}
EOF2
"$py" "$fx/rollouts.py" r.rec < in.jsonl
j() { "$K" judge --in r.rec "$@"; }
rows() { "$K" show | jq -s -c "map(select(.t == \"$1\")) | map($2)"; }

j afinn --lexicon "$lex" 2> said.txt | rows pref '[.id, .chosen_score, .rejected_score]' > p.json
expect '[ "$(cat p.json)" = "[[0,1.2,-1.25],[1,1,-1]]" ]' "afinn pairs: the mean valence per word, best vs worst ($(cat p.json))"
expect 'grep -q "3 prompts, 2 pairs, 1 skipped" said.txt' "the tie is counted ($(cat said.txt))"
j afinn --lexicon "$lex" 2> /dev/null | "$K" show --all > p.jsonl
expect 'jq -s -e ".[0].schema == \"pref\" and (.[1] | .by == \"judge:afinn\" and .chosen == \" was a good, happy day!\" and .rejected == \" was sad and bad.\" and .prompt == \"The day\" and .chosen_tokens.shape == [24] and .rejected_tokens.shape == [18] and .prompt_tokens.shape == [7])" p.jsonl > /dev/null' \
    "a pref record: texts, tokens (EOS kept), by"
j --score afinn --lexicon "$lex" --sum | rows rollout '[.reward, .judge]' > s.json
expect '[ "$(cat s.json)" = "[[-5,\"afinn\"],[6,\"afinn\"],[3,\"afinn\"],[-3,\"afinn\"],[0,\"afinn\"],[0,\"afinn\"]]" ]' \
    "--score --sum: the sum on every rollout ($(cat s.json))"
j --score words --words "$fx/words-mini.txt" | rows rollout .reward > w.json
expect '[ "$(cat w.json)" = "[0.5,0.8,1,1,1,1]" ]' "words: the share in the list ($(cat w.json))"
j --score repetition --ngram 5 | rows rollout .reward | jq -e '.[4] < -0.6 and .[1] == 0' > /dev/null
expect '[ $? = 0 ]' "repetition: a word over and over is penalised"
j --score length --target 13 | rows rollout .reward | jq -e '.[2] == 0 and .[0] == (-4/13)' > /dev/null
expect '[ $? = 0 ]' "length: minus the distance from the target (EOS not counted)"

# --cmd: any program scores, once per rollout, stdin the completion, the prompt in the environment
j --score --cmd 'wc -w' | rows rollout .reward > c.json
expect '[ "$(cat c.json)" = "[4,5,3,3,4,4]" ]' "--cmd wc -w ($(cat c.json))"
j --cmd 'case "$KILN_PROMPT" in I) grep -c love; true;; *) echo 0;; esac' 2> /dev/null \
    | rows pref '[.id, .chosen, (.by | startswith("judge:cmd:case"))]' > e.json
expect '[ "$(cat e.json)" = "[[1,\" love the sea\",true]]" ]' "--cmd sees KILN_PROMPT ($(cat e.json))"
j --cmd 'echo lots' > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "record 1 (id 0, k 0): .echo lots. printed .lots., not a number" err.txt' \
    "a program printing garbage: 65, naming record and program (got $rc: $(cat err.txt))"
j --cmd 'echo nan' > /dev/null 2> /dev/null
expect '[ $? = 65 ]' "NaN is no score"
j --score --cmd 'cat > /dev/null; exit 3' > out.rec 2> err.txt
rc=$?
expect '[ $rc = 74 ] && grep -q "exited with status 3" err.txt' "a program that fails: 74 (got $rc: $(cat err.txt))"
"$K" show --all --in out.rec > out.jsonl 2> /dev/null
expect 'tail -1 out.jsonl | grep -q "\"status\":\"error\""' "the downstream hears of it"
j --cmd 'no-such-program-xyz' > /dev/null 2> /dev/null
expect '[ $? = 74 ]' "a program that is not there: 74"

# --cmd: a program that answers as it reads (awk echoes each line) with more than a pipe's
# worth each way (~220 KiB a rollout): the text goes in while the echo comes out, no deadlock;
# the score is its last line, the echo before it is ignored
"$py" -c '
import json
for k in range(4):
    text = "".join("line %d of a long completion\n" % i for i in range(8000 + k))
    print(json.dumps({"id": 9, "k": k, "prompt": "p", "completion": text}))' > big.jsonl
"$py" "$fx/rollouts.py" big.rec < big.jsonl
timeout -k 5 60 "$K" judge --score --in big.rec --cmd 'awk "{ print } END { print NR }"' \
    2> err.txt | rows rollout .reward > big.json
expect '[ "$(cat big.json)" = "[8000,8001,8002,8003]" ]' \
    "--cmd echoing >64 KiB as it reads: no deadlock, the last line scores ($(cat big.json) $(cat err.txt))"
j --cmd 'echo 1; echo lots' > /dev/null 2> err.txt
expect 'grep -q "printed .lots., not a number" err.txt' "the last line must be the number ($(cat err.txt))"

# images: the mean brightness
cat > img.jsonl << 'EOF2'
{"id":0,"k":0,"label":"Bag","image":[[0,0],[0,255]]}
{"id":0,"k":1,"label":"Bag","image":[[255,255],[255,0]]}
EOF2
"$py" "$fx/rollouts.py" img.rec < img.jsonl
"$K" judge brightness --in img.rec 2> /dev/null | rows pref '[.prompt, .chosen_score, .rejected_score]' > b.json
expect '[ "$(cat b.json)" = "[[\"Bag\",0.75,0.25]]" ]' "brightness pairs ($(cat b.json))"
expect_status 65 j brightness > /dev/null 2> /dev/null

# bad input
printf 'love 3\n' > bad.txt
j afinn --lexicon bad.txt > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "bad.txt:1" err.txt' "a malformed lexicon: 65 naming file:line (got $rc)"
KILN_CACHE=$PWD/none j afinn > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 74 ] && grep -q "tools/afinn.sh" err.txt' "no lexicon installed: 74, says how (got $rc)"
"$py" "$fx/drop_field.py" r.rec nolp.rec 1 logprobs
"$K" judge --score length --in nolp.rec > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "record 1 (rollout): no .logprobs." err.txt' "a rollout without logprobs: 65 (got $rc: $(cat err.txt))"
expect_status 2 "$K" judge --in r.rec 2> /dev/null
expect_status 2 "$K" judge sentiment --in r.rec 2> /dev/null
expect_status 2 "$K" judge afinn --cmd 'wc -w' --in r.rec 2> /dev/null
finish
