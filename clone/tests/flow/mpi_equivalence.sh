# Data-parallel training over Open MPI (lib/run/dist.h).
# 1. `mpirun -np 2`, each rank taking every other batch of 4 of one stream (kiln batch
#    --shard R/2), against one process on the same stream at --accum 2: the same 8 rows
#    make each step, so the 50 losses agree to 1e-5 relative and so does the step-50
#    checkpoint (weights and AdamW moments, each file as one vector: the key part of
#    c_attn.bias has a gradient of exactly 0 in theory, since softmax ignores a shift, so it
#    holds rounding noise that AdamW scales up to steps of lr whatever the summation order;
#    it alone differs by about 1e-4 of its own norm).
# 2. That run killed (SIGKILL to one rank) and resumed from its last ckpt at its `cursor`
#    ends on the uninterrupted run's step-50 checkpoint bit for bit.
# 3. LoRA (--lora r=4 on the step-10 model): the same losses, and only the adapters cross
#    the all-reduce.
# 4. Each rank its own shard (kiln load --shard R/2): resumed from step 20, each rank at its
#    own entry of the ckpt's `cursors`, it ends on the straight run's step 50 bit for bit.
. "$KILN_ROOT/tests/lib.sh"
command -v mpirun > /dev/null || skip "mpirun missing (make deps installs openmpi-bin)"
[[ $(ldd "$KILN_BIN/kiln-train") == *libmpi* ]] || skip "kiln-train built without MPI (libopenmpi-dev)"
[ -n "${KILN_SAN:-}" ] && skip "LeakSanitizer reports Open MPI's own allocations (MPI_Init, its unloaded plugins: no kiln frame); the release build runs this test"
[ -f "$KILN_ROOT/examples/data/moby-dick.txt" ] || skip "examples/data/moby-dick.txt missing"
export K TXT="$KILN_ROOT/examples/data/moby-dick.txt" SHARD
PY=/usr/bin/python3
train="--model tiny --ctx 32 --steps 50 --log-every 1 --threads 1"

# Rank R's pipeline ($SHARD: batch or load), from the checkpoint $1 if given.
rank_sh='R=$OMPI_COMM_WORLD_RANK skip=0 init="" load="" batch=""
if [ -n "$1" ]; then
    init="--init $1"
    skip=$("$K" ckpt inspect "$1" | awk -v r=$R '\''
        $1 == "cursor" && ENVIRON["SHARD"] == "batch" { print $2 }
        $1 == "cursors" && ENVIRON["SHARD"] == "load" { split($2, c, ","); print c[r + 1] }'\'')
fi
if [ "$SHARD" = load ]; then load="--shard $R/2"; else batch="--shard $R/2"; fi
"$K" load text:"$TXT" --split chunk:33 $load --skip "$skip" 2> /dev/null |
    "$K" tokenize --bytes | "$K" batch -B 4 -T 32 $batch 2> /dev/null |
    "$K" train $TRAIN $init --every $EVERY --out out.fifo &
echo $! > pid.$R
wait $!'
mpi() { # mpi DIR [CKPT]: two ranks; rank 0's records into kiln ckpt --dir DIR
    rm -f out.fifo && mkfifo out.fifo
    "$K" ckpt --dir "$1" --keep 0 < out.fifo > "$1.rec" &
    TRAIN=${TRAIN:-$train} EVERY=${EVERY:-10} mpirun --oversubscribe --allow-run-as-root \
        -x TRAIN -x EVERY -x KILN_ALLREDUCE_FLOATS -np 2 \
        sh -c "$rank_sh" sh "${2:-}" 2>> mpi.err
    local rc=$?
    wait
    return $rc
}
losses() { "$K" show < "$1" 2> /dev/null | jq -r 'select(.t == "metrics") | .loss'; }
inspect() { "$K" ckpt inspect "$1" | grep -v '^file'; }

t0=$SECONDS
"$K" load text:"$TXT" --split chunk:33 2> /dev/null | "$K" tokenize --bytes |
    "$K" batch -B 4 -T 32 2> /dev/null | "$K" train $train --every 10 --accum 2 |
    "$K" ckpt --dir one --keep 0 > one.rec
SHARD=batch
mpi two
rc=$?
expect '[ $rc = 0 ] && [ -f two/step-000050.safetensors ]' "mpirun run ends at step 50 ($(tail -3 mpi.err))"
expect 'grep -q "data parallel over 2 ranks" mpi.err' "rank 0 says it runs over 2 ranks"
expect '[ "$(losses two.rec | wc -l)" = 50 ]' "50 metrics records, from rank 0 alone"
"$K" show < two.rec > /dev/null 2> show.err
expect '! grep -q . show.err' "rank 0's stream reads to its eos: $(cat show.err)"
inspect two/step-000050.safetensors > two.txt
expect 'grep -q "^cursor *400$" two.txt && grep -q "^cursors *396,400$" two.txt' \
    "the ckpt holds the furthest cursor and each rank's: $(grep cursor two.txt | tr '\n' ' ')"

# The bucket size changes nothing: 1000-float buckets split most tensors across messages.
KILN_ALLREDUCE_FLOATS=1000 mpi buckets
inspect buckets/step-000050.safetensors > buckets.txt
expect 'cmp -s two.txt buckets.txt' "1000-float buckets == 16 MiB buckets, bit for bit: $(diff two.txt buckets.txt | head -2 | tr '\n' ' ')"

paste <(losses one.rec) <(losses two.rec) > both.txt
awk '{ d = $1 - $2; if (d < 0) d = -d; if (d / $1 > m) m = d / $1 } END { print m + 0 }' both.txt > worst.txt
expect '[ "$(wc -l < both.txt)" = 50 ] && awk "{ exit !(\$1 <= 1e-5) }" worst.txt' \
    "losses agree to 1e-5 relative for 50 steps (worst $(cat worst.txt))"

cat > same.py << 'PY'
import json, struct, sys
import numpy as np
def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in head.items() if k != "__metadata__"}
worst = 0.0
for f in ("step-000050.safetensors", "step-000050.optim.safetensors"):
    a, b = tensors(sys.argv[1] + "/" + f), tensors(sys.argv[2] + "/" + f)
    assert a.keys() == b.keys(), f
    va, vb = (np.concatenate([t[k] for k in sorted(a)]) for t in (a, b))
    worst = max(worst, float(np.linalg.norm(va - vb) / np.linalg.norm(va)))
print("checkpoint relative difference %.2e" % worst)
sys.exit(0 if worst <= 1e-5 else 1)
PY
$PY same.py one two > same.txt
same=$?
expect '[ $same = 0 ]' "step-50 checkpoints agree to 1e-5: $(cat same.txt)"

# 2. Kill one rank mid-run; resume from the last checkpoint at its cursor.
(mpi killed) &
job=$!
until [ -f killed/step-000010.safetensors ] || ! kill -0 $job 2> /dev/null; do sleep 0.02; done
kill -9 "$(cat pid.1)" 2> /dev/null
wait $job
last=$(ls killed/step-0000[0-9]0.safetensors | tail -1)
expect '[ "$last" != killed/step-000050.safetensors ]' "the kill landed before step 50 ($last)"
mpi resumed "$last"
inspect resumed/step-000050.safetensors > resumed.txt
expect 'cmp -s two.txt resumed.txt' "killed at $last + resumed == straight, bit for bit: $(diff two.txt resumed.txt | head -4 | tr '\n' ' ')"

# 3. LoRA on the step-10 model: the same against one process, and only the adapters (and
#    no frozen tensor) cross the all-reduce.
"$K" load text:"$TXT" --split chunk:33 2> /dev/null | "$K" tokenize --bytes | "$K" batch -B 4 -T 32 2> /dev/null |
    "$K" train --lora r=4 --init one/step-000010.safetensors --steps 10 --log-every 1 --threads 1 \
        --accum 2 2> /dev/null > lora_one.rec
: > mpi.err
TRAIN="--lora r=4 --init one/step-000010.safetensors --steps 10 --log-every 1 --threads 1" mpi lora
paste <(losses lora_one.rec) <(losses lora.rec) |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d / $1 > m) m = d / $1 } END { print NR, m + 0 }' > lora.txt
expect 'awk "{ exit !(\$1 == 10 && \$2 <= 1e-5) }" lora.txt' "LoRA: 10 losses agree to 1e-5 (steps, worst: $(cat lora.txt))"
mb=$(sed -n 's/.*, \([0-9.e+-]*\) MB a step/\1/p' mpi.err)
expect 'awk -v mb="$mb" "BEGIN { exit !(mb > 0 && mb < 0.1) }"' "LoRA reduces the adapters alone: $mb MB a step (the model: 0.475)"

# 4. Each rank its own kiln load --shard; resume from step 20 at each rank's cursor.
SHARD=load EVERY=20
mpi own
mpi own_resumed own/step-000020.safetensors
inspect own/step-000050.safetensors > own.txt
inspect own_resumed/step-000050.safetensors > own_resumed.txt
expect 'grep -q "^cursors *200,200$" own.txt' "each rank's own cursor: $(grep cursors own.txt)"
expect 'cmp -s own.txt own_resumed.txt' "per-rank cursors resume exactly: $(diff own.txt own_resumed.txt | head -4 | tr '\n' ' ')"
echo "took $((SECONDS - t0)) s; losses: worst $(cat worst.txt); $(cat same.txt); killed at $last"
cat mpi.err >&2; finish
