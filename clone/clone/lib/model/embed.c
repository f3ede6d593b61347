/* embed — pooled, normalised final states. */
#include "model/embed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void l2_normalise_rows(float *v, int64_t n, int C) {
    for (int64_t r = 0; r < n; r++) {
        float *row = v + r * C;
        double s = 0;
        for (int c = 0; c < C; c++) s += (double)row[c] * row[c];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int c = 0; c < C; c++) row[c] *= inv;
    }
}

void gpt_embed(gpt *m, const int32_t *x, const uint8_t *mask, int B, int T, gpt_pool_mode mode,
               float *out) {
    gpt_forward_hidden(m, x, B, T);
    gpt_pool(m, mask, mode, out);
    l2_normalise_rows(out, B, m->cfg.n_embd);
}

struct kembedder {
    gpt *m;
    gpt_pool_mode mode;
    int cap, rows, T; /* rows gathered, the longest (T <= n_ctx) */
    int32_t *tokens;  /* [cap, n_ctx] as added */
    int *len;
    int32_t *x; /* [cap, T] padded for the forward */
    uint8_t *mask;
    float *out; /* [cap, C] */
};

kembedder *kembedder_new(gpt *m, gpt_pool_mode mode, int rows) {
    kembedder *e = xcalloc(1, sizeof *e);
    size_t ctx = (size_t)m->cfg.n_ctx, cap = (size_t)rows;
    e->m = m, e->mode = mode, e->cap = rows;
    e->tokens = xmalloc(xmul(xmul(cap, ctx), sizeof(int32_t)));
    e->x = xmalloc(xmul(xmul(cap, ctx), sizeof(int32_t)));
    e->mask = xmalloc(xmul(cap, ctx));
    e->len = xcalloc(cap, sizeof(int));
    e->out = xmalloc(xmul(xmul(cap, (size_t)m->cfg.n_embd), sizeof(float)));
    return e;
}

void kembedder_free(kembedder *e) {
    if (!e) return;
    free(e->tokens), free(e->x), free(e->mask), free(e->len), free(e->out);
    free(e);
}

int kembedder_add(kembedder *e, const int32_t *tokens, size_t n) {
    int ctx = e->m->cfg.n_ctx, r = e->rows++;
    int len = n < (size_t)ctx ? (int)n : ctx;
    memcpy(e->tokens + (size_t)r * ctx, tokens, sizeof(int32_t) * (size_t)len);
    e->len[r] = len;
    if (len > e->T) e->T = len;
    return r;
}

int kembedder_rows(const kembedder *e) {
    return e->rows;
}

bool kembedder_full(const kembedder *e) {
    return e->rows == e->cap;
}

const float *kembedder_run(kembedder *e, int *rows) {
    int T = e->T, ctx = e->m->cfg.n_ctx;
    for (int r = 0; r < e->rows; r++) {
        int32_t *x = e->x + (size_t)r * T;
        uint8_t *mk = e->mask + (size_t)r * T;
        memcpy(x, e->tokens + (size_t)r * ctx, sizeof(int32_t) * (size_t)e->len[r]);
        for (int t = e->len[r]; t < T; t++) x[t] = 0;
        for (int t = 0; t < T; t++) mk[t] = t < e->len[r];
    }
    *rows = e->rows;
    if (e->rows) gpt_embed(e->m, e->x, e->mask, e->rows, T, e->mode, e->out);
    e->rows = 0, e->T = 0;
    return e->out;
}
