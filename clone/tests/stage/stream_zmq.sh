# Records over ZeroMQ: nothing lost when the sender exits right after its last send,
# over ipc:// and tcp://, and a fan-out to two workers with a fan-in that ends cleanly.
. "$KILN_ROOT/tests/lib.sh"
N=20000
[ "${KILN_SAN:-}" = 1 ] && N=5000
seq 1 $N | awk '{printf "{\"t\":\"sample\",\"id\":%d}\n", $1}' > many.jsonl
sock="$PWD/s"

check_ids() { # file, label: every id once, in order
    "$K" show < "$1" | sed 's/.*"id":\([0-9]*\).*/\1/' > ids.txt
    expect "[ \$(wc -l < ids.txt) = $N ]" "$2: all $N records arrived"
    expect 'seq 1 $N | cmp -s - ids.txt' "$2: in order"
}

# ipc, sender binds and exits right after its last send.
timeout 60 "$K" import many.jsonl --out "@ipc://$sock.1" & snd=$!
timeout 60 "$K" cat --in "ipc://$sock.1" > ipc.rec; rc=$?
wait $snd; src=$?
expect '[ $rc = 0 ] && [ $src = 0 ]' "ipc: both ends exit 0 ($src, $rc)"
check_ids ipc.rec "ipc"

# tcp, receiver binds, sender connects.
port=$((20000 + RANDOM % 20000))
timeout 60 "$K" cat --in "@tcp://127.0.0.1:$port" > tcp.rec & rcv=$!
timeout 60 "$K" import many.jsonl --out ">tcp://127.0.0.1:$port"; src=$?
wait $rcv; rc=$?
expect '[ $rc = 0 ] && [ $src = 0 ]' "tcp: both ends exit 0 ($src, $rc)"
check_ids tcp.rec "tcp"

# Fan-out to two workers, fan-in to one collector: every record exactly once, every
# process learns the end.
timeout 60 "$K" cat --in "@ipc://$sock.in" --fan-in 2 > fan.rec & col=$!
timeout 60 "$K" cat --in "ipc://$sock.out" --out ">ipc://$sock.in" & w1=$!
timeout 60 "$K" cat --in "ipc://$sock.out" --out ">ipc://$sock.in" & w2=$!
timeout 60 "$K" import many.jsonl --out "@ipc://$sock.out" --fan-out 2; src=$?
wait $w1; r1=$?; wait $w2; r2=$?; wait $col; rc=$?
expect '[ "$src$r1$r2$rc" = 0000 ]' "fan-out/fan-in: all four exit 0 ($src $r1 $r2 $rc)"
"$K" show < fan.rec | sed 's/.*"id":\([0-9]*\).*/\1/' | sort -n > fan_ids.txt
expect "[ \$(wc -l < fan_ids.txt) = $N ]" "fan-in: all $N records arrived"
expect 'seq 1 $N | cmp -s - fan_ids.txt' "fan-in: each record exactly once"
expect '"$K" show --all < fan.rec | tail -1 | grep -q "\"count\":$N,\"status\":\"ok\""' "fan-in: one merged eos"

# Two unrelated senders whose records share ids: a fan-in drops a second copy only after a
# fan-out upstream said a dead worker's records moved (lib/stream/zmqio.c), so both arrive.
head -1000 many.jsonl | "$K" import > thousand.rec
timeout 60 "$K" cat --in "@ipc://$sock.twin" --fan-in 2 > twin.rec & col=$!
timeout 60 "$K" cat --out ">ipc://$sock.twin" < thousand.rec & t1=$!
timeout 60 "$K" cat --out ">ipc://$sock.twin" < thousand.rec; t2=$?
wait $t1; t1=$?; wait $col; rc=$?
expect '[ "$t1$t2$rc" = 000 ] && [ $("$K" show < twin.rec | wc -l) = 2000 ]' \
    "fan-in of two streams with the same ids keeps all 2000 ($t1 $t2 $rc)"

# A fan-in whose worker dies before it connected: every expected sender is watched, so the
# collector ends with 74 once the others have ended (within 10 s, lib/stream/zmqio.c), not
# never (issue 15).
head -100 many.jsonl | "$K" import > small.rec
timeout 60 "$K" cat --in "@ipc://$sock.m" --fan-in 2 > /dev/null 2> col_err.txt & col=$!
rm -f fifo; mkfifo fifo
"$K" cat --out ">ipc://$sock.m" < fifo & w2=$!
exec 3> fifo
kill -9 $w2; wait $w2 2> /dev/null; exec 3>&-
t0=$SECONDS
"$K" cat --out ">ipc://$sock.m" < small.rec; w1=$?
wait $col; rc=$?
expect '[ $w1 = 0 ] && [ $rc = 74 ] && [ $((SECONDS - t0)) -lt 30 ]' \
    "fan-in with a worker that never came: 74 in $((SECONDS - t0)) s (worker $w1, collector $rc)"
expect 'grep -q "1 of 2 senders came and ended; the others never came" col_err.txt' \
    "the collector says why ($(cat col_err.txt))"

# A receiver that stops early: the sender sees a closed pipe and ends quietly.
timeout 60 "$K" import many.jsonl --out "@ipc://$sock.2" 2> snd_err.txt & snd=$!
timeout 60 "$K" show --in "ipc://$sock.2" | head -3 > /dev/null
wait $snd; src=$?
expect '[ $src = 0 ]' "sender whose receiver left exits 0 (got $src)"

# Peers that die without a word: the receiver of a killed sender exits 74, as on a pipe;
# the sender of a killed receiver ends as with a closed pipe.  Neither waits forever.
slow_sender() { # a sender that stalls after a few records, then is killed
    rm -f fifo; mkfifo fifo
    "$K" import < fifo --out "$1" & pid=$!
    exec 3> fifo; head -5 many.jsonl >&3
}
slow_sender "@ipc://$sock.3"
timeout 20 "$K" cat --in "ipc://$sock.3" > /dev/null 2> err.txt & rcv=$!
sleep 1; kill -9 $pid; exec 3>&-
wait $rcv; rc=$?
expect '[ $rc = 74 ] && grep -q "disconnected without end-of-stream" err.txt' "a killed sender: receiver exits 74 (got $rc)"
"$K" cat --in "@ipc://$sock.4" > /dev/null & rcv=$!
timeout 20 "$K" import many.jsonl --out ">ipc://$sock.4" & snd=$!
sleep 0.5; kill -9 $rcv; wait $snd; src=$?
expect '[ $src = 0 ]' "a killed receiver: the sender ends as on a closed pipe (got $src)"
# A sender waiting for a receiver that never comes still obeys SIGTERM.
"$K" import many.jsonl --out "@ipc://$sock.5" 2> /dev/null & snd=$!
sleep 0.5; kill -TERM $snd; wait $snd; src=$?
expect '[ $src = 143 ]' "a sender waiting for credit stops on SIGTERM with 143 (got $src)"
finish
