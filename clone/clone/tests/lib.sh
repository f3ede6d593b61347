# Shared helpers for stage and flow tests (sourced).  Each test script runs in its own
# empty working directory; $KILN_BIN holds the programs, $KILN_ROOT the source tree.
set -uo pipefail
K="$KILN_BIN/kiln"
fails=0
# expect_status WANT CMD... : run CMD, compare its exit status
expect_status() {
    local want=$1; shift
    "$@"; local got=$?
    if [ "$got" != "$want" ]; then echo "FAIL: '$*' exited $got, want $want" >&2; fails=$((fails + 1)); fi
}
# expect TEST-EXPRESSION MESSAGE
expect() {
    if ! eval "$1"; then echo "FAIL: $2 [$1]" >&2; fails=$((fails + 1)); fi
}
finish() { [ "$fails" -eq 0 ] && exit 0; echo "$fails checks failed" >&2; exit 1; }
skip() { echo "$1"; exit 77; }
