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

/* Rows run through gpt_decode_states a group at a time (whole sequences split between the
 * threads, one layer's scratch, no head): each row at its own length, so no padding is
 * computed, and the cache's rows are reused by the next group, rewound to position 0. */
struct kembedder {
    gpt *m;
    gpt_pool_mode mode;
    int cap, rows;   /* rows gathered */
    int32_t *tokens; /* [cap, n_ctx] as added */
    int *len;
    float *out; /* [cap, C] */
    gpt_kv *kv; /* group rows x n_ctx positions */
    int group;  /* rows a decoding call takes at most */
    int32_t *x; /* [group * n_ctx] a group's tokens, concatenated */
    int *row, *pos;
    float *hidden; /* [group * n_ctx, C] their final states */
};

/* Enough rows a call for every thread to take whole rows and for two chunks of
 * gpt_decode's 1,024 tokens, but a cache of at most ~64 MiB for long contexts. */
static int group_rows(const gpt *m, int cap) {
    size_t per_row = 2 * (size_t)m->cfg.n_layer * (size_t)m->cfg.n_ctx * (size_t)m->cfg.n_embd;
    int want = (2048 + m->cfg.n_ctx - 1) / m->cfg.n_ctx, nt = kpool_size(m->pool);
    int fit = (int)((16u << 20) / per_row);
    if (want > fit) want = fit;
    if (want < nt) want = nt;
    return want < cap ? want : cap;
}

kembedder *kembedder_new(gpt *m, gpt_pool_mode mode, int rows) {
    kembedder *e = xcalloc(1, sizeof *e);
    size_t ctx = (size_t)m->cfg.n_ctx, cap = (size_t)rows, C = (size_t)m->cfg.n_embd;
    e->m = m, e->mode = mode, e->cap = rows;
    e->tokens = xmalloc(xmul(xmul(cap, ctx), sizeof(int32_t)));
    e->len = xcalloc(cap, sizeof(int));
    e->out = xmalloc(xmul(xmul(cap, C), sizeof(float)));
    e->group = group_rows(m, rows);
    e->kv = gpt_kv_create(m, e->group, m->cfg.n_ctx);
    size_t n = xmul((size_t)e->group, ctx);
    e->x = xmalloc(xmul(n, sizeof(int32_t)));
    e->row = xmalloc(xmul(n, sizeof(int)));
    e->pos = xmalloc(xmul(n, sizeof(int)));
    e->hidden = xmalloc(xmul(xmul(n, C), sizeof(float)));
    return e;
}

void kembedder_free(kembedder *e) {
    if (!e) return;
    free(e->tokens), free(e->len), free(e->out);
    gpt_kv_free(e->kv);
    free(e->x), free(e->row), free(e->pos), free(e->hidden);
    free(e);
}

int kembedder_add(kembedder *e, const int32_t *tokens, size_t n) {
    int ctx = e->m->cfg.n_ctx, r = e->rows++;
    int len = n < (size_t)ctx ? (int)n : ctx;
    memcpy(e->tokens + (size_t)r * ctx, tokens, sizeof(int32_t) * (size_t)len);
    e->len[r] = len;
    return r;
}

int kembedder_rows(const kembedder *e) {
    return e->rows;
}

bool kembedder_full(const kembedder *e) {
    return e->rows == e->cap;
}

/* out [C] = the pooled state of one row's n final states h [n, C], summed as gpt_pool sums
 * (weights 1/n in order, or the last state), so both paths pool alike. */
static void pool_row(const float *h, int n, int C, gpt_pool_mode mode, float *out) {
    if (mode == GPT_POOL_LAST) {
        for (int c = 0; c < C; c++) out[c] = 1.0f * h[(size_t)(n - 1) * C + c];
        return;
    }
    float w = 1.0f / n;
    memset(out, 0, sizeof(float) * C);
    for (int t = 0; t < n; t++)
        for (int c = 0; c < C; c++) out[c] += w * h[(size_t)t * C + c];
}

/* Rows [r0, r1) through the model in one decoding call, pooled into e->out. */
static void run_group(kembedder *e, int r0, int r1) {
    int ctx = e->m->cfg.n_ctx, C = e->m->cfg.n_embd, n = 0;
    for (int r = r0; r < r1; r++)
        for (int t = 0; t < e->len[r]; t++, n++)
            e->x[n] = e->tokens[(size_t)r * ctx + t], e->row[n] = r - r0, e->pos[n] = t;
    gpt_decode_states(e->m, e->kv, n, e->x, e->row, e->pos, e->hidden);
    const float *h = e->hidden;
    for (int r = r0; r < r1; r++) {
        pool_row(h, e->len[r], C, e->mode, e->out + (size_t)r * C);
        h += (size_t)e->len[r] * C;
    }
}

const float *kembedder_run(kembedder *e, int *rows) {
    for (int r0 = 0; r0 < e->rows; r0 += e->group)
        run_group(e, r0, r0 + e->group < e->rows ? r0 + e->group : e->rows);
    l2_normalise_rows(e->out, e->rows, e->m->cfg.n_embd);
    *rows = e->rows;
    e->rows = 0;
    return e->out;
}
