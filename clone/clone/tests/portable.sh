#!/usr/bin/env bash
# tests/portable — the normal build run on CPUs older than the one it was built on, under
# qemu-user: Haswell (AVX2 + FMA, no AVX-512: lib/model/gemm_avx2.c and the AVX2 clones in
# lib/model/gpt.c) and Nehalem (no AVX at all: OpenBLAS and the baseline code).  On each, every
# program under the emulator: a stage's --help (a -march=native build died there with SIGILL),
# a short training run through the whole pipeline, which must print its metrics, and
# test_gemm, which must find exactly the kernels that CPU has and check each one.
# .ci/run calls it; it takes a few minutes.  Ends like tests/run.sh with "N passed, N failed";
# without qemu-x86_64 (Debian: qemu-user) it skips: exit 0, "0 passed, 0 failed, 1 skipped".
#   KILN_BIN    directory of the built programs (bin/)
#   KILN_UNITS  directory of the built unit tests (build/rel/tests)
#   KILN_QEMU_CPUS  the emulated CPUs (default "Haswell Nehalem")
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${KILN_BIN:=$here/../bin}" "${KILN_UNITS:=$here/../build/rel/tests}"
if ! command -v qemu-x86_64 >/dev/null; then
    echo "skip  portable: no qemu-x86_64 (apt-get install qemu-user)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-portable.XXXXXX")
trap 'rm -rf "$work"' EXIT
pass=0 fail=0

check() { # name, log, command... : passes on exit 0; shows the log (less qemu's notes) if not
    local name=$1 log=$2 t0=$SECONDS; shift 2
    if "$@"; then
        pass=$((pass + 1)); printf 'ok    %-44s %3ds\n' "$name" $((SECONDS - t0))
    else
        fail=$((fail + 1)); printf 'FAIL  %s\n' "$name"
        grep -v '^qemu-x86_64: warning' "$log" | tail -n 25 | sed 's/^/      | /'
    fi
}

# A book if the tree has one, else any text: the model only needs bytes.
head -c 20000 "$here/../examples/data/moby-dick.txt" >"$work/book.txt" 2>/dev/null ||
    seq 1 4000 >"$work/book.txt"

help_runs() { # cpu
    qemu-x86_64 -cpu "$1" "$KILN_BIN/kiln-load" --help >/dev/null 2>"$work/$1.help.log"
}

# Every stage of the pipeline under the emulator (the dispatcher would exec the stages
# natively), 3 steps of the tiny model; show must print 3 metrics records with a loss.
training_runs() { # cpu
    local q="qemu-x86_64 -cpu $1" b=$KILN_BIN log=$work/$1.train.log
    (cd "$work" && set -o pipefail &&
        $q "$b/kiln-load" text:book.txt 2>>"$log" | $q "$b/kiln-tokenize" --bytes 2>>"$log" |
        $q "$b/kiln-batch" -B 2 -T 32 --pack 2>>"$log" |
            KILN_THREADS=2 $q "$b/kiln-train" --model tiny --steps 3 --log-every 1 2>>"$log" |
            $q "$b/kiln-show" >"$1.out" 2>>"$log") || return 1
    cat "$work/$1.out" >>"$log"
    [ "$(grep -c '"t": *"metrics".*"loss": *[0-9]' "$work/$1.out")" = 3 ]
}

# test_gemm says which kernels it found ("avx2: ok", "avx512: not on this CPU").
gemm_kernels_run() { # cpu, the kernels it must find
    local cpu=$1 want=$2 log=$work/$1.gemm.log
    qemu-x86_64 -cpu "$cpu" "$KILN_UNITS/test_gemm" >"$log" 2>&1 || return 1
    [ "$(sed -n 's/^\([a-z0-9]*\): ok$/\1/p' "$log" | tr '\n' ' ')" = "$want" ]
}

for cpu in ${KILN_QEMU_CPUS:-Haswell Nehalem}; do
    case $cpu in
    Haswell* | Broadwell* | Skylake-Client* | EPYC*) kernels="avx2 generic " ;;
    *) kernels="generic " ;;
    esac
    check "portable/$cpu: kiln-load --help" "$work/$cpu.help.log" help_runs "$cpu"
    check "portable/$cpu: load | tokenize | batch | train | show" "$work/$cpu.train.log" \
        training_runs "$cpu"
    check "portable/$cpu: test_gemm on ${kernels% }" "$work/$cpu.gemm.log" \
        gemm_kernels_run "$cpu" "$kernels"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
