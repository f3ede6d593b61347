#!/usr/bin/env bash
# The test runner: every unit-test binary, then every stage and flow test script.
# A test passes on exit 0, is skipped on exit 77, fails otherwise.  Ends with the
# summary line CI reads: "N passed, N failed" (", N skipped" when any were skipped).
#   KILN_BIN    directory of the built programs (bin/)
#   KILN_UNITS  directory of the built unit tests
#   KILN_TESTS  optional filter: only tests whose path contains this string
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${KILN_BIN:=$here/../bin}" "${KILN_UNITS:=$here/../build/rel/tests}"
export KILN_BIN KILN_ROOT="$here/.." PATH="$KILN_BIN:$PATH"
pass=0 fail=0 skip=0 failed=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/kiln-tests.XXXXXX")

run_one() { # name, command...
    local name=$1; shift
    [ -n "${KILN_TESTS:-}" ] && [[ "$name" != *"$KILN_TESTS"* ]] && return
    local log="$logdir/$(echo "$name" | tr '/' '_').log" t0=$SECONDS rc
    (cd "$(mktemp -d "$logdir/work.XXXXXX")" && exec "$@") >"$log" 2>&1 </dev/null
    rc=$?
    if [ $rc -eq 0 ]; then pass=$((pass + 1)); printf 'ok    %-44s %3ds\n' "$name" $((SECONDS - t0))
    elif [ $rc -eq 77 ]; then skip=$((skip + 1)); printf 'skip  %-44s (%s)\n' "$name" "$(tail -1 "$log")"
    else
        fail=$((fail + 1)); failed+=("$name")
        printf 'FAIL  %-44s exit %d\n' "$name" $rc
        tail -n 25 "$log" | sed 's/^/      | /'
    fi
}

for t in "$KILN_UNITS"/test_*; do
    [ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"
done
for t in "$here"/lint/*.sh "$here"/stage/*.sh "$here"/flow/*.sh; do
    [ -f "$t" ] && run_one "${t#"$here"/}" bash "$t"
done

rm -rf "$logdir"
[ ${#failed[@]} -gt 0 ] && printf 'failed: %s\n' "${failed[*]}"
if [ $skip -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"
else echo "$pass passed, $fail failed"; fi
[ $fail -eq 0 ]
