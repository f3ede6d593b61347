# kiln label without a person (tests/flow/label_tmux.sh has the terminal): bad input, no
# terminal, pref records from a label file with --export, and the TRL round trip of kiln
# show --trl and kiln load jsonl: (prompt, chosen and rejected kept exactly, unicode and
# newlines included).
. "$KILN_ROOT/tests/lib.sh"
PY=/usr/bin/python3

cat > roll.jsonl << 'EOF'
{"t":"rollout","id":3,"epoch":1,"src":"p","k":0,"prompt":"Say \"hi\"\n","completion":"héllo\n\tthere","prompt_tokens":{"dtype":"I32","data":[1,2]},"completion_tokens":{"dtype":"I32","data":[3,4,5]}}
{"t":"rollout","id":3,"epoch":1,"src":"p","k":1,"prompt":"Say \"hi\"\n","completion":"日本語 ☺","prompt_tokens":{"dtype":"I32","data":[1,2]},"completion_tokens":{"dtype":"I32","data":[6]}}
{"t":"rollout","id":3,"epoch":1,"src":"p","k":2,"prompt":"Say \"hi\"\n","completion":"bye","prompt_tokens":{"dtype":"I32","data":[1,2]},"completion_tokens":{"dtype":"I32","data":[7,8]}}
{"t":"rollout","id":4,"epoch":1,"src":"p","k":0,"prompt":"lonely","completion":"only one"}
EOF
"$K" import roll.jsonl > roll.rec

# No terminal (a new session has none): exit 2 naming the way out.
if command -v setsid > /dev/null; then
    expect_status 2 setsid -w "$K" label --labels l.jsonl --in roll.rec --out /dev/null 2> notty.err
    expect 'grep -q "no terminal" notty.err && grep -q -- "--export" notty.err' "no terminal: $(cat notty.err)"
fi
expect_status 2 "$K" label --in roll.rec --out /dev/null 2> /dev/null # --labels is required

# Records that are not rollouts, and a rollout without a completion: 65 with the reason.
printf '{"t":"sample","text":"x"}\n' | "$K" import > samples.rec
expect_status 65 "$K" label --labels l.jsonl --export --in samples.rec --out /dev/null 2> none.err
expect 'grep -q "no rollout records (1 records of other types)" none.err' "not rollouts: $(cat none.err)"
printf '{"t":"rollout","id":1,"prompt":"p"}\n' | "$K" import > nocomp.rec
expect_status 65 "$K" label --labels l.jsonl --export --in nocomp.rec --out /dev/null 2> nocomp.err
expect 'grep -q "record 1: a rollout without a completion" nocomp.err' "no completion: $(cat nocomp.err)"
printf 'not json\n' > broken.jsonl
expect_status 65 "$K" label --labels broken.jsonl --export --in roll.rec --out /dev/null 2> broken.err
expect 'grep -q "broken.jsonl:1:" broken.err' "a bad label file names its line: $(cat broken.err)"

# --export: prefs from a label file written elsewhere (hashes from a first export's keys).
expect_status 0 "$K" label --labels l.jsonl --all-pairs --export --in roll.rec --out none.rec 2> counts.err
expect 'grep -q "0 of 3 pairs labelled" counts.err' "--all-pairs: 3 pairs of 3 completions ($(head -1 counts.err))"
expect 'grep -q "1 prompts with a single completion skipped" counts.err' "the lonely prompt is counted"
# The pairs' hashes as kiln label computes them: FNV-1a of (length, bytes) of prompt, a, b.
$PY - roll.jsonl > l.jsonl << 'EOF'
import json, sys
def fnv(pieces):
    h = 0xcbf29ce484222325
    for p in pieces:
        for b in len(p).to_bytes(8, "little") + p:
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
rows = [json.loads(l) for l in open(sys.argv[1])][:3]
def line(label, a, b):
    key = [rows[0]["prompt"], rows[a]["completion"], rows[b]["completion"]]
    h = fnv([s.encode() for s in key])
    print(json.dumps({"label": label, "id": 3, "a": a, "b": b, "hash": "%016x" % h}))
line("right", 0, 1); line("tie", 0, 2); line("left", 1, 2); line("undo", 1, 2); line("left", 1, 2)
EOF
expect_status 0 "$K" label --labels l.jsonl --all-pairs --export --in roll.rec --out prefs.rec 2> /dev/null
"$K" show --full < prefs.rec > prefs.json
expect '[ "$(jq -s -c "map([.chosen, .rejected, .chosen_k, .rejected_k, .by, .id, .epoch])" prefs.json)" = "[[\"日本語 ☺\",\"héllo\\n\\tthere\",1,0,\"person\",3,1],[\"日本語 ☺\",\"bye\",1,2,\"person\",3,1]]" ]' \
    "right and left decisions become prefs; the tie none; undo then left counts once: $(jq -s -c "map([.chosen, .rejected])" prefs.json)"
expect '[ "$(jq -s -c "map([.prompt_tokens.data, .chosen_tokens.data, .rejected_tokens.data])" prefs.json)" = "[[[1,2],[6],[3,4,5]],[[1,2],[6],[7,8]]]" ]' \
    "prefs carry prompt, chosen and rejected tokens"

# TRL's JSON lines: kiln -> TRL -> kiln keeps prompt, chosen, rejected byte for byte.
"$K" show --trl < prefs.rec > trl.jsonl
expect '[ $(wc -l < trl.jsonl) = 2 ]' "one TRL line per pref"
expect '$PY -c "import json,sys; r=[json.loads(l) for l in open(\"trl.jsonl\")]; sys.exit(not (sorted(r[0]) == [\"chosen\",\"prompt\",\"rejected\"] and r[0][\"prompt\"] == \"Say \\\"hi\\\"\\n\" and r[0][\"rejected\"] == \"héllo\\n\\tthere\" and r[1][\"chosen\"] == \"日本語 ☺\"))"' \
    "Python's json reads the TRL lines with the exact texts"
"$K" load jsonl:trl.jsonl | "$K" show --trl > back.jsonl 2> back.err
expect 'cmp -s trl.jsonl back.jsonl' "kiln load jsonl: then kiln show --trl gives the same lines"
expect '[ ! -s back.err ]' "no record left out: $(cat back.err)"
# A file TRL (Python's json, ASCII escapes) wrote: its texts survive kiln.
$PY -c 'import json
for r in [{"prompt": "Q\u00e9\n", "chosen": "\u2603 a\r\nb", "rejected": "\"x\"\\"}, {"prompt": "", "chosen": "\u0001", "rejected": "z"}]:
    print(json.dumps(r))' > py.jsonl
"$K" load jsonl:py.jsonl | "$K" show --trl > py_back.jsonl
expect '$PY -c "import json,sys; a=[json.loads(l) for l in open(\"py.jsonl\")]; b=[json.loads(l) for l in open(\"py_back.jsonl\")]; sys.exit(a != b)"' \
    "TRL -> kiln -> TRL keeps every text: $(cat py_back.jsonl)"
"$K" show --trl < roll.rec > none.jsonl 2> none.err
expect '[ ! -s none.jsonl ] && grep -q "4 records without prompt, chosen and rejected" none.err' \
    "--trl leaves out records that are not pairs, and says how many: $(cat none.err)"
finish
