# A worker SIGKILLed mid-stream loses no record (issue 15): `kiln import --fan-out W` feeds
# W `kiln cat` workers over ZeroMQ, one of them is killed at a random moment (the records
# come in 20 slices 50 ms apart; the kill falls 0-700 ms after the collector's first
# records), and `kiln cat --fan-in W`
# still writes all 20,000 records exactly once; after `kiln batch --ordered` the batches
# equal those of the records in file order.  10 runs with 2, 3 and 4 workers.  A killed
# worker that never reached the fan-in is covered too, and so is a worker killed and started
# again: admitted in the dead one's place, it gets records.  When every worker dies, the
# fan-out and the fan-in exit 74 (lib/stream/zmqio.c).  About 35 s.
. "$KILN_ROOT/tests/lib.sh"
N=20000
[ "${KILN_SAN:-}" = 1 ] && N=5000
RUNS=${KILN_KILL_RUNS:-10}
seq 1 $N | awk '{printf "{\"t\":\"sample\",\"id\":%d,\"text\":\"record %d\"}\n", $1, $1}' \
    | "$K" import > src.rec
ordered() { "$K" tokenize --bytes | "$K" batch -B 8 -T 24 --ordered | "$K" show --full; }
ordered < src.rec > want.jsonl
size=$(wc -c < src.rec)
sock="$PWD/s"

# Start the collector and W workers on sockets $1.in/$1.out; pids in col and workers[].
start() { # name workers [senders the fan-in expects, default workers]
    timeout -k 5 60 "$K" cat --in "@ipc://$1.in" --fan-in "${3:-$2}" > "$1.rec" 2> "$1.col_err" &
    col=$!
    workers=()
    for _ in $(seq "$2"); do
        timeout -k 5 60 "$K" cat --in "ipc://$1.out" --out ">ipc://$1.in" 2>> "$1.w_err" &
        workers+=($!)
    done
}
slowly() { # the source records in 20 slices, $1 s (0.05) apart: a stream of about a second
    local chunk=$(((size + 19) / 20)) i
    for i in $(seq 0 19); do
        dd if=src.rec bs=$chunk skip=$i count=1 2> /dev/null
        sleep "${1:-0.05}"
    done
}
# SIGKILL the stage under timeout pid, ms after records (not only the hdr) reached file: by
# then every worker has connected (a fan-out sends no record before all N have).
kill_when_written() { # file ms pid
    local i stage
    for i in $(seq 3000); do
        [ "$(wc -c < "$1" 2> /dev/null || echo 0)" -gt 300 ] && break
        sleep 0.01
    done
    sleep "$(printf '0.%03d' "$2")"
    stage=$(pgrep -P "$3")
    kill -9 ${stage:-$3} 2> /dev/null
}

for run in $(seq "$RUNS"); do
    w=$((2 + run % 3)) s="$sock$run" at=$((RANDOM % 700))
    start "$s" "$w"
    victim=${workers[$((RANDOM % w))]}
    slowly | timeout -k 5 60 "$K" cat --out "@ipc://$s.out" --fan-out "$w" 2> "$s.snd_err" & snd=$!
    kill_when_written "$s.rec" $at "$victim"
    wait $snd; src=$?
    bad=0
    for p in "${workers[@]}"; do
        wait "$p"; r=$?
        [ "$p" = "$victim" ] || [ $r = 0 ] || bad=$r
        [ "$p" != "$victim" ] || [ $r = 137 ] || bad=killed-$r
    done
    wait $col; rc=$?
    label="run $run ($w workers, one killed at $at ms)"
    expect '[ "$src$bad$rc" = 000 ]' "$label: fan-out, live workers and fan-in exit 0 ($src $bad $rc; $(cat "$s.snd_err" "$s.col_err"))"
    "$K" show < "$s.rec" | sed 's/.*"id":\([0-9]*\).*/\1/' | sort -n > ids.txt
    expect "[ \$(wc -l < ids.txt) = $N ] && seq 1 $N | cmp -s - ids.txt" \
        "$label: each of the $N records exactly once (got $(wc -l < ids.txt), $(sort -u ids.txt | wc -l) distinct)"
    ordered < "$s.rec" > got.jsonl
    expect 'cmp -s want.jsonl got.jsonl' "$label: in order after batch --ordered"
done

# A worker that took records but never reached the fan-in (its output connects where nobody
# listens) and is killed: the fan-in, which never heard of it, is told its records moved and
# ends with every record once instead of waiting for it.
s="${sock}stray"
start "$s" 2 3
timeout -k 5 60 "$K" cat --in "ipc://$s.out" --out ">ipc://$s.nowhere" 2> /dev/null & stray=$!
slowly | timeout -k 5 60 "$K" cat --out "@ipc://$s.out" --fan-out 3 2> "$s.snd_err" & snd=$!
kill_when_written "$s.rec" 100 $stray
wait $snd; src=$?
bad=0
for p in "${workers[@]}"; do wait "$p" || bad=$?; done
wait $col; rc=$?
"$K" show < "$s.rec" | sed 's/.*"id":\([0-9]*\).*/\1/' | sort -n > ids.txt
expect '[ "$src$bad$rc" = 000 ] && [ $(wc -l < ids.txt) = $N ] && seq 1 $N | cmp -s - ids.txt' \
    "a worker that never reached the fan-in, killed: every record once ($src $bad $rc; $(cat "$s.snd_err" "$s.col_err"))"

# A worker killed and started again (as a supervisor restarts it) takes the dead one's place:
# the fan-out and the fan-in admit it instead of refusing an extra peer, it gets records, and
# every record still arrives once.  The restarted worker tokenizes, so that its records show
# in the collected stream (tokens, the others samples); the source runs 2 s, the kill falls
# 100 ms after the first records and the restart right after it.
s="${sock}restart"
start "$s" 2
slowly 0.1 | timeout -k 5 60 "$K" cat --out "@ipc://$s.out" --fan-out 2 2> "$s.snd_err" & snd=$!
kill_when_written "$s.rec" 100 "${workers[0]}"
timeout -k 5 60 "$K" tokenize --bytes --in "ipc://$s.out" --out ">ipc://$s.in" 2> "$s.re_err" &
again=$!
wait $snd; src=$?
wait "${workers[1]}"; live=$?
wait $again; re=$?
wait $col; rc=$?
expect '[ "$src$live$re$rc" = 0000 ]' \
    "a restarted worker: fan-out, live worker, restarted worker and fan-in exit 0 ($src $live $re $rc; $(cat "$s.snd_err" "$s.re_err" "$s.col_err"))"
expect '! grep -q refused "$s.snd_err" "$s.re_err" "$s.col_err"' "the restarted worker is not refused ($(cat "$s.snd_err" "$s.re_err" "$s.col_err"))"
"$K" show < "$s.rec" > got.jsonl
sed 's/.*"id":\([0-9]*\).*/\1/' got.jsonl | grep -x '[0-9]*' | sort -n > ids.txt
expect "[ \$(wc -l < ids.txt) = $N ] && seq 1 $N | cmp -s - ids.txt" \
    "a restarted worker: each of the $N records exactly once (got $(wc -l < ids.txt), $(sort -u ids.txt | wc -l) distinct)"
took=$(grep -c '"t":"tokens"' got.jsonl)
expect '[ "$took" -gt 0 ]' "the restarted worker got work ($took records)"

# No worker left: both workers killed mid-stream.  The fan-out fails (74) rather than end as
# on a closed pipe, and so does the fan-in, whose senders vanished with nothing moved.
s="${sock}none"
start "$s" 2
slowly | timeout -k 5 60 "$K" cat --out "@ipc://$s.out" --fan-out 2 2> "$s.snd_err" & snd=$!
kill_when_written "$s.rec" 200 "${workers[0]}"
kill_when_written "$s.rec" 0 "${workers[1]}"
t0=$SECONDS
wait $snd; src=$?
wait $col; rc=$?
expect '[ $src = 74 ] && grep -q "no receiver left" "$s.snd_err"' \
    "no worker left: the fan-out exits 74 ($src: $(cat "$s.snd_err"))"
expect '[ $rc = 74 ] && [ $((SECONDS - t0)) -lt 30 ]' \
    "no worker left: the fan-in exits 74 in $((SECONDS - t0)) s ($rc: $(cat "$s.col_err"))"
finish
