# ZeroMQ endpoints take exactly the peers they were told, and a connecting end never waits
# in silence: an extra receiver or sender is refused with a message on both sides, a peer
# that sends without introducing itself is ignored with a message, an endpoint nobody binds
# (or a host that does not resolve) is reported after a few seconds and given up on after
# --connect-timeout (74), and a tcp port out of range is refused (2).
. "$KILN_ROOT/tests/lib.sh"
seq 1 2000 | awk '{printf "{\"t\":\"sample\",\"id\":%d}\n", $1}' > many.jsonl
"$K" import many.jsonl > many.rec
port=$((20000 + RANDOM % 20000))

# --fan-out 1 and two receivers: the first gets every record, the second is refused.
rm -f fifo; mkfifo fifo
timeout 30 "$K" import --out "@tcp://127.0.0.1:$port" --fan-out 1 < fifo 2> snd_err.txt & snd=$!
exec 3> fifo; head -5 many.jsonl >&3
timeout 30 "$K" cat --in "tcp://127.0.0.1:$port" > r1.rec 2> r1_err.txt 3>&- & r1=$!
sleep 1
timeout 30 "$K" cat --in "tcp://127.0.0.1:$port" > r2.rec 2> r2_err.txt 3>&- & r2=$!
sleep 1 # the sender refuses it when it next handles its socket: with the next record
tail -n +6 many.jsonl >&3; exec 3>&-
wait $snd; src=$?; wait $r1; rc1=$?; wait $r2; rc2=$?
expect '[ $src = 0 ] && [ $rc1 = 0 ] && [ $rc2 = 74 ]' "fan-out 1: sender 0, receiver 0, extra receiver 74 ($src $rc1 $rc2)"
expect '"$K" show < r1.rec | cmp -s - <("$K" show < many.rec)' "the first receiver gets every record"
expect '! grep -q "\"t\":\"sample\"" <("$K" show < r2.rec 2> /dev/null)' "the extra receiver gets none"
expect 'grep -q "refused an extra receiver: --fan-out 1" snd_err.txt' "the sender says it refused one ($(cat snd_err.txt))"
expect 'grep -q "refused: the bound end takes 1 receiver" r2_err.txt' "the extra receiver says why ($(cat r2_err.txt))"

# --fan-in 1 and two senders: the second is refused, the collector ends with the first's.
sock="$PWD/s"
rm -f fifo; mkfifo fifo
timeout 30 "$K" cat --in "@ipc://$sock" > col.rec 2> col_err.txt & col=$!
timeout 30 "$K" cat --out ">ipc://$sock" < fifo 2> s1_err.txt & s1=$!
exec 3> fifo; head -c 100 many.rec >&3
sleep 1
timeout 30 "$K" cat --out ">ipc://$sock" < many.rec 2> s2_err.txt 3>&-; rs2=$?
tail -c +101 many.rec >&3; exec 3>&-
wait $s1; rs1=$?; wait $col; rc=$?
expect '[ $rs1 = 0 ] && [ $rc = 0 ] && [ $rs2 = 74 ]' "fan-in 1: sender 0, collector 0, extra sender 74 ($rs1 $rc $rs2)"
expect '"$K" show < col.rec | cmp -s - <("$K" show < many.rec)' "the collector has the first sender's records, once"
expect 'grep -q "refused an extra sender: --fan-in 1" col_err.txt' "the collector says it refused one"
expect 'grep -q "refused: the bound end takes 1 sender" s2_err.txt' "the extra sender says why ($(cat s2_err.txt))"

# A peer that sends a record without saying hello first (no 'H': not a kiln sender, or one
# whose connection came back under a new identity) is not admitted: its messages are dropped
# with one line, and the sender that did introduce itself fills the --fan-in 1.
if /usr/bin/python3 -c 'import zmq, msgpack' 2> /dev/null; then
    timeout 30 "$K" cat --in "@ipc://$sock.stray" > col.rec 2> col_err.txt & col=$!
    /usr/bin/python3 -c '
import sys, time, msgpack, zmq
d = zmq.Context().socket(zmq.DEALER)
d.connect(sys.argv[1])
for i in range(3):
    d.send(msgpack.packb({"t": "sample", "seq": i + 1, "id": 99999}))
time.sleep(1.5)' "ipc://$sock.stray" & stray=$!
    sleep 0.5
    timeout 30 "$K" cat --out ">ipc://$sock.stray" < many.rec 2> s1_err.txt; rs1=$?
    wait $col; rc=$?; wait $stray
    expect '[ $rs1 = 0 ] && [ $rc = 0 ]' "a stray peer: the sender and the collector exit 0 ($rs1 $rc: $(cat s1_err.txt col_err.txt))"
    expect '"$K" show < col.rec | cmp -s - <("$K" show < many.rec)' "the collector has the sender's records, none of the stray's"
    expect '[ "$(grep -c "ignored a peer that sent a message without introducing itself" col_err.txt)" = 1 ]' \
        "the collector says so, once for the stray's three messages ($(cat col_err.txt))"
fi

# Nobody bound: said after 3 s, given up after --connect-timeout with 74 (also for a sender).
t0=$SECONDS
timeout 30 "$K" cat --in "tcp://127.0.0.1:$port" --connect-timeout 4 > /dev/null 2> err.txt; rc=$?
expect '[ $rc = 74 ] && [ $((SECONDS - t0)) -lt 10 ]' "an endpoint nobody binds: 74 in $((SECONDS - t0)) s (rc $rc)"
expect 'grep -q "not connected after 3 s: nothing bound at tcp://127.0.0.1:$port answers; still trying" err.txt' \
    "it says so while it waits ($(head -1 err.txt))"
expect 'grep -q "no connection in 4 s (--connect-timeout)" err.txt' "and when it gives up"
KILN_CONNECT_TIMEOUT=2 timeout 30 "$K" cat --out ">ipc://$sock.none" < many.rec 2> err.txt; rc=$?
expect '[ $rc = 74 ] && grep -q "no connection in 2 s" err.txt' "a sender with KILN_CONNECT_TIMEOUT: 74 (rc $rc)"
# Without a timeout it keeps trying, and connects once the other end binds.
timeout 30 "$K" cat --in "tcp://127.0.0.1:$port" > late.rec 2> late_err.txt & rcv=$!
sleep 4
timeout 30 "$K" cat --out "@tcp://127.0.0.1:$port" < many.rec; src=$?
wait $rcv; rc=$?
expect '[ $src = 0 ] && [ $rc = 0 ] && "$K" show < late.rec | cmp -s - <("$K" show < many.rec)' "a receiver that waited connects when the sender binds ($src $rc)"
expect 'grep -q "still trying" late_err.txt && grep -q "connected$" late_err.txt' "and says so ($(cat late_err.txt))"

# A host that does not resolve.
timeout 30 "$K" cat --in "tcp://kiln-no-such-host.invalid:$port" --connect-timeout 4 > /dev/null 2> err.txt; rc=$?
expect '[ $rc = 74 ] && grep -q "the host kiln-no-such-host.invalid does not resolve" err.txt' \
    "a host that does not resolve: said, and 74 (rc $rc: $(tail -1 err.txt))"

# Ports out of range are refused rather than replaced by some other port.
for url in "@tcp://127.0.0.1:99999" "@tcp://127.0.0.1:0" "@tcp://127.0.0.1:-1" "@tcp://127.0.0.1"; do
    timeout 10 "$K" cat --in "$url" < /dev/null > /dev/null 2> err.txt; rc=$?
    expect '[ $rc = 2 ] && grep -q "tcp" err.txt' "$url: refused with 2 (rc $rc: $(cat err.txt))"
done
timeout 10 "$K" cat --out ">tcp://127.0.0.1:70000" < many.rec 2> err.txt; rc=$?
expect '[ $rc = 2 ] && grep -q "the port must be 1..65535, not .70000." err.txt' "a connect to port 70000: 2 (rc $rc)"
finish
