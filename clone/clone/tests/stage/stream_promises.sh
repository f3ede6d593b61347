# Promises between processes (issue #15): a failure upstream is a failure downstream, and
# concatenated record files are read whole (README.md, "Exit codes, signals and closed
# pipes"; "The record stream (format)").
. "$KILN_ROOT/tests/lib.sh"
printf '{"t":"sample","id":1}\n{"t":"sample","id":2}\n' | "$K" import > a.rec
printf '{"t":"sample","id":3}\n' | "$K" import > b.rec
# An upstream that failed: the same stream ending in eos {status: "error"}.
python3 - a.rec err.rec << 'PY'
import sys
raw = open(sys.argv[1], "rb").read()
assert raw.endswith(b"\xa6status\xa2ok")
open(sys.argv[2], "wb").write(raw[:-len(b"\xa2ok")] + b"\xa5error")
PY

# ---- an upstream eos of error: passed on, and the exit status says so (74) -------------------
"$K" cat < err.rec > out.rec 2> err.txt
rc=$?
expect '[ $rc = 74 ]' "cat of a failed stream exits 74"
expect 'grep -q "upstream failed" err.txt' "the message says the upstream failed ($(cat err.txt))"
"$K" show --all < out.rec > out.jsonl 2> /dev/null
expect 'tail -1 out.jsonl | grep -q "\"count\":2,\"status\":\"error\""' "the records and eos error passed on"
expect_status 74 "$K" ckpt --dir runs < err.rec > /dev/null 2> /dev/null
expect_status 74 "$K" show < err.rec > /dev/null 2> /dev/null
sh -c '"$0" cat < "$1" | "$0" show > /dev/null 2>&1' "$K" err.rec # no pipefail
rc=$?
expect '[ $rc = 74 ]' "the last stage of a pipeline without pipefail fails too"
expect_status 0 "$K" cat < a.rec > /dev/null

# ---- concatenated streams: every hdr...eos segment is read, each count checked --------------
cat a.rec b.rec | "$K" show > both.jsonl 2> err.txt
rc=$?
expect '[ $rc = 0 ] && [ "$(grep -c "\"t\":\"sample\"" both.jsonl)" = 3 ]' \
    "cat a.rec b.rec | kiln show shows both streams ($(cat both.jsonl err.txt | tr '\n' ' '))"
cat a.rec b.rec a.rec | "$K" cat | "$K" show --all > all.jsonl
expect 'tail -1 all.jsonl | grep -q "\"count\":5,\"status\":\"ok\""' "kiln cat merges them into one stream of 5"
# A second segment whose eos count disagrees: records lost, 74.
python3 - b.rec short.rec << 'PY'
import sys
raw = bytearray(open(sys.argv[1], "rb").read())
i = raw.rindex(b"\xa5count\xcf") + 7
raw[i + 7] = 9
open(sys.argv[2], "wb").write(raw)
PY
cat a.rec short.rec | "$K" show > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 74 ] && grep -q "stream 2: upstream sent 9 records but 1 arrived" err.txt' \
    "a bad count in the second stream: 74 ($(cat err.txt))"
# What follows the last eos must be a stream.
cat a.rec > junk.rec; printf 'garbage' >> junk.rec
"$K" show < junk.rec > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "stdin: bad record 4" err.txt' "bytes after the last eos: 65 ($(cat err.txt))"
{ cat a.rec; tail -c +$(( $(head -c 200 b.rec | grep -boa 'sample' | head -1 | cut -d: -f1) - 3 )) b.rec; } > tail.rec
"$K" show < tail.rec > /dev/null 2> err.txt
rc=$?
expect '[ $rc = 65 ] && grep -q "after the end of stream 1" err.txt' "a record after the eos without a hdr: 65 ($(cat err.txt))"
finish
