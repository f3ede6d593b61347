# Records over tcp with CURVE on loopback (no root): kiln keygen's key pair, a bound end that
# admits only the listed client keys and logs a refusal naming the key, a client with the
# wrong key or the wrong server key that gets nothing, and records that never travel in clear.
. "$KILN_ROOT/tests/lib.sh"
seq 1 3000 | awk '{printf "{\"t\":\"sample\",\"id\":%d,\"text\":\"plain-text-marker-%d\"}\n", $1, $1}' > many.jsonl
"$K" import many.jsonl > many.rec

# kiln keygen: Z85 text, the secret key private, never overwritten.
"$K" keygen trainer && "$K" keygen loader && "$K" keygen stranger
expect '[ "$(stat -c %a trainer.key)" = 600 ] && [ "$(stat -c %a trainer.pub)" = 644 ]' "key modes 600 and 644"
expect 'grep -Eq "^.{40}$" trainer.key && grep -Eq "^.{40}$" trainer.pub && [ $(wc -l < trainer.pub) = 1 ]' \
    "one 40-character Z85 line a key"
expect '! cmp -s trainer.pub loader.pub' "two key pairs differ"
cp trainer.key before.key
"$K" keygen trainer 2> err.txt; rc=$?
expect '[ $rc = 74 ] && cmp -s before.key trainer.key && grep -q "never overwrites" err.txt' \
    "keygen refuses to overwrite a key (rc $rc)"

port=$((20000 + RANDOM % 20000))
server() { # server OUTFILE ERRFILE: a bound receiver that admits loader.pub and a dir of keys
    mkdir -p admitted && cp loader.pub admitted/
    "$K" cat --in "@tcp://127.0.0.1:$port" --curve-key trainer.key \
        --curve-clients admitted > "$1" 2> "$2" & srv=$!
}

# A receiver bound for a sender that never came: the first SIGTERM makes a stage read on
# to its upstream's end (README.md, "Exit codes, signals"), the second stops it.
stop_server() { kill -TERM $srv; sleep 0.3; kill -TERM $srv 2> /dev/null; wait $srv; }

# The right keys: every record arrives, and the bytes on the wire are not the records.
capture=""
if command -v tcpdump > /dev/null; then
    timeout 15 tcpdump -i lo -U -w wire.pcap "tcp port $port" 2> /dev/null & capture=$!
    sleep 1
fi
server got.rec srv_err.txt
timeout 30 "$K" cat --out ">tcp://127.0.0.1:$port" --curve-key loader --curve-server trainer.pub \
    < many.rec 2> cli_err.txt; crc=$?
wait $srv; src=$?
expect '[ $crc = 0 ] && [ $src = 0 ]' "CURVE: both ends exit 0 ($crc, $src; $(cat srv_err.txt cli_err.txt))"
expect '"$K" show < got.rec | cmp -s - <("$K" show < many.rec)' "CURVE: every record arrives, in order"
if [ -n "$capture" ]; then
    sleep 1; kill $capture 2> /dev/null; wait $capture 2> /dev/null
    expect '[ -s wire.pcap ] && ! grep -aq "plain-text-marker" wire.pcap' "CURVE: no record text on the wire"
fi

# A client whose key is not admitted: refused, the refusal logged with its key, nothing passes.
server none.rec srv_err.txt
timeout 30 "$K" cat --out ">tcp://127.0.0.1:$port" --curve-key stranger.key --curve-server trainer.pub \
    < many.rec 2> cli_err.txt; crc=$?
stop_server
expect '[ $crc = 74 ] && grep -q "refused this end.s CURVE key" cli_err.txt' \
    "an unknown key: the client exits 74 and says why (rc $crc: $(cat cli_err.txt))"
expect 'grep -qF "refused a client with CURVE public key $(cat stranger.pub) from 127.0.0.1" srv_err.txt' \
    "the server logs the refused key ($(cat srv_err.txt))"
expect '! grep -q "\"t\":\"sample\"" <("$K" show < none.rec 2> /dev/null)' "an unknown key: no record passes"

# The wrong server key, or no keys at all against a CURVE server: no connection, and a
# --connect-timeout that ends the wait with 74.
server none.rec srv_err.txt
timeout 30 "$K" cat --out ">tcp://127.0.0.1:$port" --curve-key loader.key --curve-server stranger.pub \
    --connect-timeout 4 < many.rec 2> cli_err.txt; crc=$?
expect '[ $crc = 74 ] && grep -q "handshake failed" cli_err.txt && grep -q "no connection in 4 s" cli_err.txt' \
    "the wrong server key: 74 after --connect-timeout (rc $crc: $(cat cli_err.txt))"
KILN_CONNECT_TIMEOUT=3 timeout 30 "$K" cat --out ">tcp://127.0.0.1:$port" < many.rec 2> cli_err.txt; crc=$?
expect '[ $crc = 74 ] && grep -q "no connection in 3 s" cli_err.txt' \
    "no keys against a CURVE server: 74 after KILN_CONNECT_TIMEOUT (rc $crc: $(cat cli_err.txt))"
stop_server
expect '! grep -q "\"t\":\"sample\"" <("$K" show < none.rec 2> /dev/null)' "wrong keys: no record passes"

# Keys through the environment, as a pipeline sets them once.
KILN_CURVE_KEY=trainer.key KILN_CURVE_CLIENTS=loader.pub timeout 30 "$K" cat \
    --in "@tcp://127.0.0.1:$port" > env.rec 2> srv_err.txt & srv=$!
KILN_CURVE_KEY=loader.key KILN_CURVE_SERVER=trainer.pub timeout 30 "$K" cat \
    --out ">tcp://127.0.0.1:$port" < many.rec; crc=$?
wait $srv; src=$?
expect '[ $crc = 0 ] && [ $src = 0 ] && cmp -s env.rec got.rec' "keys from KILN_CURVE_* ($crc, $src)"

# Half-given keys are refused before anything travels; ipc stays plain.
expect_status 2 "$K" cat --in "@tcp://127.0.0.1:$port" --curve-key trainer.key < /dev/null 2> /dev/null
expect_status 2 "$K" cat --out ">tcp://127.0.0.1:$port" --curve-key loader.key < many.rec 2> /dev/null
expect_status 2 "$K" cat --out ">tcp://127.0.0.1:$port" --curve-server trainer.pub < many.rec 2> /dev/null
cp loader.key open.key && chmod 644 open.key
"$K" cat --out ">tcp://127.0.0.1:$port" --curve-key open.key < many.rec 2> err.txt; rc=$?
expect '[ $rc = 2 ] && grep -q "open.key: the secret key is readable by others" err.txt' \
    "a secret key others can read is named ($(head -1 err.txt))"
echo "not a key" > bad.pub
timeout 10 "$K" cat --in "@tcp://127.0.0.1:$port" --curve-key trainer.key --curve-clients bad.pub \
    < /dev/null 2> err.txt; rc=$?
expect '[ $rc = 65 ] && grep -q "bad.pub:1: not a CURVE key" err.txt' "a bad key file: 65 naming file and line (rc $rc)"
timeout 30 "$K" cat --in "@ipc://$PWD/s" --curve-key trainer.key > ipc.rec & srv=$!
timeout 30 "$K" cat --out ">ipc://$PWD/s" --curve-key loader.key < many.rec; crc=$?
wait $srv; src=$?
expect '[ $crc = 0 ] && [ $src = 0 ] && cmp -s ipc.rec got.rec' "ipc ignores keys ($crc, $src)"
finish
