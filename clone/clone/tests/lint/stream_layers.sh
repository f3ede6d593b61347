#!/usr/bin/env bash
# Inside lib/stream/ the transports sit below the records (lib/stream/transport.h): a
# transport or the bounding module never includes the record layer, and the record layer
# reaches a transport only through its table, never a backend by name or ZeroMQ itself.
set -u
root=${KILN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
s="$root/lib/stream"
bad=0
for f in "$s"/transport.[ch] "$s"/fdio.c "$s"/zmqio.c "$s"/mpscan.[ch]; do
    [ -f "$f" ] || { echo "${f#"$root"/}: missing"; bad=1; continue; }
    if grep -nE '#include "stream/(stream|cli|options)\.h"' "$f"; then
        echo "${f#"$root"/}: a transport includes the record layer"; bad=1
    fi
done
if grep -nE '#include <zmq\.h>|\bkt_(fd|zmq)\b|\bzmq_' "$s"/stream.c; then
    echo "lib/stream/stream.c: reaches a transport other than through its table"; bad=1
fi
[ $bad = 0 ] && echo "lib/stream: transports below records, reached through the table"
exit $bad
