# A closed downstream ends a stage quietly (exit 0, no message); SIGINT/SIGTERM end it
# after the current record with eos{status:"interrupted"} written and exit 130/143.
. "$KILN_ROOT/tests/lib.sh"
seq 1 50000 | awk '{printf "{\"t\":\"sample\",\"id\":%d,\"text\":\"some text to make it longer\"}\n", $1}' > big.jsonl

"$K" import big.jsonl 2> err.txt | head -c 100 > /dev/null
rc=${PIPESTATUS[0]}
expect '[ $rc = 0 ] && [ ! -s err.txt ]' "import into a closed pipe: exit 0, quiet (got $rc)"
"$K" import big.jsonl > big.rec
"$K" show < big.rec 2> err.txt | head -1 > /dev/null
rc=${PIPESTATUS[0]}
expect '[ $rc = 0 ] && [ ! -s err.txt ]' "show into a closed pipe: exit 0, quiet (got $rc)"
"$K" cat < big.rec 2> err.txt | "$K" show 2>/dev/null | head -1 > /dev/null
expect '[ ! -s err.txt ]' "cat upstream of a closed pipe says nothing"

interrupt() { # signal, expected status
    rm -f fifo out.rec; mkfifo fifo
    "$K" cat < fifo > out.rec 2> err.txt & pid=$!
    exec 3> fifo
    head -c $(( $(stat -c %s big.rec) / 2 )) big.rec >&3  # half a stream, then it stalls
    sleep 0.5
    kill -"$1" $pid; wait $pid; rc=$?
    exec 3>&-
    expect "[ \$rc = $2 ]" "SIG$1: exit $2 (got $rc)"
    "$K" show --all < out.rec > out.jsonl 2>/dev/null
    expect 'tail -1 out.jsonl | grep -q "\"t\":\"eos\".*\"status\":\"interrupted\""' "SIG$1: eos interrupted written"
    n=$(grep -c '"t":"sample"' out.jsonl)
    expect '[ $n -gt 1000 ]' "SIG$1: records before the stop were kept ($n)"
}
interrupt INT 130
interrupt TERM 143

# import interrupted while waiting for input
rm -f fifo; mkfifo fifo
"$K" import < fifo > imp.rec 2> err.txt & pid=$!
exec 3> fifo; printf '{"t":"a"}\n{"t":"b"}\n' >&3; sleep 0.5
kill -INT $pid; wait $pid; rc=$?; exec 3>&-
expect '[ $rc = 130 ] && [ ! -s err.txt ]' "import interrupted: 130, quiet (got $rc)"
expect '"$K" show --all < imp.rec | tail -1 | grep -q "\"count\":2,\"status\":\"interrupted\""' "import interrupted: both records and eos kept"
finish
