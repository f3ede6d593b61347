# The reader on hostile and truncated input: 65 for bad records, 74 for truncation,
# never a crash or a hang, and fast failure on length headers that lie.
. "$KILN_ROOT/tests/lib.sh"

printf '{"t":"sample","id":1,"text":"hi","x":{"dtype":"F32","data":[[1,2],[3,4]]}}\n{"t":"metrics","step":3,"loss":2.5}\n' \
    | "$K" import > good.rec
expect '[ $("$K" show < good.rec | wc -l) = 2 ]' "the good stream shows two records"

# Truncated at every byte offset: 65 or 74 each time, never anything else.
size=$(stat -c %s good.rec)
for ((i = 0; i < size; i++)); do
    head -c $i good.rec | timeout 5 "$K" show >/dev/null 2>err.txt
    rc=$?
    if [ $rc != 74 ] && [ $rc != 65 ]; then echo "FAIL: cut at $i gave exit $rc" >&2; fails=$((fails + 1)); fi
done
head -c $((size - 3)) good.rec | "$K" show >/dev/null 2>err.txt
expect 'grep -q "upstream ended without end-of-stream (did it crash?)" err.txt' "truncation message"

HDR='\x82\xa1t\xa3hdr\xa3seq\x00'              # {t:"hdr", seq:0}
REC='\x83\xa1t\xa6sample\xa3seq\x01\xa1x'       # {t:"sample", seq:1, x: <value follows>
# show_open BYTES: feed BYTES through a pipe that stays open, as a stalled upstream would;
# sets rc and secs.  A lying length header must fail at once, not wait for the data.
show_open() {
    rm -f fifo; mkfifo fifo
    (printf "$1"; sleep 10) > fifo & local feeder=$!
    local t0=$(date +%s%N)
    timeout 5 "$K" show < fifo > /dev/null 2> err.txt; rc=$?
    secs=$(( ($(date +%s%N) - t0) / 1000000000 ))
    kill $feeder 2>/dev/null; wait $feeder 2>/dev/null
}
# A map32 header claiming 4 billion entries: refused at once.
show_open '\xdf\xff\xff\xff\xff'
expect '[ $secs -lt 2 ]' "map32 refused without waiting"
expect '[ $rc = 65 ]' "map32 of 4 billion entries exits 65 (got $rc)"
expect 'grep -q "over the limit" err.txt' "map32 message names the limit"
# A bin32 claiming 4 GB: refused from its header.
show_open "$HDR$REC"'\xc6\xff\xff\xff\xf0'
expect '[ $rc = 65 ] && [ $secs -lt 2 ]' "bin32 of 4 GB exits 65 at once (got $rc after ${secs}s)"
expect 'grep -q "record 1 at byte offset" err.txt' "message names the record and offset"
# Nesting 100 deep.
deep=$(printf '\\x91%.0s' $(seq 100))
printf "$HDR$REC$deep"'\xc0' | "$K" show 2>err.txt; rc=$?
expect '[ $rc = 65 ]' "nesting 100 deep exits 65 (got $rc)"
# An unknown dtype, and data that does not match the shape.
printf "$HDR$REC"'\x83\xa5dtype\xa3F99\xa5shape\x91\x01\xa4data\xc4\x04AAAA' | "$K" show 2>err.txt; rc=$?
expect '[ $rc = 65 ] && grep -q "unknown tensor dtype" err.txt' "unknown dtype exits 65 (got $rc)"
printf "$HDR$REC"'\x83\xa5dtype\xa3F32\xa5shape\x91\x02\xa4data\xc4\x04AAAA' | "$K" show 2>err.txt; rc=$?
expect '[ $rc = 65 ] && grep -q "does not match its shape" err.txt' "shape/data mismatch exits 65 (got $rc)"
# Not a hdr first; not MessagePack at all; a record without seq.
printf '\x82\xa1t\xa3eos\xa3seq\x00' | "$K" show 2>err.txt; rc=$?
expect '[ $rc = 65 ] && grep -q "does not start with a hdr" err.txt' "missing hdr exits 65 (got $rc)"
printf '\xc1' | "$K" show 2>/dev/null; rc=$?
expect '[ $rc = 65 ]' "garbage exits 65 (got $rc)"
printf '\x81\xa1t\xa3hdr' | "$K" show 2>err.txt; rc=$?
expect '[ $rc = 65 ] && grep -q "seq" err.txt' "record without seq exits 65 (got $rc)"
# A record over the size limit (KILN_MAX_RECORD) is refused from its header.
printf '{"t":"sample","text":"%s"}\n' "$(head -c 5000 /dev/zero | tr '\0' a)" | "$K" import > big.rec
KILN_MAX_RECORD=1000 "$K" show < big.rec >/dev/null 2>err.txt; rc=$?
expect '[ $rc = 65 ] && grep -q "1000-byte limit" err.txt' "record over KILN_MAX_RECORD exits 65 (got $rc)"
# Bad JSON into import: 65 with file and line.
printf '{"t":"sample"}\n{"t":' | "$K" import > /dev/null 2>err.txt; rc=$?
expect '[ $rc = 65 ] && grep -q "stdin:2:" err.txt' "bad JSON names the line (got $rc)"
finish
