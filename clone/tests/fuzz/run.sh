#!/usr/bin/env bash
# Coverage-guided fuzzing of kiln's readers with libFuzzer, ASan and UBSan (Debian's clang).
#   tests/fuzz/run.sh [SECONDS] [TARGET...]    each target for SECONDS (default 60)
# Builds lib/ into build/fuzz with -fsanitize=fuzzer-no-link,address,undefined, links each
# tests/fuzz/fuzz_*.c, seeds its corpus (build/fuzz/corpus/TARGET) from the repository's
# files, runs it, and prints one line per target: "TARGET: N executions, no crash" or the
# crash.  Ends with "N passed, N failed" (the line CI counts); exit 0 when nothing crashed.
# Without clang or its libFuzzer: says so and exits 77 (skipped).
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(stream safetensors png idx json)
root=$PWD out=build/fuzz
if ! command -v clang > /dev/null || ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' \
    | clang -x c -fsanitize=fuzzer - -o /dev/null 2> /dev/null; then
    echo "clang with libFuzzer not found (make deps installs clang)"
    exit 77
fi
san='-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer'
# -Wno-pass-failed: instrumented loops do not vectorise, which gpt.c's `omp simd` would report
make -s "$out/libkiln.a" BUILD="$out" CC=clang OPT='-O1 -g' SANFLAGS="-fsanitize=fuzzer-no-link $san" \
    WARN='-Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-pass-failed' \
    || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$out/corpus" "$out/crashes"

seed() { # seed TARGET: the repository's own files of that kind
    local dir=$out/corpus/$1
    mkdir -p "$dir"
    [ -n "$(ls -A "$dir")" ] && return
    case $1 in
    stream)
        printf '{"t":"sample","id":1,"text":"a"}\n' | bin/kiln import > "$dir/import.rec" 2> /dev/null
        bin/kiln load "idx:tests/fixtures/fashion-mnist/t10k-200-images-idx3-ubyte.gz" --limit 2 \
            > "$dir/image.rec" 2> /dev/null
        ;;
    safetensors) find tests examples runs -name '*.safetensors' -size -2M 2> /dev/null | head -4 \
        | while read -r f; do cp "$f" "$dir/"; done ;;
    png) find docs examples -name '*.png' -size -64k | head -8 | while read -r f; do cp "$f" "$dir/"; done ;;
    idx) cp tests/fixtures/fashion-mnist/*.gz "$dir/"
        gzip -dc tests/fixtures/fashion-mnist/t10k-200-labels-idx1-ubyte.gz > "$dir/labels.idx" ;;
    json) printf '{"text":"a","label":"b","n":[1,2.5,-3e2],"o":{"x":null,"y":true}}' > "$dir/line.json" ;;
    esac
    [ -n "$(ls -A "$dir")" ] || printf 'x' > "$dir/empty"
}

pass=0 fail=0
for t in "${targets[@]}"; do
    bin_t=$out/fuzz_$t
    clang -std=c11 -D_GNU_SOURCE -O1 -g -Ilib -fsanitize=fuzzer $san "tests/fuzz/fuzz_$t.c" \
        "$out/libkiln.a" -lmsgpackc -lzmq -lopenblas -lpng16 -lz -lm -lpthread -o "$bin_t" \
        || { echo "fuzz_$t: does not build"; fail=$((fail + 1)); continue; }
    seed "$t"
    log=$out/fuzz_$t.log
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$bin_t" -max_total_time="$secs" \
        -max_len=262144 -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$out/crashes/$t-" \
        -print_final_stats=1 "$out/corpus/$t" > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc = 0 ]; then
        echo "fuzz_$t: ${execs:-?} executions in ${secs}s, no crash"
        pass=$((pass + 1))
    else
        echo "fuzz_$t: FAILED after ${execs:-?} executions (exit $rc; $log, $out/crashes/):"
        grep -m 5 -E 'ERROR|runtime error|SUMMARY' "$log" | sed 's/^/  /'
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
