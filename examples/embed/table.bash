# examples/embed/table.bash — sourced (never run) by the retrieval examples (emoji.sh, text.sh):
# their table of three systems (recall@1, recall@10, mrr@10 from kiln search's metrics) and a
# paired comparison of two of them, query by query.

# The metrics of a hits stream on stdin as "recall@1 TAB recall@10 TAB mrr@10".
retrieval_tsv() {
    kiln show | jq -r 'select(.t == "metrics") | [.["recall@1"], .["recall@10"], .["mrr@10"]] | @tsv'
}

# table TITLE BASELINE-NAME BASELINE-TSV DIR STEPS [POOL]: the Markdown table into DIR/results.md
# and stdout, the models' rows from DIR/embed/{base,trained}.hits.rec (pipelines/embed.sh).
retrieval_table() {
    local row='{ printf "| %s | %.3f | %.3f | %.3f |\n", n, $1, $2, $3 }'
    {
        echo "| $1 | recall@1 | recall@10 | mrr@10 |"
        echo "|---|---|---|---|"
        awk -v n="$2" -F'\t' "$row" <<< "$3"
        local pooled="${6:-mean}-pooled"
        [ "${6:-}" != weightedmean ] || pooled="pooled by position-weighted mean"
        retrieval_tsv < "$4/embed/base.hits.rec" | awk -v n="pretrained model, $pooled" -F'\t' "$row"
        retrieval_tsv < "$4/embed/trained.hits.rec" \
            | awk -v n="after contrastive training ($5 steps)" -F'\t' "$row"
    } | tee "$4/results.md"
}

# A hits stream on stdin as "label TAB first hit right TAB right in the top 10" a query; a hit
# is right when it has the query's label (the examples that search with --relevant label).
right_tsv() {
    kiln show | jq -r 'select(.t == "hits") | .label as $l
        | [$l, (.hits[0].label == $l), ([.hits[:10][].label] | index([$l]) != null)] | @tsv'
}

# paired_table BASELINE-NAME BASELINE-HITS MODEL-HITS OUT [CATEGORIES]: which queries each of
# two systems gets right first and in its top ten, on the same queries, with an exact
# McNemar test (is the difference more than chance?), and with CATEGORIES (lines
# "label TAB category") the first hits right by category; Markdown into OUT and stdout.
paired_table() {
    /usr/bin/python3 - "$1" "${5:-/dev/null}" 3< <(right_tsv < "$2") 4< <(right_tsv < "$3") \
        << 'PY' | tee "$4"
import math, sys

name = sys.argv[1]
categories = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if "\t" in l)
a, b = ([l.split("\t") for l in open(fd).read().split("\n") if l] for fd in (3, 4))
assert [r[0] for r in a] == [r[0] for r in b], "the two hits files answer different queries"


def mcnemar(only_a, only_b):  # exact two-sided binomial test on the discordant queries
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


print(f"| right ({len(a)} queries) | both | only the model | only {name} | neither | McNemar p |")
print("|---|---|---|---|---|---|")
for col, what in ((1, "first hit"), (2, "in the top 10")):
    x = [(ra[col] == "true", rb[col] == "true") for ra, rb in zip(a, b)]
    both = sum(p and q for p, q in x)
    model, base = sum(q and not p for p, q in x), sum(p and not q for p, q in x)
    neither = len(x) - both - model - base
    print(f"| {what} | {both} | {model} | {base} | {neither} | {mcnemar(model, base):.2g} |")
if categories:
    print(f"\n| category | queries | first hit right: the model | {name} |\n|---|---|---|---|")
    for c in sorted({categories.get(r[0], "?") for r in a}):
        i = [j for j, r in enumerate(a) if categories.get(r[0], "?") == c]
        share = lambda rows: sum(rows[j][1] == "true" for j in i) / len(i)
        print(f"| {c} | {len(i)} | {share(b):.0%} | {share(a):.0%} |")
PY
}
