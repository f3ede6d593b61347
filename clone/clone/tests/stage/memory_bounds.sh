# kiln shuffle and kiln batch --ordered bound their buffers in bytes as well as records
# (README.md, "Memory bounds"): 240 records of 256 KiB (60 MiB) through an 8 MiB bound stay
# far below the stream's size, and every record still comes out.
. "$KILN_ROOT/tests/lib.sh"
peak_kb() { # peak_kb CMD...: run it, print its peak RSS in KiB (stdout to /dev/null)
    python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -rc)' "$@"
}
python3 -c '
import sys
t = "x" * 262144
for i in reversed(range(240)):
    sys.stdout.write("{\"t\":\"sample\",\"id\":%d,\"epoch\":0,\"text\":\"%s\"}\n" % (i, t))' \
    | "$K" import > big.rec
"$K" show < big.rec | jq -c .id | sort > ids.txt

# shuffle: every record out once, in another order; memory bounded by --max-bytes
"$K" shuffle --seed 3 --max-bytes $((8 << 20)) < big.rec | "$K" show | jq -c .id > shuf.txt
expect 'cmp -s ids.txt <(sort shuf.txt) && ! cmp -s shuf.txt <(sort -r ids.txt)' \
    "shuffle --max-bytes: every record once, shuffled"
"$K" shuffle --seed 3 -n 4 < big.rec | "$K" show | jq -c .id > n4.txt
"$K" shuffle --seed 3 -n 4 --max-bytes $((1 << 40)) < big.rec | "$K" show | jq -c .id > n4b.txt
expect 'cmp -s n4.txt n4b.txt' "with the count bound alone the order is as before"
if [ -z "${KILN_SAN:-}" ]; then # sanitizers multiply memory
    kb=$(peak_kb "$K" shuffle --in big.rec --out - --max-bytes $((8 << 20)))
    expect '[ "$kb" -gt 0 ] && [ "$kb" -lt 45000 ]' "shuffle --max-bytes 8 MiB: peak RSS $kb KiB (< 45 MB)"
fi

# batch --ordered: records arrive in reverse; the reorder buffer holds at most 8 MiB
"$K" tokenize --bytes < big.rec > tok.rec
if [ -z "${KILN_SAN:-}" ]; then
    kb=$(peak_kb "$K" batch -B 1 -T 8 --ordered --window-bytes $((8 << 20)) --in tok.rec --out - 2> /dev/null)
    expect '[ "$kb" -gt 0 ] && [ "$kb" -lt 45000 ]' "batch --ordered --window-bytes 8 MiB: peak RSS $kb KiB (< 45 MB)"
fi
"$K" batch -B 1 -T 8 --ordered --window-bytes $((8 << 20)) < tok.rec 2> /dev/null | "$K" show | jq -c .x > x.txt
expect '[ "$(wc -l < x.txt)" = 240 ]' "batch --ordered with a byte bound: every record batched ($(wc -l < x.txt))"

# batch --pack holds about two rows of the stream, not copies of the record: one record of
# 8 Mi tokens (32 MiB) stays near the reader's one copy (it used to take over 3 of them).
python3 -c 'import sys; sys.stdout.write("{\"t\":\"sample\",\"id\":0,\"text\":\"" + "abcdefgh" * (1 << 20) + "\"}\n")' \
    | "$K" import | "$K" tokenize --bytes > one.rec
"$K" batch -B 8 -T 64 --pack < one.rec | "$K" show | jq -c .x.shape > rows.txt
expect '[ "$(wc -l < rows.txt)" = 16384 ] && [ "$(sort -u rows.txt)" = "[8,64]" ]' \
    "batch --pack of one long record: every row batched ($(wc -l < rows.txt) batches)"
if [ -z "${KILN_SAN:-}" ]; then
    kb=$(peak_kb "$K" batch -B 8 -T 64 --pack --in one.rec --out -)
    expect '[ "$kb" -gt 0 ] && [ "$kb" -lt 60000 ]' "batch --pack of a 32 MiB record: peak RSS $kb KiB (< 60 MB)"
fi
finish
