/* contrastive — InfoNCE over pooled, normalised embeddings. */
#include "run/contrastive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

kcontrastive_opts kcontrastive_defaults(void) {
    return (kcontrastive_opts){.scale = 20.0, .symmetric = false, .pool = GPT_POOL_MEAN};
}

/* ---- the loss on embeddings ------------------------------------------------------------- */

/* u = rows / |rows| per row; norms kept for the backward. */
static void normalise(const float *rows, int n, int C, double *u, double *norm) {
    for (int r = 0; r < n; r++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += (double)rows[(size_t)r * C + c] * rows[(size_t)r * C + c];
        norm[r] = sqrt(s) > 1e-12 ? sqrt(s) : 1e-12;
        for (int c = 0; c < C; c++) u[(size_t)r * C + c] = rows[(size_t)r * C + c] / norm[r];
    }
}

/* Cross-entropy of row i of S [n_rows, stride] over n columns, with its gradient added to dS
 * (scaled by w).  Step is the distance between columns (1 for a row, stride for a column of
 * S).  role[j] says what column j is: ROLE_NEGATIVE, ROLE_POSITIVE (the targets, averaged
 * over), or ROLE_OUT (not a candidate).  *hit: whether the best candidate is a target. */
enum { ROLE_NEGATIVE, ROLE_POSITIVE, ROLE_OUT };

static double xent(const double *s, int n, size_t step, const uint8_t *role, double w, double *ds,
                   bool *hit) {
    double mx = -INFINITY, sum = 0, target = 0;
    int arg = 0, npos = 0;
    for (int j = 0; j < n; j++) {
        if (role[j] == ROLE_OUT) continue;
        if (s[j * step] > mx) mx = s[j * step], arg = j;
        if (role[j] == ROLE_POSITIVE) npos++, target += s[j * step];
    }
    for (int j = 0; j < n; j++)
        if (role[j] != ROLE_OUT) sum += exp(s[j * step] - mx);
    for (int j = 0; j < n; j++)
        if (role[j] != ROLE_OUT)
            ds[j * step] +=
                w * (exp(s[j * step] - mx) / sum - (role[j] == ROLE_POSITIVE) / (double)npos);
    *hit = role[arg] == ROLE_POSITIVE;
    return mx + log(sum) - target / npos;
}

/* The roles of the first n candidates for pair i (the rest, hard negatives, are negatives):
 * its own is the positive; another pair of its group (group may be NULL) is left out, or, with
 * group_positives, a positive too. */
static void roles(const int64_t *group, bool group_positives, int i, int n, uint8_t *role) {
    for (int j = 0; j < n; j++) {
        bool same = j == i || (group && group[j] == group[i]);
        role[j] = j == i || (same && group_positives) ? ROLE_POSITIVE
                  : same                              ? ROLE_OUT
                                                      : ROLE_NEGATIVE;
    }
}

/* Backward of u = rows / |rows|: d rows = (du - u (u . du)) / |rows|. */
static void normalise_backward(const double *u, const double *du, const double *norm, int n, int C,
                               float *d) {
    for (int r = 0; r < n; r++) {
        const double *ur = u + (size_t)r * C, *dr = du + (size_t)r * C;
        double dot = 0;
        for (int c = 0; c < C; c++) dot += ur[c] * dr[c];
        for (int c = 0; c < C; c++) d[(size_t)r * C + c] = (float)((dr[c] - ur[c] * dot) / norm[r]);
    }
}

double kcontrastive_loss(const float *rows, int n_anchor, int n_cand, int C, const int64_t *group,
                         const kcontrastive_opts *o, float *d, double *accuracy) {
    int A = n_anchor, n = A + n_cand;
    double *u = xcalloc(xmul((size_t)n, (size_t)C), sizeof(double));
    double *du = xcalloc(xmul((size_t)n, (size_t)C), sizeof(double));
    double *norm = xcalloc((size_t)n, sizeof(double));
    double *S = xcalloc(xmul((size_t)A, (size_t)n_cand), sizeof(double));
    double *dS = xcalloc(xmul((size_t)A, (size_t)n_cand), sizeof(double));
    uint8_t *role = xcalloc((size_t)n_cand, 1); /* hard negatives (j >= A) stay negatives */
    normalise(rows, n, C, u, norm);
    const double *ua = u, *uc = u + (size_t)A * C;
    for (int i = 0; i < A; i++)
        for (int j = 0; j < n_cand; j++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += ua[(size_t)i * C + c] * uc[(size_t)j * C + c];
            S[(size_t)i * n_cand + j] = o->scale * s;
        }
    double w = o->symmetric ? 0.5 / A : 1.0 / A, loss = 0;
    int hits = 0;
    bool hit;
    for (int i = 0; i < A; i++) {
        roles(group, o->group_positives, i, A, role);
        loss += w * xent(S + (size_t)i * n_cand, n_cand, 1, role, w, dS + (size_t)i * n_cand, &hit);
        hits += hit;
    }
    for (int j = 0; o->symmetric && j < A; j++) { /* each positive picks its anchor */
        roles(group, o->group_positives, j, A, role);
        loss += w * xent(S + j, A, (size_t)n_cand, role, w, dS + j, &hit);
    }
    if (accuracy) *accuracy = (double)hits / A;
    if (d) {
        for (int i = 0; i < A; i++)
            for (int j = 0; j < n_cand; j++) {
                double g = o->scale * dS[(size_t)i * n_cand + j];
                if (g == 0) continue;
                for (int c = 0; c < C; c++) {
                    du[(size_t)i * C + c] += g * uc[(size_t)j * C + c];
                    du[(size_t)(A + j) * C + c] += g * ua[(size_t)i * C + c];
                }
            }
        normalise_backward(u, du, norm, n, C, d);
    }
    free(u), free(du), free(norm), free(S), free(dS), free(role);
    return loss;
}

/* ---- the objective -------------------------------------------------------------------------- */

typedef struct contrastive {
    kcontrastive_opts o;
    int32_t *x;
    uint8_t *mask;
    float *rows, *drows;
    int64_t *group; /* the record's group [B], or NULL: every other pair is a negative */
    size_t cap;
} contrastive;

static void reserve(contrastive *s, size_t tokens, size_t floats) {
    if (tokens > s->cap) {
        s->cap = tokens;
        s->x = xrealloc(s->x, xmul(tokens, sizeof(int32_t)));
        s->mask = xrealloc(s->mask, tokens);
    }
    s->rows = xrealloc(s->rows, xmul(floats, sizeof(float)));
    s->drows = xrealloc(s->drows, xmul(floats, sizeof(float)));
}

/* Rows `key` [n, T] and `key_mask` into x/mask at row `at`; its row count, or -1 (err set). */
static int take_rows(contrastive *s, const krec *r, const char *key, const char *mkey, int at,
                     uint64_t T, char *err, size_t errsz) {
    ktensor x, m;
    unsigned long long seq = (unsigned long long)r->seq;
    if (!krec_tensor(r, key, &x) || x.dtype != KT_I32 || x.ndim != 2 || x.shape[1] != T ||
        !krec_tensor(r, mkey, &m) || m.dtype != KT_U8 || m.ndim != 2 || m.shape[0] != x.shape[0] ||
        m.shape[1] != T)
        return kiln_errf(err, errsz, -1,
                         "record %llu: pairs need %s I32 [n,T] and %s U8 of the same shape", seq,
                         key, mkey);
    ktensor_copy(&x, s->x + (size_t)at * T);
    ktensor_copy(&m, s->mask + (size_t)at * T);
    return (int)x.shape[0];
}

/* The record's rows, in the order anchors, positives, negatives; 0 or 65. */
static int read_pairs(contrastive *s, const gpt *m, const krec *r, int *A, int *K, int *T,
                      char *err, size_t errsz) {
    ktensor a, neg;
    unsigned long long seq = (unsigned long long)r->seq;
    if (!krec_tensor(r, "anchor", &a) || a.ndim != 2 || a.shape[0] < 1 || a.shape[1] < 1)
        return kiln_errf(err, errsz, EX_KILN_DATA, "record %llu: pairs need anchor I32 [B,T]", seq);
    uint64_t B = a.shape[0], len = a.shape[1];
    uint64_t nneg = krec_tensor(r, "negative", &neg) && neg.ndim == 2 ? neg.shape[0] : 0;
    if (len > (uint64_t)m->cfg.n_ctx)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: rows of %llu tokens, past the model's context %d (kiln "
                         "pairs -T)",
                         seq, (unsigned long long)len, m->cfg.n_ctx);
    if ((2 * B + nneg) * len > (1u << 24))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: %llu rows of %llu tokens is too large", seq,
                         (unsigned long long)(2 * B + nneg), (unsigned long long)len);
    size_t rows = (size_t)(2 * B + nneg);
    reserve(s, rows * (size_t)len, rows * (size_t)m->cfg.n_embd);
    if (take_rows(s, r, "anchor", "anchor_mask", 0, len, err, errsz) < 0 ||
        take_rows(s, r, "positive", "positive_mask", (int)B, len, err, errsz) != (int)B ||
        (nneg && take_rows(s, r, "negative", "negative_mask", (int)(2 * B), len, err, errsz) < 0))
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s", err[0] ? err : "bad pairs");
    for (size_t i = 0; i < rows * (size_t)len; i++)
        if (s->x[i] < 0 || s->x[i] >= m->cfg.vocab)
            return kiln_errf(err, errsz, EX_KILN_DATA,
                             "record %llu: token %d is outside the vocabulary (%d)", seq, s->x[i],
                             m->cfg.vocab);
    free(s->group), s->group = NULL;
    if (krec_get(r, "group")) {
        ktensor g;
        if (!krec_tensor(r, "group", &g) || g.dtype != KT_I64 || g.ndim != 1 || g.shape[0] != B)
            return kiln_errf(err, errsz, EX_KILN_DATA,
                             "record %llu: group must be I64 [%llu], one per pair", seq,
                             (unsigned long long)B);
        s->group = xmalloc(xmul((size_t)B, sizeof(int64_t)));
        ktensor_copy(&g, s->group);
    }
    *A = (int)B, *K = (int)nneg, *T = (int)len;
    return 0;
}

static int contrastive_step(void *self, gpt *m, const krec *r, float scale, kobj_out *out,
                            char *err, size_t errsz) {
    contrastive *s = self;
    int A = 0, K = 0, T = 0;
    err[0] = '\0';
    int rc = read_pairs(s, m, r, &A, &K, &T, err, errsz);
    if (rc) return rc;
    int n = 2 * A + K, C = m->cfg.n_embd;
    gpt_forward_hidden(m, s->x, n, T);
    gpt_pool(m, s->mask, s->o.pool, s->rows);
    double acc;
    out->loss = kcontrastive_loss(s->rows, A, A + K, C, s->group, &s->o, s->drows, &acc);
    out->tokens = (uint64_t)n * (uint64_t)T;
    out->metrics[0] = acc;
    if (!isfinite(out->loss)) return 0; /* the engine stops the run */
    for (size_t i = 0; i < (size_t)n * C; i++) s->drows[i] *= scale;
    gpt_pool_backward(m, s->drows);
    return 0;
}

static void contrastive_free(void *self) {
    contrastive *s = self;
    free(s->x), free(s->mask), free(s->rows), free(s->drows), free(s->group);
    free(s);
}

kobjective kcontrastive_objective(const kcontrastive_opts *o) {
    static const char *const names[] = {"accuracy", NULL};
    contrastive *s = xcalloc(1, sizeof *s);
    s->o = *o;
    return (kobjective){.name = "contrastive",
                        .record = "pairs",
                        .metric_names = names,
                        .head = GPT_HEAD_LM,
                        .step = contrastive_step,
                        .free = contrastive_free,
                        .self = s};
}
