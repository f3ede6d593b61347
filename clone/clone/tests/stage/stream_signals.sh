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

# Every stage of a chain whose end closes early: exit 0, nothing on stderr (README.md, "Exit
# codes, signals and closed pipes").
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
IDX="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"
quiet_head() { # label, then the stages: each one's status and stderr are checked
    local label=$1; shift
    local cmd="" i=0
    for st in "$@"; do cmd+="${cmd:+ | }\"\$K\" $st 2> err.$i"; i=$((i + 1)); done
    eval "$cmd | head -1 > /dev/null; st=(\"\${PIPESTATUS[@]}\")"
    expect "[ \${#st[@]} = $(($# + 1)) ] && [ -z \"\$(echo \${st[*]} | tr -d ' 0')\" ]" \
        "$label: every stage exits 0 (got ${st[*]})"
    expect '! cat err.* | grep -q .' "$label: nothing on stderr ($(cat err.* | head -3))"
    rm -f err.*
}
quiet_head "load | show | head" "load $IDX --epochs 50" show
quiet_head "load | augment | tokenize | batch | show | head" "load $IDX --epochs 50" \
    "augment hflip crop:2" "tokenize --levels 16" "batch -B 4 -T 784" show
quiet_head "load | shuffle | cat | show | head" "load $IDX --epochs 20" shuffle cat show
BOOK="$KILN_ROOT/examples/data/moby-dick.txt"
if [ -f "$BOOK" ]; then
    quiet_head "load | tokenize | detok | head" "load text:$BOOK" "tokenize --bytes" detok
    # A long training run whose downstream dies stops at once, not at its next metrics.
    "$K" load text:"$BOOK" | "$K" tokenize --bytes | "$K" batch -B 8 -T 64 --pack > long.rec
    t0=$(date +%s)
    timeout 120 "$K" train --in long.rec --model small --log-every 100000 --threads 2 \
        2> err.txt | head -c 1 > /dev/null
    rc=${PIPESTATUS[0]} secs=$(($(date +%s) - t0))
    expect '[ $rc = 0 ] && [ ! -s err.txt ]' "train into a closed pipe: exit 0, quiet (got $rc)"
    expect '[ $secs -lt 30 ]' "train into a closed pipe stops promptly (${secs}s)"
fi

interrupt() { # signal, expected status
    rm -f fifo out.rec; mkfifo fifo
    "$K" cat < fifo > out.rec 2> err.txt & pid=$!
    exec 3> fifo
    head -c $(( $(stat -c %s big.rec) / 2 )) big.rec >&3  # half a stream, then it stalls
    sleep 0.5
    # A reader of a pipe reads on after the first signal (its upstream got it too); this
    # upstream then ends without eos, as `cat` does on Ctrl-C: interrupted, not a crash.
    kill -"$1" $pid; sleep 0.3
    expect "kill -0 $pid 2>/dev/null" "SIG$1: a pipe's reader waits for its upstream's end"
    exec 3>&-
    wait $pid; rc=$?
    expect "[ \$rc = $2 ]" "SIG$1: exit $2 (got $rc)"
    "$K" show --all < out.rec > out.jsonl 2>/dev/null
    expect 'tail -1 out.jsonl | grep -q "\"t\":\"eos\".*\"status\":\"interrupted\""' "SIG$1: eos interrupted written"
    n=$(grep -c '"t":"sample"' out.jsonl)
    expect '[ $n -gt 1000 ]' "SIG$1: records before the stop were kept ($n)"
}
interrupt INT 130
interrupt TERM 143

# The first signal: the stage reads on to its upstream's eos and passes every record; the
# second stops at once (README.md, "Exit codes, signals and closed pipes").
n_big=$("$K" show < big.rec | wc -l)
half=$(( $(stat -c %s big.rec) / 2 ))
rm -f fifo; mkfifo fifo
"$K" cat < fifo > out.rec 2> err.txt & pid=$!
exec 3> fifo
head -c $half big.rec >&3; sleep 0.3
kill -INT $pid; sleep 0.3
tail -c +$((half + 1)) big.rec >&3; exec 3>&-
wait $pid; rc=$?
expect '[ $rc = 130 ]' "drain: exit 130 after the upstream's end (got $rc)"
"$K" show --all < out.rec > out.jsonl 2>/dev/null
n=$(grep -c '"t":"sample"' out.jsonl)
expect '[ "$n" = "$n_big" ]' "drain: every record passed on after the signal ($n of $n_big)"
expect 'tail -1 out.jsonl | grep -q "\"status\":\"interrupted\""' "drain: eos interrupted"
rm -f fifo; mkfifo fifo
"$K" cat < fifo > out.rec 2> err.txt & pid=$!
exec 3> fifo
head -c $half big.rec >&3; sleep 0.3
kill -INT $pid; sleep 0.2; kill -INT $pid
timeout 10 tail --pid=$pid -f /dev/null; alive=$?
expect '[ $alive = 0 ]' "a second signal stops at once"
exec 3>&-
wait $pid; rc=$?
expect '[ $rc = 130 ]' "second signal: exit 130 (got $rc)"

# import interrupted while waiting for input
rm -f fifo; mkfifo fifo
"$K" import < fifo > imp.rec 2> err.txt & pid=$!
exec 3> fifo; printf '{"t":"a"}\n{"t":"b"}\n' >&3; sleep 0.5
kill -INT $pid; wait $pid; rc=$?; exec 3>&-
expect '[ $rc = 130 ] && [ ! -s err.txt ]' "import interrupted: 130, quiet (got $rc)"
expect '"$K" show --all < imp.rec | tail -1 | grep -q "\"count\":2,\"status\":\"interrupted\""' "import interrupted: both records and eos kept"
finish
