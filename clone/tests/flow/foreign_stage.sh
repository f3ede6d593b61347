# Stages in other languages (docs/writing-a-stage.md): examples/stages/kiln-lower (Python,
# python3-msgpack) and kiln-keep (shell) installed through KILN_EXEC_PATH, listed by `kiln`
# with their descriptions, run inside real pipelines, refusing bad input with kiln's exit
# codes, quiet on a closed pipe, and kiln-lower as two workers of a ZeroMQ fan-out
# (python3-zmq) between kiln's own stages.  Also: what kiln says to a foreign stage that
# breaks a rule (tensor data as a str, text as a bin).
. "$KILN_ROOT/tests/lib.sh"
py=/usr/bin/python3
$py -c 'import msgpack' 2> /dev/null || skip "python3-msgpack is not installed (make test-deps)"
command -v jq > /dev/null || skip "jq is not installed (make test-deps)"
export KILN_EXEC_PATH="$KILN_ROOT/examples/stages" PATH="$KILN_BIN:$PATH"

# ---- listed with a description ---------------------------------------------------------------
kiln > list.txt
expect 'grep -Eq "^  lower +lowercase the text of sample records \(a stage in Python\)$" list.txt' \
    "kiln lists the Python stage: $(grep lower list.txt)"
expect 'grep -Eq "^  keep +keep the sample records for which a jq test holds" list.txt' \
    "kiln lists the shell stage: $(grep keep list.txt)"

# ---- in a pipeline -----------------------------------------------------------------------------
printf 'Call me Ishmael.\nThe WHITE Whale\n\nA whale-ship was my Yale College\nOars\n' > book.txt
kiln load text:book.txt --split lines | kiln lower | kiln keep '.text | test("whale")' \
    | kiln tokenize --bytes | kiln detok > out.txt
printf 'the white whale\na whale-ship was my yale college\n' > want.txt
expect 'cmp -s want.txt out.txt' "load | lower | keep | tokenize | detok: $(cat out.txt)"
kiln load text:book.txt --split lines | kiln lower | kiln show --all > lower.jsonl
expect 'head -1 lower.jsonl | jq -e ".stage == \"kiln lower\" and .chain == [\"kiln load\", \"kiln lower\"] and .schema == \"sample\"" > /dev/null' \
    "the hdr names the stage and extends the chain: $(head -1 lower.jsonl)"
expect 'tail -1 lower.jsonl | jq -e ".t == \"eos\" and .count == 4 and .status == \"ok\"" > /dev/null' \
    "the eos counts the records: $(tail -1 lower.jsonl)"
expect_status 0 kiln lower --help > help.txt
expect 'head -1 help.txt | grep -q "^kiln-lower — "' "--help starts with its one line"

# ---- the rules, kept ---------------------------------------------------------------------------
expect_status 2 kiln lower --bogus < /dev/null 2> err.txt
expect 'grep -q "^kiln lower: unknown option" err.txt' "a bad option is a usage error: $(cat err.txt)"
kiln load text:book.txt --split lines | head -c 100 > cut.rec
expect_status 74 kiln lower < cut.rec > /dev/null 2> err.txt
expect 'grep -q "upstream ended without end-of-stream" err.txt' "a truncated stream is 74: $(cat err.txt)"
expect_status 65 kiln lower < book.txt > /dev/null 2> err.txt
expect 'grep -q "^kiln lower: stdin: the stream does not start with a hdr record" err.txt' \
    "text instead of records is bad data (65): $(cat err.txt)"
kiln load text:book.txt --split lines --epochs 0 2> /dev/null | kiln lower | head -c 1000 > /dev/null
st=("${PIPESTATUS[@]}")
expect '[ "${st[*]}" = "0 0 0" ]' "a closed pipe downstream: everyone exits 0 (${st[*]})"
kiln import < /dev/null | timeout 20 kiln lower | kiln show --all > /dev/null 2> err.txt
expect '[ ! -s err.txt ]' "an empty stream passes quietly"

# What kiln says when a stage in another language breaks a rule.
$py -c 'import msgpack, sys
w = sys.stdout.buffer.write
w(msgpack.packb({"t": "hdr", "seq": 0, "v": 1, "stage": "mine", "chain": ["mine"]}))
w(msgpack.packb({"t": "sample", "seq": 1, "image": {"dtype": "U8", "shape": [2], "data": "ab"}}))
w(msgpack.packb({"t": "eos", "seq": 2, "count": 1, "status": "ok"}))' > str-tensor.rec
expect_status 65 kiln show --in str-tensor.rec > /dev/null 2> err.txt
expect 'grep -q "tensor data must be a MessagePack bin, not a str" err.txt' "tensor data as a str: $(cat err.txt)"
$py -c 'import msgpack, sys
w = sys.stdout.buffer.write
w(msgpack.packb({"t": "hdr", "seq": 0, "v": 1, "stage": "mine", "chain": ["mine"]}))
w(msgpack.packb({"t": "sample", "seq": 1, "text": b"bytes"}))
w(msgpack.packb({"t": "eos", "seq": 2, "count": 1, "status": "ok"}))' > bin-text.rec
expect_status 65 kiln tokenize --bytes --in bin-text.rec > /dev/null 2> err.txt
expect 'grep -q "record 1: .text. must be a MessagePack str (UTF-8 text), not a bin" err.txt' "text as a bin: $(cat err.txt)"

# ---- a ZeroMQ fan-out with two Python workers -------------------------------------------------
if $py -c 'import zmq' 2> /dev/null; then
    seq 1 300 | sed 's/^/Line NUMBER /' > lines.txt
    kiln load text:lines.txt --split lines --out "@ipc://$PWD/feed" --fan-out 2 2> load.err &
    loader=$!
    kiln lower --in "ipc://$PWD/feed" --out ">ipc://$PWD/done" 2> w1.err &
    w1=$!
    kiln lower --in "ipc://$PWD/feed" --out ">ipc://$PWD/done" 2> w2.err &
    w2=$!
    timeout 60 kiln show --in "@ipc://$PWD/done" --fan-in 2 > fan.jsonl 2> fan.err
    expect_status 0 wait $loader
    expect_status 0 wait $w1
    expect_status 0 wait $w2
    jq -r 'select(.t == "sample") | .text' fan.jsonl | sort > got.txt
    tr 'A-Z' 'a-z' < lines.txt | sort > want.txt
    expect 'cmp -s want.txt got.txt' \
        "every record went through one of the two Python workers once ($(wc -l < got.txt) of 300; $(cat fan.err w1.err w2.err load.err | head -3))"
else
    echo "python3-zmq is not installed: the fan-out part is skipped"
fi
finish
