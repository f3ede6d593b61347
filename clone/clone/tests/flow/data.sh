# The data flow of issue 3 end to end: the two "done when" pipelines (text and images).
# tests/flow/data_workers.sh runs the same with parallel workers over ZeroMQ.
. "$KILN_ROOT/tests/lib.sh"
FM="$KILN_ROOT/tests/fixtures/fashion-mnist"
IDX="idx:$FM/t10k-200-images-idx3-ubyte.gz,$FM/t10k-200-labels-idx1-ubyte.gz"
CLASSES="$KILN_ROOT/examples/data/fashion-mnist.classes"

# Text: moby-dick -> bytes -> packed [4,64] batches.
"$K" load "text:$KILN_ROOT/examples/data/moby-dick.txt" | "$K" tokenize --bytes \
    | "$K" batch -B 4 -T 64 --pack | "$K" show > text.jsonl
expect '[ "$(head -1 text.jsonl | jq -c "[.t, .x.shape]")" = "[\"batch\",[4,64]]" ]' "text batches of [4,64]"
expect '[ $(wc -l < text.jsonl) -gt 4000 ]' "the whole book is batched ($(wc -l < text.jsonl) batches)"

# Images: Fashion-MNIST (the Debian files when installed, else the committed subset).
D=/usr/share/datasets/fashion-mnist
src="$IDX"
[ -r "$D/train-images-idx3-ubyte.gz" ] && [ "${KILN_SAN:-}" != 1 ] &&
    src="idx:$D/train-images-idx3-ubyte.gz,$D/train-labels-idx1-ubyte.gz"
"$K" load "$src" --classes "$CLASSES" | "$K" augment hflip crop:2 | "$K" tokenize --levels 16 \
    | "$K" batch -B 32 -T 784 | "$K" show > img.jsonl
expect '[ "$(head -1 img.jsonl | jq -c "[.t, .x.shape, .mask.shape]")" = "[\"batch\",[32,784],[32,784]]" ]' "image batches of [32,784]"

finish
