# examples/embed/table.bash — sourced (never run) by the retrieval examples (emoji.sh, text.sh):
# their table of three systems, recall@1, recall@10 and mrr@10, from kiln search's metrics.

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
