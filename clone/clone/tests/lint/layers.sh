#!/usr/bin/env bash
# lib/ is layered (docs/architecture.md): a module includes only its own layer and those
# below it.  The order, lowest first; plot sits beside model, over data.
set -u
root=${KILN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
rank() {
    case $1 in
    core) echo 0 ;; stream) echo 1 ;; data) echo 2 ;; model | plot) echo 3 ;;
    ckpt) echo 4 ;; run) echo 5 ;; *) echo 99 ;;
    esac
}
bad=0
for f in "$root"/lib/*/*.[ch]; do
    layer=$(basename "$(dirname "$f")")
    [ "$(rank "$layer")" = 99 ] && { echo "lib/$layer: a folder that is not a layer"; bad=1; }
    while read -r inc; do
        dep=${inc%%/*}
        if [ "$inc" = "$dep" ]; then
            echo "${f#"$root"/}: includes \"$inc\" without its layer folder"; bad=1
        elif [ "$(rank "$dep")" -gt "$(rank "$layer")" ] ||
            { [ "$dep" != "$layer" ] && [ "$(rank "$dep")" = "$(rank "$layer")" ]; }; then
            echo "${f#"$root"/}: $layer includes $inc, from a layer above or beside it"; bad=1
        fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
[ $bad = 0 ] && echo "lib/ layers: no include goes up"
exit $bad
