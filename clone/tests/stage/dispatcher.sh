# kiln STAGE runs kiln-STAGE; kiln lists stages; a user's kiln-STAGE earlier on PATH or in
# KILN_EXEC_PATH replaces ours; every program has --help (summary first, an example) and --version.
. "$KILN_ROOT/tests/lib.sh"
"$K" > list.txt; rc=$?
expect '[ $rc = 0 ] && grep -q "^  show .*JSON lines" list.txt && grep -q "^  import " list.txt' "kiln lists stages with a line each"
expect '"$K" help show | grep -q "^usage: kiln show"' "kiln help STAGE shows its help"
"$K" no-such-stage 2> err.txt; rc=$?
expect '[ $rc = 2 ] && grep -q "not a kiln stage" err.txt' "unknown stage exits 2"

mkdir mine; printf '#!/bin/sh\necho "my show $*"\n' > mine/kiln-show; chmod +x mine/kiln-show
expect '[ "$(PATH="$PWD/mine:$PATH" "$K" show -x)" = "my show -x" ]' "kiln-show earlier on PATH replaces the stage"
expect '[ "$(KILN_EXEC_PATH="$PWD/mine" "$K" show)" = "my show " ]' "KILN_EXEC_PATH replaces the stage"

for p in "$KILN_BIN"/kiln-*; do
    name=$(basename "$p") stage=${name#kiln-}
    "$p" --help > help.txt; rc=$?
    expect "[ $rc = 0 ] && head -1 help.txt | grep -q '^kiln $stage — '" "$name --help: first line is its summary"
    expect "grep -qi 'example' help.txt" "$name --help has an example"
    expect "'$p' --version | grep -q '(kiln)'" "$name --version"
    "$p" --no-such-option </dev/null >/dev/null 2>&1; rc=$?
    expect "[ $rc = 2 ]" "$name: a bad option exits 2 (got $rc)"
done

# A stage refuses to write records to a terminal.
if command -v script >/dev/null; then
    script -qec "'$K' import </dev/null" /dev/null > tty.txt 2>&1
    expect 'grep -q "refusing to write records to a terminal" tty.txt' "records are not written to a terminal"
fi
finish
