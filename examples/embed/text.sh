#!/usr/bin/env bash
# examples/embed/text.sh [DIR] — passage retrieval on Moby-Dick by the inverse cloze task: a
# sentence is the query, its paragraph without it the passage to find, among the passages of
# every held-out paragraph (the book's last 10%, its last chapters and the epilogue).  Three
# systems side by side, recall@1, recall@10 and mrr@10:
#
#   TF-IDF     words, sublinear tf, IDF fitted on the held-out passages
#              (bench/embed_baseline.py --tfidf), on the same bytes the models see
#   base       a small byte-level GPT pretrained (next byte) on the first 90% of the
#              paragraphs; its mean-pooled final states
#   trained    the base after contrastive training on sentence/paragraph pairs of the same
#              90% (kiln pairs --cloze), pipelines/embed.sh
#
# Rows are at most 128 bytes (the model's context): a passage is its paragraph's first 128
# bytes without the query sentence.  PRE_STEPS, STEPS, QUERIES, LR (contrastive), POOL,
# THREADS override the settings, EVERY evaluates every N steps.  VALIDATE=1 chooses settings
# without the test chapters: the book's first 90% stands in for it (DIR of its own).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="${KILN_BIN:-$here/bin}:$PATH" # KILN_BIN: the tests' (e.g. sanitizer) build
dir=${1:-runs/text-embed}
pre_steps=${PRE_STEPS:-600} steps=${STEPS:-300} queries=${QUERIES:-400} threads=${THREADS:-0}
lr=${LR:-1e-3} pool=${POOL:-mean} every=${EVERY:-$steps}
book=$here/examples/data/moby-dick.txt
mkdir -p "$dir"
log() { echo "text.sh: $*" >&2; }
. "$here/examples/embed/table.bash"
t0=$(date +%s)
if [ "${VALIDATE:-0}" = 1 ]; then # choosing settings: the book's first 90% only, so that the
    # held-out paragraphs are its 81-90% and the test paragraphs stay unseen
    n=$(kiln load "text:$book" --split paragraphs 2> /dev/null | kiln show | grep -c '"t":"sample"')
    kiln load "text:$book" --split paragraphs --limit $((n - n / 10)) 2> /dev/null \
        | kiln show --full | jq -r 'select(.t == "sample") | .text + "\n"' > "$dir/book.txt"
    book=$dir/book.txt
fi

# ---- the base: next-byte pretraining on the first 90% of the paragraphs ------------------------
paras=$(kiln load "text:$book" --split paragraphs 2> /dev/null | kiln show | grep -c '"t":"sample"')
base=$dir/base/latest.safetensors
if [ ! -f "$base" ]; then
    log "pretraining the base for $pre_steps steps on $((paras - paras / 10)) of $paras paragraphs"
    # the training paragraphs in a file (as pipelines/embed.sh holds them out: --limit with
    # --shuffle would take held-out ones)
    kiln load "text:$book" --split paragraphs --limit $((paras - paras / 10)) 2> /dev/null \
        | kiln show --full | jq -r 'select(.t == "sample") | .text + "\n"' > "$dir/train.txt"
    kiln load "text:$dir/train.txt" --split paragraphs --epochs 0 --shuffle --seed 1 2> /dev/null \
        | kiln tokenize --bytes | kiln batch --pack -B 16 -T 128 \
        | kiln train --layers 3 --dim 128 --heads 4 --ctx 128 --steps "$pre_steps" --lr 2e-3 \
            --threads "$threads" \
        | kiln ckpt --dir "$dir/base" | kiln show --progress --total "$pre_steps"
fi

# ---- contrastive training on the inverse cloze task, base and trained side by side -------------
"$here/pipelines/embed.sh" --base "$base" --text "$book" --val-records "$queries" \
    --steps "$steps" --batch 32 --lr "$lr" --pool "$pool" --every "$every" --threads "$threads" --out "$dir/embed"

# ---- TF-IDF on the same queries and passages, scored by kiln search -------------------------------
tfidf=(/usr/bin/python3 "$here/bench/embed_baseline.py" --tfidf "$dir/embed/corpus.rec")
"${tfidf[@]}" < "$dir/embed/corpus.rec" | kiln index -o "$dir/tfidf.index" > /dev/null
baseline=$("${tfidf[@]}" < "$dir/embed/queries.rec" \
    | kiln search --index "$dir/tfidf.index" -k 10 --relevant id --threads "$threads" 2> /dev/null \
    | retrieval_tsv)
n=$(kiln show < "$dir/embed/queries.rec" | grep -c '"t":"tokens"')
retrieval_table "system ($n held-out sentences, each against $n passages)" \
    "TF-IDF (words, sublinear tf)" "$baseline" "$dir" "$steps" "$pool"
log "$(($(date +%s) - t0)) s in all; table in $dir/results.md"
