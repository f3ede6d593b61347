# The documented commands run as written in a fresh clone: every command line of the
# ```sh blocks of README.md and docs/*.md runs in a copy of the source tree (the files git
# tracks or would add, no runs/, no build) with the built programs in its bin/ and bin/ on
# PATH, as the README's "export PATH" line sets it up.  A command passes when it exits 0
# and, in a "$ command" block, prints the output lines shown under it.
#
# Blocks fenced ```sh promise this; blocks with placeholders (`...`, FILE) use a plain ```
# fence.  Slow commands are shrunk the same way every time (--steps divided by 250, a
# one-layer model for pretrain.sh and finetune.sh) or skipped with the reason below, so
# the whole test takes well under a minute on 2 cores.
. "$KILN_ROOT/tests/lib.sh"
command -v jq > /dev/null || skip "jq is not installed (make test-deps)"
root=$KILN_ROOT

# ---- a fresh copy --------------------------------------------------------------------------
mkdir clone
if git -C "$root" rev-parse --git-dir > /dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -xf - -C clone
else
    (cd "$root" && tar --exclude=./bin --exclude=./build --exclude=./runs -cf - .) | tar -xf - -C clone
fi
[ ! -e clone/bin ] && [ ! -e clone/runs ] || { echo "the copy is not fresh"; exit 1; }
cp -r "$KILN_BIN" clone/bin
export PATH="$PWD/clone/bin:$PATH"

# ---- the commands ----------------------------------------------------------------------------
# One command a record, separated by NUL: "FILE:LINE<TAB>COMMAND<TAB>EXPECTED OUTPUT".
extract() {
    awk '
    function flush() {
        if (cmd != "") printf "%s:%d\t%s\t%s%c", FILENAME, at, cmd, want, 0
        cmd = ""; want = ""
    }
    /^```sh[ \t]*$/ { inb = 1; dollar = 0; next }
    /^```/ { if (inb) flush(); inb = 0; cont = 0; next }
    !inb { next }
    cont { cmd = cmd "\n" $0; cont = /\\$/; next }
    /^\$ / { flush(); dollar = 1; cmd = substr($0, 3); at = FNR; cont = /\\$/; next }
    dollar { want = want $0 "\n"; next }
    /^[ \t]*(#|$)/ { next }
    { flush(); cmd = $0; at = FNR; cont = /\\$/ }
    ' "$@"
}

# Why a command does not run here, or nothing when it runs.
skip_reason() {
    local c=${1%%#*}
    c=${c%"${c##*[! ]}"} # the command without its comment and trailing blanks
    case "$c" in
    make | make\ -s | make\ -j*) echo "the build under test is already in bin/" ;;
    make\ demo*) echo "tests/flow/demo.sh runs examples/demo.sh small" ;;
    make\ test* | make\ san* | *tests/run.sh*) echo "the test suite itself" ;;
    make\ bench* | bench/*) echo "benchmarks take minutes" ;;
    make\ deps* | make\ examples* | make\ install*) echo "installs packages or files outside the tree" ;;
    *examples/fashion-mnist.sh* | *examples/animals/* | *examples/transfer/* | *examples/text/*)
        echo "an example run of minutes (timed in the docs)" ;;
    *mpirun\ * | *"< mpi"*.rec) mpi_missing ;; # (and what reads an MPI run's output)
    esac
}

# Why the MPI commands cannot run here, or nothing.
mpi_missing() {
    if ! command -v mpirun > /dev/null || [[ $(ldd "$KILN_BIN/kiln-train") != *libmpi* ]]; then
        echo "no mpirun, or kiln built without MPI (make deps; rebuild)"
    elif [ -n "${KILN_SAN:-}" ]; then
        echo "LeakSanitizer reports Open MPI's own allocations (tests/flow/mpi_equivalence.sh)"
    fi
}

# The fast version of a command: --steps N becomes N/250 (at least 2), the pipelines train
# a one-layer model.
shrink() {
    local c=$1 re='(.*--steps )([0-9]+)(.*)'
    if [[ $c =~ $re ]] && [ "${BASH_REMATCH[2]}" -ge 20 ]; then
        local n=$((BASH_REMATCH[2] / 250))
        c="${BASH_REMATCH[1]}$((n > 2 ? n : 2))${BASH_REMATCH[3]}"
    fi
    local tiny="--layers 1 --dim 32 --heads 2 --ctx 32 --batch 4 --val-records 4 --threads 2"
    case "$c" in
    *pipelines/pretrain.sh\ --text*) c="${c%%#*} $tiny --every 3" ;;
    *pipelines/finetune.sh*) c="${c%%#*} --steps 4 --ctx 32 --val-records 4 --threads 2" ;;
    esac
    printf '%s' "$c"
}

ran=0 skipped=0 t0=$SECONDS
while IFS=$'\t' read -r -d '' where cmd want; do
    why=$(skip_reason "$cmd")
    if [ -n "$why" ]; then
        echo "skip  $where  $cmd  ($why)"
        skipped=$((skipped + 1))
        continue
    fi
    run=$(shrink "$cmd")
    file=${where%%:*}
    [ "$file" = "${last_file:-}" ] || : > env.sh # an `export` lasts until the end of its file
    last_file=$file
    case "$run" in export\ *) echo "$run" >> env.sh ;; esac
    t1=$SECONDS
    (cd clone && KILN_THREADS=2 timeout 120 bash -o pipefail -c ". ../env.sh; $run") > out.txt 2> err.txt < /dev/null
    rc=$?
    echo "ran   $where  $run  (exit $rc, $((SECONDS - t1)) s)"
    ran=$((ran + 1))
    expect '[ $rc = 0 ]' "$where: '$cmd' exited $rc: $(tail -3 err.txt | tr '\n' ' ')"
    if [ -n "$want" ]; then
        printf '%s' "$want" > want.txt
        expect 'cmp -s want.txt out.txt' "$where: '$cmd' printed $(head -3 out.txt), the docs show $(cat want.txt)"
    fi
done < <(cd clone && extract README.md docs/*.md)

echo "$ran commands ran, $skipped skipped, $((SECONDS - t0)) s"
expect '[ $ran -ge 10 ]' "at least 10 documented commands ran ($ran)"
finish
