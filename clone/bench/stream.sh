#!/usr/bin/env bash
# bench/stream.sh — what the record stream costs over a raw byte copy.
# For each record size: tensor records through `writer | reader` on a pipe, over ZeroMQ
# ipc:// and tcp://127.0.0.1, beside the same bytes copied raw (write/read of the same size)
# through a pipe of the default 64 KiB and through a 1 MiB pipe (kiln's writer widens its
# pipe to 1 MiB; the second raw column has the same advantage).  Runs are interleaved and
# the median of 7 is reported.  Prints a Markdown table.
#   usage: bench/stream.sh [MB_PER_RUN]   (default 1024)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${KILN_BENCH_BIN:-$here/../build/rel/bench}/stream
[ -x "$B" ] || { echo "build first: make" >&2; exit 1; }
mb=${1:-1024}
runs=7
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() { # one run of a shell command line, in seconds
    local t0=$(date +%s%N); bash -c "$1" > /dev/null; echo "scale=6; ($(date +%s%N) - $t0) / 1000000000" | bc
}
gbs() { echo "scale=2; $1 / $2 / 1000000000" | bc; }

echo "| record | transport | records/s | GB/s | raw 64 KiB pipe GB/s | raw 1 MiB pipe GB/s | kiln / best raw |"
echo "|---|---|---|---|---|---|---|"
for size in 4096 65536 262144 1048576; do
    n=$(( mb * 1048576 / size )); bytes=$(( n * size ))
    declare -A t=()
    for kind in raw raw_wide pipe ipc tcp; do t[$kind]=""; done
    for ((i = 0; i < runs; i++)); do
        port=$((30000 + RANDOM % 20000))
        t[raw]+="$(seconds "$B raw-gen $n $size | $B raw-sink $size") "
        t[raw_wide]+="$(seconds "$B raw-gen $n $size wide | $B raw-sink $size") "
        t[pipe]+="$(seconds "$B gen $n $size | $B sink") "
        t[ipc]+="$(seconds "$B gen $n $size @ipc://$tmp/s & $B sink ipc://$tmp/s; wait") "
        t[tcp]+="$(seconds "$B gen $n $size @tcp://127.0.0.1:$port & $B sink tcp://127.0.0.1:$port; wait") "
    done
    med() { echo ${t[$1]} | tr ' ' '\n' | median; }
    raw=$(gbs $bytes "$(med raw)"); wide=$(gbs $bytes "$(med raw_wide)")
    best=$(echo "if ($raw > $wide) $raw else $wide" | bc)
    for tr in pipe ipc tcp; do
        s=$(med $tr); g=$(gbs $bytes "$s")
        printf '| %d KiB | %s | %.0f | %s | %s | %s | %.2f |\n' $((size / 1024)) $tr \
            "$(echo "$n / $s" | bc -l)" "$g" "$raw" "$wide" "$(echo "$g / $best" | bc -l)"
    done
done
