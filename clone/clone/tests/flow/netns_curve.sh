# pipelines/pretrain.sh split across two hosts: the data half (load | tokenize | batch) in
# one Linux network namespace, the training half in another, joined by a veth pair, over
# tcp with CURVE (issue 14).  The run equals the same pipeline over plain pipes (losses and
# final checkpoint), no record text crosses the wire in clear, and a client with the wrong
# key gets nothing while the trainer's end logs the refusal.  Needs root and `ip netns`.
. "$KILN_ROOT/tests/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (ip netns)"
command -v ip > /dev/null || skip "ip missing (Debian iproute2)"
steps=16 every=8 size=32
. "$KILN_ROOT/tests/flow/pretrain_run.sh.inc"

loader=kiln-l$$ trainer=kiln-t$$
ip netns add $loader 2> err.txt || skip "ip netns not permitted here: $(cat err.txt)"
cleanup() { ip netns del $loader 2> /dev/null; ip netns del $trainer 2> /dev/null; }
trap cleanup EXIT
ip netns add $trainer || skip "ip netns add failed"
ip link add kl$$ type veth peer name kt$$ || skip "no veth pairs here"
ip link set kl$$ netns $loader && ip link set kt$$ netns $trainer
ip -n $loader addr add 10.231.0.1/24 dev kl$$ && ip -n $trainer addr add 10.231.0.2/24 dev kt$$
for ns in $loader $trainer; do ip -n $ns link set lo up; done
ip -n $loader link set kl$$ up && ip -n $trainer link set kt$$ up
expect 'ip netns exec $loader ping -c 1 -W 2 10.231.0.2 > /dev/null 2>&1 || ! command -v ping > /dev/null' \
    "the namespaces reach each other over the veth pair"
in_ns() { ns=$1; shift; ip netns exec "$ns" "$@"; }
export steps every size book
in_ns_run() { ns=$1; shift; in_ns "$ns" timeout 60 bash -c "$(declare -f run); run $*"; }

"$K" keygen trainer && "$K" keygen loader && "$K" keygen stranger

# The same run over plain pipes, on this host.
run --out a > /dev/null 2> a_err.txt || echo "FAIL: the plain run failed: $(tail -3 a_err.txt)" >&2

# Split: the trainer binds and admits the loader's key; the loader connects with it.
port=5555
capture=""
if command -v tcpdump > /dev/null; then
    in_ns $trainer timeout 60 tcpdump -i kt$$ -U -w wire.pcap "tcp port $port" 2> /dev/null & capture=$!
    sleep 1
fi
KILN_CURVE_KEY=trainer.key KILN_CURVE_CLIENTS=loader.pub \
    in_ns_run $trainer --out b --data-from "'@tcp://10.231.0.2:$port'" \
    > /dev/null 2> b_err.txt & trn=$!
KILN_CURVE_KEY=loader.key KILN_CURVE_SERVER=trainer.pub \
    in_ns_run $loader --out c --data-to "'>tcp://10.231.0.2:$port'" \
    > /dev/null 2> c_err.txt; lrc=$?
wait $trn; trc=$?
expect '[ $lrc = 0 ] && [ $trc = 0 ]' "split run: both halves exit 0 (loader $lrc: $(tail -2 c_err.txt); trainer $trc: $(tail -2 b_err.txt))"
expect '! grep -q "records travel in clear" b_err.txt c_err.txt' "with keys, no clear-text warning"
losses a/log.rec > a.txt; losses b/log.rec > b.txt
expect '[ -s a.txt ] && cmp -s a.txt b.txt' "split over tcp+CURVE == over pipes: $(diff a.txt b.txt | head -3 | tr '\n' ' ')"
"$K" ckpt inspect a/ckpt/latest.safetensors | grep -v '^file' > a.ck
"$K" ckpt inspect b/ckpt/latest.safetensors | grep -v '^file' > b.ck
expect "grep -q '^step *$steps\$' b.ck && cmp -s a.ck b.ck" "final checkpoints identical: $(diff a.ck b.ck | head -4 | tr '\n' ' ')"
if [ -n "$capture" ]; then
    sleep 1; kill $capture 2> /dev/null; wait $capture 2> /dev/null
    # In clear, the hdr's "tokenizer" and every batch's "mask" show on the wire.
    expect '[ -s wire.pcap ] && ! grep -aqE "tokenizer|mask" wire.pcap' "no record in clear on the veth"
fi

# A loader with a key the trainer does not admit: refused on both sides, nothing trained.
# (ip netns exec runs the stage as its child: the stage's own pid is what the two SIGTERMs
# stop, the first making it read on, README.md "Exit codes, signals".)
KILN_CURVE_KEY=trainer.key KILN_CURVE_CLIENTS=loader.pub ip netns exec $trainer \
    bash -c 'echo $$ > srv.pid; exec "$0" cat --in "$1"' "$K" "@tcp://10.231.0.2:$port" \
    > stolen.rec 2> srv_err.txt & ipx=$!
sleep 0.5
srv=$(cat srv.pid)
in_ns $loader timeout 30 "$K" import --out ">tcp://10.231.0.2:$port" --curve-key stranger.key \
    --curve-server trainer.pub < <(echo '{"t":"sample","text":"secret"}') 2> evil_err.txt; erc=$?
kill -TERM $srv; sleep 0.3; kill -TERM $srv 2> /dev/null; wait $ipx
expect '[ $erc = 74 ] && grep -q "refused this end.s CURVE key" evil_err.txt' \
    "the wrong key: 74 and a message (rc $erc: $(cat evil_err.txt))"
expect 'grep -qF "refused a client with CURVE public key $(cat stranger.pub) from 10.231.0.1" srv_err.txt' \
    "the trainer's end logs the refused key and address ($(cat srv_err.txt))"
expect '! grep -q secret stolen.rec' "the wrong key gets nothing through"
finish
