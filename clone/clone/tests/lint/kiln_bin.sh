#!/usr/bin/env bash
# Every pipeline and example runs the build named by KILN_BIN (the sanitizer suite's), so
# its flow test exercises that build and not a stale bin/.
set -u
root=${KILN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
bad=0
for f in "$root"/pipelines/*.sh "$root"/examples/*.sh "$root"/examples/*/*.sh; do
    grep -qE '(^|[|(\[ ])kiln [a-z]' "$f" || continue # runs kiln stages
    if ! grep -q '^PATH="${KILN_BIN:-' "$f"; then
        echo "${f#"$root"/}: does not put \${KILN_BIN} first on PATH"
        bad=1
    fi
done
[ $bad = 0 ] && echo "every pipeline and example honours KILN_BIN"
exit $bad
