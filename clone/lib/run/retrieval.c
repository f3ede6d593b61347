/* retrieval — accuracy, precision and recall at k, MRR, NDCG and MAP. */
#include "run/retrieval.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "model/embed.h"
#include "model/search.h"

const int kret_k[KRET_NK] = {1, 5, 10};

static bool relevant_hit(int64_t id, const int64_t *relevant, int n_rel) {
    for (int i = 0; i < n_rel; i++)
        if (relevant[i] == id) return true;
    return false;
}

static double dcg_ideal(int n_rel, int k) {
    double d = 0;
    for (int i = 0; i < n_rel && i < k; i++) d += 1.0 / log2(i + 2.0);
    return d;
}

void kret_add(kretrieval *r, const int64_t *hits, int n_hits, const int64_t *relevant, int n_rel) {
    if (n_rel < 1) return;
    r->queries++;
    int correct = 0, first = -1;
    double dcg = 0, precisions = 0;
    for (int rank = 0; rank < n_hits && rank < 100; rank++) {
        bool rel = relevant_hit(hits[rank], relevant, n_rel);
        if (rel) {
            correct++;
            precisions += (double)correct / (rank + 1);
            if (first < 0) first = rank;
            if (rank < 10) dcg += 1.0 / log2(rank + 2.0);
        }
        for (int j = 0; j < KRET_NK; j++)
            if (rank + 1 == kret_k[j] || (rank + 1 == n_hits && rank + 1 < kret_k[j])) {
                r->precision[j] += (double)correct / kret_k[j];
                r->recall[j] += (double)correct / n_rel;
                r->accuracy[j] += correct > 0;
            }
    }
    if (first >= 0 && first < 10) r->mrr10 += 1.0 / (first + 1);
    r->ndcg10 += dcg / dcg_ideal(n_rel, 10);
    r->map100 += precisions / (n_rel < 100 ? n_rel : 100);
}

void kret_finish(kretrieval *r) {
    double n = r->queries ? (double)r->queries : 1;
    for (int j = 0; j < KRET_NK; j++) r->accuracy[j] /= n, r->precision[j] /= n, r->recall[j] /= n;
    r->mrr10 /= n, r->ndcg10 /= n, r->map100 /= n;
}

const char *kret_name(int i) {
    static const char *const names[KRET_N_METRICS] = {
        "accuracy@1", "accuracy@5", "accuracy@10", "precision@1", "precision@5", "precision@10",
        "recall@1",   "recall@5",   "recall@10",   "mrr@10",      "ndcg@10",     "map@100"};
    return i >= 0 && i < KRET_N_METRICS ? names[i] : NULL;
}

double kret_value(const kretrieval *r, int i) {
    if (i < KRET_NK) return r->accuracy[i];
    if (i < 2 * KRET_NK) return r->precision[i - KRET_NK];
    if (i < 3 * KRET_NK) return r->recall[i - 2 * KRET_NK];
    const double rest[3] = {r->mrr10, r->ndcg10, r->map100};
    return rest[i - 3 * KRET_NK];
}

/* ---- relevance ------------------------------------------------------------------------------ */

static bool query_id(const krec *q, int64_t *id) {
    uint64_t u;
    if (krec_i64(q, "id", id)) return true;
    if (krec_u64(q, "id", &u) && u <= INT64_MAX) return *id = (int64_t)u, true;
    return false;
}

int kret_relevant(const krec *q, const char *how, const int64_t *ids, char *const *labels,
                  int64_t n, int64_t *rel, int cap) {
    int k = 0;
    int64_t id;
    const char *lab;
    size_t ln;
    if (!strcmp(how, "id")) {
        if (!query_id(q, &id)) return 0;
        for (int64_t i = 0; i < n && k < cap; i++)
            if (ids[i] == id) rel[k++] = ids[i];
        return k;
    }
    if (!strcmp(how, "label")) {
        if (!krec_str(q, "label", &lab, &ln)) return 0;
        for (int64_t i = 0; i < n && k < cap; i++)
            if (strlen(labels[i]) == ln && !memcmp(labels[i], lab, ln)) rel[k++] = ids[i];
        return k;
    }
    const msgpack_object *a = krec_get(q, how);
    if (!a || a->type != MSGPACK_OBJECT_ARRAY) return 0;
    for (uint32_t i = 0; i < a->via.array.size && k < cap; i++) {
        const msgpack_object *v = &a->via.array.ptr[i];
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
            rel[k++] = (int64_t)v->via.u64;
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            rel[k++] = v->via.i64;
    }
    return k;
}

/* ---- a retrieval set ------------------------------------------------------------------------ */

/* The tokens records of url, and its hdr's tokenizer into tok. */
static kstored **read_tokens(const char *url, int *n, ktokenizer *tok) {
    kreader *r = kreader_open(url, 1);
    const msgpack_object *t = krec_get(kreader_hdr(r), "tokenizer");
    char err[256];
    if (!t)
        kiln_die(EX_KILN_DATA, "%s: the hdr has no tokenizer (make it with kiln tokenize)", url);
    if (!ktok_from_obj(t, tok, err, sizeof err)) kiln_die(EX_KILN_DATA, "%s: %s", url, err);
    kstored **out = NULL;
    krec rec;
    *n = 0;
    while (kreader_next(r, &rec)) {
        if (!krec_is(&rec, "tokens")) continue;
        out = xrealloc(out, xmul((size_t)*n + 1, sizeof *out));
        out[(*n)++] = kstored_copy(&rec);
    }
    if (kiln_stop_signal()) exit(kiln_stop_status(kiln_stop_signal()));
    kreader_close(r);
    if (!*n) kiln_die(EX_KILN_DATA, "%s: no tokens records", url);
    return out;
}

void kret_set_load(kret_set *s, const char *queries, const char *corpus, const char *relevant) {
    memset(s, 0, sizeof *s);
    s->relevant = relevant;
    s->queries_url = queries;
    ktokenizer ct;
    char a[128], b[128];
    s->queries = read_tokens(queries, &s->nq, &s->tok);
    s->corpus = read_tokens(corpus, &s->nc, &ct);
    if (!ktok_same(&s->tok, &ct)) {
        ktok_describe(&s->tok, a, sizeof a), ktok_describe(&ct, b, sizeof b);
        kiln_die(EX_KILN_DATA, "%s: the corpus's tokenizer (%s) is not the queries' (%s, %s)",
                 corpus, b, a, queries);
    }
    ktok_free(&ct);
    s->ids = xcalloc((size_t)s->nc, sizeof *s->ids);
    s->labels = xcalloc((size_t)s->nc, sizeof *s->labels);
    for (int i = 0; i < s->nc; i++) {
        const krec *r = &s->corpus[i]->rec;
        const char *lab = "";
        size_t ln = 0;
        if (!query_id(r, &s->ids[i]))
            kiln_die(EX_KILN_DATA, "%s: record %llu has no integer id", corpus,
                     (unsigned long long)r->seq);
        krec_str(r, "label", &lab, &ln);
        s->labels[i] = xmalloc(ln + 1);
        memcpy(s->labels[i], lab, ln);
        s->labels[i][ln] = '\0';
    }
}

void kret_set_free(kret_set *s) {
    for (int i = 0; i < s->nq; i++) kstored_free(s->queries[i]);
    for (int i = 0; i < s->nc; i++) kstored_free(s->corpus[i]), free(s->labels[i]);
    free(s->queries), free(s->corpus), free(s->ids), free(s->labels);
    if (s->queries) ktok_free(&s->tok);
    memset(s, 0, sizeof *s);
}

void kret_set_check_model(const kret_set *s, const ktokenizer *tok, bool has_tok, int vocab) {
    char a[128], b[128];
    if (has_tok && !ktok_same(tok, &s->tok)) {
        ktok_describe(&s->tok, a, sizeof a), ktok_describe(tok, b, sizeof b);
        kiln_die(EX_KILN_DATA,
                 "%s: the queries' tokenizer (%s) differs from the checkpoint's (%s); tokenize "
                 "queries and corpus as the model's training data",
                 s->queries_url, a, b);
    }
    if (s->tok.vocab != (uint32_t)vocab)
        kiln_die(EX_KILN_DATA, "%s: vocabulary %u, the checkpoint's model has %d", s->queries_url,
                 s->tok.vocab, vocab);
}

/* Every record's `tokens` embedded into out [n, C], 64 rows a forward. */
static void embed_all(gpt *m, gpt_pool_mode mode, kstored **recs, int n, float *out) {
    kembedder *e = kembedder_new(m, mode, 64);
    int C = m->cfg.n_embd, done = 0;
    for (int i = 0; i < n; i++) {
        ktensor t;
        const krec *r = &recs[i]->rec;
        if (!krec_tensor(r, "tokens", &t) || t.dtype != KT_I32 || t.ndim != 1 || !t.shape[0])
            kiln_die(EX_KILN_DATA, "record %llu: tokens is not a non-empty I32 row",
                     (unsigned long long)r->seq);
        int32_t *tok = xmalloc(xmul((size_t)t.shape[0], sizeof(int32_t)));
        ktensor_copy(&t, tok);
        for (uint64_t j = 0; j < t.shape[0]; j++)
            if (tok[j] < 0 || tok[j] >= m->cfg.vocab)
                kiln_die(EX_KILN_DATA, "record %llu: token %d is outside the vocabulary (%d)",
                         (unsigned long long)r->seq, tok[j], m->cfg.vocab);
        kembedder_add(e, tok, (size_t)t.shape[0]);
        free(tok);
        if (kembedder_full(e) || i == n - 1) {
            int rows;
            const float *v = kembedder_run(e, &rows);
            memcpy(out + (size_t)done * C, v, sizeof(float) * (size_t)rows * C);
            done += rows;
        }
    }
    kembedder_free(e);
}

void kret_evaluate(gpt *m, gpt_pool_mode mode, const kret_set *s, kpool *pool, kretrieval *out) {
    enum { K = 100 };
    int C = m->cfg.n_embd;
    float *qv = xmalloc(xmul(xmul((size_t)s->nq, (size_t)C), sizeof(float)));
    float *cv = xmalloc(xmul(xmul((size_t)s->nc, (size_t)C), sizeof(float)));
    embed_all(m, mode, s->queries, s->nq, qv);
    embed_all(m, mode, s->corpus, s->nc, cv);
    int64_t *idx = xmalloc(xmul((size_t)s->nq * K, sizeof(int64_t)));
    float *score = xmalloc(xmul((size_t)s->nq * K, sizeof(float)));
    ksearch_topk(pool, cv, s->nc, qv, s->nq, C, K, idx, score);
    memset(out, 0, sizeof *out);
    for (int q = 0; q < s->nq; q++) {
        int64_t hits[K], rel[1024];
        for (int j = 0; j < K; j++)
            hits[j] = idx[(size_t)q * K + j] >= 0 ? s->ids[idx[(size_t)q * K + j]] : INT64_MIN;
        int nrel =
            kret_relevant(&s->queries[q]->rec, s->relevant, s->ids, s->labels, s->nc, rel, 1024);
        kret_add(out, hits, K < s->nc ? K : s->nc, rel, nrel);
    }
    kret_finish(out);
    free(qv), free(cv), free(idx), free(score);
}
