/* kiln-search — queries in, their nearest neighbours in an index out (exact search by
 * cosine through kiln's GEMM), and retrieval metrics when the queries say what is relevant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/index.h"
#include "data/sample.h"
#include "model/search.h"
#include "run/retrieval.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "find each query's nearest neighbours in an index; retrieval metrics",
    .usage = "kiln search --index FILE [-k K] [--relevant id|label|FIELD] [--threads N]",
    .notes =
        "Queries are embedding records (kiln embed, with the model that built the index: its\n"
        "weights hash is checked).  Each becomes a `hits` record: the query's fields but its\n"
        "vector, and `hits`, best first: [{id, score, text, label}] (score = cosine).  With\n"
        "--relevant, queries that have relevant rows are scored and a metrics record {stage\n"
        "search, accuracy@1/5/10, precision@1/5/10, recall@1/5/10, mrr@10, ndcg@10, map@100,\n"
        "queries} ends the stream (sentence-transformers' definitions, lib/run/retrieval.h);\n"
        "queries with labels also get knn_accuracy: the majority label of the k hits is theirs.\n"
        "  --relevant id      the index rows with the query's id\n"
        "  --relevant label   the index rows with the query's label\n"
        "  --relevant FIELD   the ids in the query's array field FIELD\n"
        "example:\n"
        "  kiln load text:questions.txt --split lines | kiln tokenize --bytes --keep \\\n"
        "    | kiln embed --ckpt model.safetensors | kiln search --index notes.index -k 5 \\\n"
        "    | kiln show\n",
};

enum { QUERY_BATCH = 256 };

typedef struct options {
    const char *index, *relevant;
    int k, threads;
} options;

typedef struct searcher {
    options o;
    kindex *ix;
    kpool *pool;
    kstored *queries[QUERY_BATCH];
    float *qv; /* [QUERY_BATCH, C] */
    int n;
    int64_t *idx;
    float *score;
    int kk; /* hits searched: k, or 100 when scoring (map@100 looks that far) */
    kretrieval metrics;
    uint64_t knn_right, knn_total;
} searcher;

/* The label most of the hits carry (ties: the best-ranked), or NULL. */
static const char *vote(const searcher *s, const int64_t *hits, int k) {
    const char *best = NULL;
    int best_n = 0;
    for (int i = 0; i < k && hits[i] >= 0; i++) {
        const char *l = s->ix->labels[hits[i]];
        int n = 0;
        for (int j = 0; j < k && hits[j] >= 0; j++) n += !strcmp(l, s->ix->labels[hits[j]]);
        if (n > best_n) best = l, best_n = n;
    }
    return best;
}

static void score_query(searcher *s, const krec *q, const int64_t *rows, int k, int vote_k) {
    int64_t ids[1024], rel[1024];
    for (int i = 0; i < k; i++) ids[i] = rows[i] >= 0 ? s->ix->ids[rows[i]] : INT64_MIN;
    int nrel = kret_relevant(q, s->o.relevant, s->ix->ids, s->ix->labels, s->ix->n, rel, 1024);
    kret_add(&s->metrics, ids, k, rel, nrel);
    const char *lab;
    size_t ln;
    if (krec_str(q, "label", &lab, &ln)) {
        const char *v = vote(s, rows, vote_k);
        s->knn_total++;
        s->knn_right += v && strlen(v) == ln && !memcmp(v, lab, ln);
    }
}

static void write_hits(kwriter *w, const searcher *s, const krec *q, const int64_t *rows,
                       const float *score) {
    static const char *const skip[] = {"embedding", NULL};
    kwriter_begin(w, "hits");
    kw_copy_fields(w, q, skip);
    kw_key(w, "hits");
    msgpack_packer *pk = kw_packer(w);
    int k = 0;
    while (k < s->o.k && rows[k] >= 0) k++;
    msgpack_pack_array(pk, (size_t)k);
    for (int i = 0; i < k; i++) {
        const char *text = s->ix->texts[rows[i]], *label = s->ix->labels[rows[i]];
        msgpack_pack_map(pk, 2 + (text[0] != 0) + (label[0] != 0));
        msgpack_pack_str_with_body(pk, "id", 2);
        msgpack_pack_int64(pk, s->ix->ids[rows[i]]);
        msgpack_pack_str_with_body(pk, "score", 5);
        msgpack_pack_double(pk, score[i]);
        if (text[0]) {
            msgpack_pack_str_with_body(pk, "text", 4);
            msgpack_pack_str_with_body(pk, text, strlen(text));
        }
        if (label[0]) {
            msgpack_pack_str_with_body(pk, "label", 5);
            msgpack_pack_str_with_body(pk, label, strlen(label));
        }
    }
    kwriter_end(w);
}

static void run_batch(searcher *s, kwriter *w) {
    int k = s->kk;
    ksearch_topk(s->pool, s->ix->vectors, s->ix->n, s->qv, s->n, s->ix->dim, k, s->idx, s->score);
    for (int i = 0; i < s->n; i++) {
        const krec *q = &s->queries[i]->rec;
        if (s->o.relevant) score_query(s, q, s->idx + (size_t)i * k, k, s->o.k);
        write_hits(w, s, q, s->idx + (size_t)i * k, s->score + (size_t)i * k);
        kstored_free(s->queries[i]);
    }
    s->n = 0;
}

static void add_query(searcher *s, const krec *r) {
    ktensor t;
    if (!krec_tensor(r, "embedding", &t) || t.dtype != KT_F32 || t.ndim != 1)
        kiln_die(EX_KILN_DATA, "record %llu: embedding is not an F32 [C] vector",
                 (unsigned long long)r->seq);
    if (t.shape[0] != (uint64_t)s->ix->dim)
        kiln_die(EX_KILN_DATA, "record %llu: a query of width %llu, but %s holds width %d",
                 (unsigned long long)r->seq, (unsigned long long)t.shape[0], s->o.index,
                 s->ix->dim);
    float *v = s->qv + (size_t)s->n * s->ix->dim;
    ktensor_copy(&t, v);
    for (int c = 0; c < s->ix->dim; c++)
        if (v[c] != v[c])
            kiln_die(EX_KILN_DATA, "record %llu: a NaN in the query vector",
                     (unsigned long long)r->seq);
    s->queries[s->n++] = kstored_copy(r);
}

static void write_metrics(kwriter *w, searcher *s) {
    kret_finish(&s->metrics);
    kwriter_begin(w, "metrics");
    kw_str(w, "stage", "search");
    for (int i = 0; i < KRET_N_METRICS; i++) kw_f64(w, kret_name(i), kret_value(&s->metrics, i));
    if (s->knn_total) kw_f64(w, "knn_accuracy", (double)s->knn_right / (double)s->knn_total);
    kw_u64(w, "queries", s->metrics.queries);
    kwriter_end(w);
    fprintf(stderr, "%s: %llu queries: recall@1 %.4f  recall@10 %.4f  mrr@10 %.4f\n", kiln_prog(),
            (unsigned long long)s->metrics.queries, s->metrics.recall[0], s->metrics.recall[2],
            s->metrics.mrr10);
}

static void open_index(searcher *s, const krec *hdr) {
    char err[512], model[32] = "";
    int rc = kindex_read(s->o.index, &s->ix, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    if (s->ix->n == 0) kiln_die(EX_KILN_DATA, "%s: the index is empty", s->o.index);
    kobj_cstr(krec_get(hdr, "model_hash"), model, sizeof model);
    if (model[0] && s->ix->model[0] && strcmp(model, s->ix->model))
        kiln_die(EX_KILN_DATA,
                 "%s: built with model %s, but the queries were embedded by %s (embed both "
                 "with one checkpoint)",
                 s->o.index, s->ix->model, model);
    s->qv = xmalloc(xmul((size_t)QUERY_BATCH * (size_t)s->ix->dim, sizeof(float)));
    s->kk = s->o.relevant && s->o.k < 100 ? 100 : s->o.k;
    s->idx = xmalloc(xmul((size_t)QUERY_BATCH * (size_t)s->kk, sizeof(int64_t)));
    s->score = xmalloc(xmul((size_t)QUERY_BATCH * (size_t)s->kk, sizeof(float)));
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    searcher s = {.o = {.k = 10}};
    kopt rows[] = {
        KOPT_STRING(0, "index", &s.o.index, "FILE", "the index (kiln index writes it)",
                    .flags = KOPT_REQUIRED),
        KOPT_INT('k', "top-k", &s.o.k, "K", 1, 1024, "hits per query (default 10)"),
        KOPT_STRING(0, "relevant", &s.o.relevant, "HOW",
                    "score the hits: id, label, or an array field of relevant ids"),
        KOPT_THREADS(&s.o.threads),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    open_index(&s, hdr);
    s.pool = kpool_create(s.o.threads);
    kwriter_hdr_begin(w, hdr, "hits", krec_u64_or(hdr, "seed", 0));
    kwriter_end(w);
    krec rec;
    while (!kwriter_gone(w) && kreader_next(r, &rec)) {
        if (!krec_is(&rec, "embedding")) {
            kwriter_pass(w, &rec);
            continue;
        }
        add_query(&s, &rec);
        if (s.n == QUERY_BATCH) run_batch(&s, w);
        if (kiln_stop_signal()) break;
    }
    if (!kwriter_gone(w)) {
        if (s.n) run_batch(&s, w);
        if (s.o.relevant) write_metrics(w, &s);
    }
    free(s.qv), free(s.idx), free(s.score);
    kindex_free(s.ix);
    kpool_free(s.pool);
    kiln_finish(r, w);
}
