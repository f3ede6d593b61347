/* generate — KV-cached inference forward, sampling, the generation loop. */
#include "model/generate.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define LN_EPS 1e-5f

struct kgen {
    const gpt *m;
    kpool *pool;
    int rows, pos;
    int L, C, H, V, n_ctx;
    float *kcache, *vcache;        /* [L][rows][n_ctx][C] */
    float *x, *h, *qkv, *att, *fc; /* per row: C, C, 3C, C, 4C */
    float *scores;                 /* per row: n_ctx */
    float *logits;                 /* [rows, V] */
    const int32_t *tokens;         /* of the feed in progress */
};

kgen *kgen_create(const gpt *m, int rows, kpool *pool) {
    if (rows < 1) kiln_die(EX_KILN_SOFTWARE, "kgen_create: %d rows", rows);
    kgen *g = xcalloc(1, sizeof *g);
    const gpt_config *c = &m->cfg;
    *g = (kgen){.m = m,
                .pool = pool,
                .rows = rows,
                .L = c->n_layer,
                .C = c->n_embd,
                .H = c->n_head,
                .V = c->vocab,
                .n_ctx = c->n_ctx};
    size_t R = (size_t)rows, C = (size_t)g->C;
    size_t cache = xmul(xmul((size_t)g->L * R, (size_t)g->n_ctx), C);
    g->kcache = xmalloc(xmul(cache, sizeof(float)));
    g->vcache = xmalloc(xmul(cache, sizeof(float)));
    g->x = xmalloc(xmul(R * C, sizeof(float)));
    g->h = xmalloc(xmul(R * C, sizeof(float)));
    g->qkv = xmalloc(xmul(R * 3 * C, sizeof(float)));
    g->att = xmalloc(xmul(R * C, sizeof(float)));
    g->fc = xmalloc(xmul(R * 4 * C, sizeof(float)));
    g->scores = xmalloc(xmul(R * (size_t)g->n_ctx, sizeof(float)));
    g->logits = xmalloc(xmul(R * (size_t)g->V, sizeof(float)));
    return g;
}

void kgen_free(kgen *g) {
    if (!g) return;
    free(g->kcache), free(g->vcache), free(g->x), free(g->h), free(g->qkv);
    free(g->att), free(g->fc), free(g->scores), free(g->logits);
    free(g);
}

void kgen_reset(kgen *g) {
    g->pos = 0;
}

int kgen_pos(const kgen *g) {
    return g->pos;
}

static void layernorm(const float *x, const float *w, const float *b, float *out, int C) {
    float mu = 0.0f, var = 0.0f;
    for (int c = 0; c < C; c++) mu += x[c];
    mu /= (float)C;
    for (int c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
    float rs = 1.0f / sqrtf(var / (float)C + LN_EPS);
    for (int c = 0; c < C; c++) out[c] = (x[c] - mu) * rs * w[c] + b[c];
}

/* out[n, cols] = in[n, k] W[k, cols] + bias (bias may be NULL) */
static void linear(const float *in, const float *W, const float *bias, float *out, int n, int k,
                   int cols) {
    for (int r = 0; r < n; r++) {
        if (bias)
            memcpy(out + (size_t)r * cols, bias, (size_t)cols * sizeof(float));
        else
            memset(out + (size_t)r * cols, 0, (size_t)cols * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cols, k, 1.0f, in, k, W, cols, 1.0f,
                out, cols);
}

/* Causal attention of one row's new query over its cached keys/values 0..pos. */
static void attend(kgen *g, int l, int row) {
    int C = g->C, H = g->H, hd = C / H, n = g->pos + 1;
    float scale = 1.0f / sqrtf((float)hd);
    const float *q = g->qkv + (size_t)row * 3 * C;
    size_t base = ((size_t)l * g->rows + (size_t)row) * (size_t)g->n_ctx * (size_t)C;
    const float *K = g->kcache + base, *Vc = g->vcache + base;
    float *s = g->scores + (size_t)row * g->n_ctx, *out = g->att + (size_t)row * C;
    for (int h = 0; h < H; h++) {
        const float *qh = q + h * hd;
        float mx = -FLT_MAX;
        for (int t = 0; t < n; t++) {
            const float *kt = K + (size_t)t * C + h * hd;
            float d = 0.0f;
            for (int i = 0; i < hd; i++) d += qh[i] * kt[i];
            s[t] = d * scale;
            if (s[t] > mx) mx = s[t];
        }
        float sum = 0.0f;
        for (int t = 0; t < n; t++) sum += (s[t] = expf(s[t] - mx));
        float *oh = out + h * hd;
        memset(oh, 0, (size_t)hd * sizeof(float));
        for (int t = 0; t < n; t++) {
            const float *vt = Vc + (size_t)t * C + h * hd;
            float p = s[t] / sum;
            for (int i = 0; i < hd; i++) oh[i] += p * vt[i];
        }
    }
}

/* One position for rows [r0, r1): embeddings, every block, the tied head. */
static void feed_rows(kgen *g, int r0, int r1) {
    const gpt_views *p = &g->m->p;
    int C = g->C, n = r1 - r0, pos = g->pos;
    float *x = g->x + (size_t)r0 * C, *h = g->h + (size_t)r0 * C;
    float *qkv = g->qkv + (size_t)r0 * 3 * C, *att = g->att + (size_t)r0 * C;
    float *fc = g->fc + (size_t)r0 * 4 * C;
    for (int r = 0; r < n; r++) {
        const float *te = p->wte + (size_t)g->tokens[r0 + r] * C, *pe = p->wpe + (size_t)pos * C;
        for (int c = 0; c < C; c++) x[(size_t)r * C + c] = te[c] + pe[c];
    }
    for (int l = 0; l < g->L; l++) {
        size_t lc = (size_t)l * C;
        for (int r = 0; r < n; r++)
            layernorm(x + (size_t)r * C, p->ln1w + lc, p->ln1b + lc, h + (size_t)r * C, C);
        linear(h, p->qkvw + lc * 3 * C, p->qkvb + lc * 3, qkv, n, C, 3 * C);
        for (int r = 0; r < n; r++) {
            size_t at = (((size_t)l * g->rows + (size_t)(r0 + r)) * g->n_ctx + pos) * C;
            memcpy(g->kcache + at, qkv + (size_t)r * 3 * C + C, (size_t)C * sizeof(float));
            memcpy(g->vcache + at, qkv + (size_t)r * 3 * C + 2 * C, (size_t)C * sizeof(float));
            attend(g, l, r0 + r);
        }
        linear(att, p->attprojw + lc * C, p->attprojb + lc, h, n, C, C);
        for (size_t i = 0; i < (size_t)n * C; i++) x[i] += h[i];
        for (int r = 0; r < n; r++)
            layernorm(x + (size_t)r * C, p->ln2w + lc, p->ln2b + lc, h + (size_t)r * C, C);
        linear(h, p->fcw + lc * 4 * C, p->fcb + lc * 4, fc, n, C, 4 * C);
        for (size_t i = 0; i < (size_t)n * 4 * C; i++) {
            float v = fc[i];
            fc[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
        }
        linear(fc, p->fcprojw + lc * 4 * C, p->fcprojb + lc, h, n, 4 * C, C);
        for (size_t i = 0; i < (size_t)n * C; i++) x[i] += h[i];
    }
    for (int r = 0; r < n; r++)
        layernorm(x + (size_t)r * C, p->lnfw, p->lnfb, h + (size_t)r * C, C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, g->V, C, 1.0f, h, C, p->wte, C, 0.0f,
                g->logits + (size_t)r0 * g->V, g->V);
}

static void feed_task(void *ctx, int tid, int nt) {
    kgen *g = ctx;
    size_t lo, hi;
    kpool_range((size_t)g->rows, 1, tid, nt, &lo, &hi);
    if (lo < hi) feed_rows(g, (int)lo, (int)hi);
}

const float *kgen_feed(kgen *g, const int32_t *tokens) {
    if (g->pos >= g->n_ctx)
        kiln_die(EX_KILN_SOFTWARE, "kgen_feed: position %d past the context %d", g->pos, g->n_ctx);
    for (int r = 0; r < g->rows; r++)
        if (tokens[r] < 0 || tokens[r] >= g->V)
            kiln_die(EX_KILN_DATA, "token %d is outside the vocabulary (%d)", tokens[r], g->V);
    g->tokens = tokens;
    if (g->pool && g->rows > 1)
        kpool_run(g->pool, feed_task, g);
    else
        feed_rows(g, 0, g->rows);
    g->pos++;
    return g->logits;
}

/* ---- sampling ----------------------------------------------------------------------------- */

ksampler ksampler_default(void) {
    return (ksampler){.temperature = 1.0, .top_k = 0, .top_p = 1.0};
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

int32_t ksample_pick(const ksampler *s, const float *logits, int V, const uint8_t *allowed,
                     krng *rng, float *work) {
    int best = -1;
    for (int i = 0; i < V; i++)
        if ((!allowed || allowed[i]) && (best < 0 || logits[i] > logits[best])) best = i;
    if (best < 0) kiln_die(EX_KILN_SOFTWARE, "ksample_pick: no token is allowed");
    if (s->temperature <= 0) return best;
    /* probabilities of the allowed tokens at this temperature */
    float *prob = work, *sorted = work + V;
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        prob[i] = (!allowed || allowed[i])
                      ? expf((float)((logits[i] - logits[best]) / s->temperature))
                      : 0.0f;
        sum += prob[i];
    }
    /* a threshold: tokens below it are dropped (top-k, then top-p on what is left) */
    float cut = 0.0f;
    if ((s->top_k > 0 && s->top_k < V) || s->top_p < 1.0) {
        memcpy(sorted, prob, (size_t)V * sizeof(float));
        qsort(sorted, (size_t)V, sizeof(float), cmp_desc);
        int k = s->top_k > 0 && s->top_k < V ? s->top_k : V;
        double kept = 0.0;
        for (int i = 0; i < k; i++) kept += sorted[i];
        double acc = 0.0;
        for (int i = 0; i < k; i++) {
            acc += sorted[i];
            cut = sorted[i];
            if (acc >= s->top_p * kept) break;
        }
        sum = 0.0;
        for (int i = 0; i < V; i++) {
            if (prob[i] < cut) prob[i] = 0.0f;
            sum += prob[i];
        }
    }
    double u = krng_uniform(rng) * sum, acc = 0.0;
    int last = best;
    for (int i = 0; i < V; i++) {
        if (prob[i] <= 0.0f) continue;
        acc += prob[i];
        last = i;
        if (u < acc) return i;
    }
    return last; /* rounding left u at the very top */
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* Restart every row's context from its last `keep` tokens (hist: rows x stride). */
static const float *slide(kgen *g, const int32_t *hist, int stride, int len, int keep,
                          int32_t *col) {
    kgen_reset(g);
    const float *logits = NULL;
    for (int t = len - keep; t < len; t++) {
        for (int r = 0; r < g->rows; r++) col[r] = hist[(size_t)r * stride + t];
        logits = kgen_feed(g, col);
    }
    return logits;
}

void kgen_run(kgen *g, const int32_t *prompts, int np, int n_new, const ksampler *s,
              const uint8_t *allowed, int32_t stop, uint64_t seed, kgen_token_fn fn, void *ctx,
              int32_t *out, int *lens) {
    int R = g->rows, V = g->V, stride = np + n_new, keep = g->n_ctx / 2;
    if (np < 1) kiln_die(EX_KILN_SOFTWARE, "kgen_run: empty prompt");
    int32_t *hist = xmalloc(xmul(xmul((size_t)R, (size_t)stride), sizeof(int32_t)));
    int32_t *col = xmalloc(xmul((size_t)R, sizeof(int32_t)));
    float *work = xmalloc(xmul(2 * (size_t)V, sizeof(float)));
    krng *rng = xmalloc(xmul((size_t)R, sizeof(krng)));
    bool *done = xcalloc((size_t)R, sizeof(bool));
    for (int r = 0; r < R; r++) {
        memcpy(hist + (size_t)r * stride, prompts + (size_t)r * np, (size_t)np * sizeof(int32_t));
        krng_init(&rng[r], seed, (uint64_t)r, 0, KRNG_GENERATE);
        lens[r] = 0;
    }
    int len = np, start = np > g->n_ctx ? np - g->n_ctx : 0;
    kgen_reset(g);
    const float *logits = NULL;
    for (int t = start; t < np; t++) { /* the prompt (its tail if it overflows the context) */
        for (int r = 0; r < R; r++) col[r] = prompts[(size_t)r * np + t];
        logits = kgen_feed(g, col);
    }
    int live = R;
    bool go = true;
    for (int i = 0; i < n_new && live > 0 && go; i++) {
        for (int r = 0; r < R; r++) {
            int32_t tok = done[r]
                              ? (stop >= 0 ? stop : 0)
                              : ksample_pick(s, logits + (size_t)r * V, V, allowed, &rng[r], work);
            col[r] = hist[(size_t)r * stride + len] = tok;
            if (done[r]) continue;
            out[(size_t)r * n_new + lens[r]++] = tok;
            if (fn && !fn(ctx, r, tok)) go = false;
            if (tok == stop) done[r] = true, live--;
        }
        len++;
        if (i + 1 == n_new || live == 0 || !go) break;
        if (kgen_pos(g) >= g->n_ctx)
            logits = slide(g, hist, stride, len, keep, col);
        else
            logits = kgen_feed(g, col);
    }
    free(hist), free(col), free(work), free(rng), free(done);
}

/* ---- with a tokenizer --------------------------------------------------------------------- */

uint8_t *kgen_allowed(const ktokenizer *t) {
    uint8_t *a = xcalloc(t->vocab, 1);
    memset(a, 1, t->bos); /* the base symbols come first, up to BOS */
    if (ktok_is_text(t)) a[t->eos] = 1;
    return a;
}

int32_t *kgen_text_prompt(const ktokenizer *t, const char *text, int *n) {
    size_t len = text ? strlen(text) : 0;
    if (len > (1u << 24)) kiln_die(EX_KILN_USAGE, "the prompt is too long");
    int32_t *tok = xmalloc(xmul(len + 3, sizeof(int32_t)));
    size_t k = len ? ktok_encode_text(t, (const uint8_t *)text, len, -1, false, tok) : 0;
    if (k && tok[k - 1] == (int32_t)t->eos) k--;
    if (k == 0) tok[k++] = (int32_t)t->eos;
    *n = (int)k;
    return tok;
}

static void write_text_samples(kwriter *w, const gpt *m, const ktokenizer *t, kpool *pool,
                               const kgen_request *q) {
    int np;
    int32_t *one = kgen_text_prompt(t, q->prompt, &np);
    int32_t *prompts = xmalloc(xmul(xmul((size_t)q->n, (size_t)np), sizeof(int32_t)));
    for (int r = 0; r < q->n; r++) memcpy(prompts + (size_t)r * np, one, (size_t)np * 4);
    int32_t *out = xmalloc(xmul(xmul((size_t)q->n, (size_t)q->text_len), sizeof(int32_t)));
    int *lens = xmalloc(xmul((size_t)q->n, sizeof(int)));
    uint8_t *allowed = kgen_allowed(t),
            *text = xmalloc(xmul((size_t)q->text_len, ktok_max_bytes(t)) + 1);
    kgen *g = kgen_create(m, q->n, pool);
    kgen_run(g, prompts, np, q->text_len, &q->s, allowed, (int32_t)t->eos, q->seed, NULL, NULL, out,
             lens);
    for (int r = 0; r < q->n; r++) {
        size_t nb = ktok_decode_text(t, out + (size_t)r * q->text_len, (size_t)lens[r], text);
        kwriter_begin(w, "sample");
        kw_u64(w, "id", (uint64_t)r);
        kw_u64(w, "epoch", 0);
        kw_str(w, "src", q->src);
        kw_u64(w, "step", q->step);
        if (q->prompt) kw_str(w, "prompt", q->prompt);
        kw_strn(w, "text", (const char *)text, nb);
        kwriter_end(w);
    }
    kgen_free(g);
    free(one), free(prompts), free(out), free(lens), free(allowed), free(text);
}

void kgen_images(const gpt *m, const ktokenizer *t, kpool *pool, const int32_t *first, int R,
                 const ksampler *s, uint64_t seed, kimage *out) {
    if (!t->height || !t->width || !t->channels)
        kiln_die(EX_KILN_DATA, "the tokenizer does not say the image shape; cannot draw images");
    int n_new = (int)(t->height * t->width * t->channels);
    int32_t *gen = xmalloc(xmul(xmul((size_t)R, (size_t)n_new), sizeof(int32_t)));
    int32_t *one = xmalloc(xmul((size_t)n_new + 1, sizeof(int32_t)));
    int *lens = xmalloc(xmul((size_t)R, sizeof(int)));
    uint8_t *allowed = kgen_allowed(t);
    kgen *g = kgen_create(m, R, pool);
    kgen_run(g, first, 1, n_new, s, allowed, -1, seed, NULL, NULL, gen, lens);
    for (int r = 0; r < R; r++) {
        one[0] = first[r];
        memcpy(one + 1, gen + (size_t)r * n_new, (size_t)n_new * sizeof(int32_t));
        int64_t cls;
        out[r] = (kimage){0};
        ktok_decode_image(t, one, (size_t)n_new + 1, &out[r], &cls);
    }
    kgen_free(g);
    free(gen), free(one), free(lens), free(allowed);
}

int32_t kgen_first_token(const ktokenizer *t, int64_t cls, int r) {
    if (cls >= 0) return (int32_t)cls;
    if (t->nclasses) return (int32_t)(t->class_base + (uint32_t)r % t->nclasses);
    return (int32_t)t->bos;
}

static void write_image_samples(kwriter *w, const gpt *m, const ktokenizer *t, kpool *pool,
                                const kgen_request *q) {
    int R = q->n;
    int32_t *first = xmalloc(xmul((size_t)R, sizeof(int32_t)));
    for (int r = 0; r < R; r++) first[r] = kgen_first_token(t, q->cls, r);
    kimage *im = xcalloc((size_t)R, sizeof *im);
    kgen_images(m, t, pool, first, R, &q->s, q->seed, im);
    for (int r = 0; r < R; r++) {
        ktensor img =
            ktensor_make(KT_U8, im[r].data, 3,
                         (uint64_t[]){(uint64_t)im[r].h, (uint64_t)im[r].w, (uint64_t)im[r].c});
        kwriter_begin(w, "sample");
        kw_u64(w, "id", (uint64_t)r);
        kw_u64(w, "epoch", 0);
        kw_str(w, "src", q->src);
        kw_u64(w, "step", q->step);
        const char *label = ktok_class_name(t, (uint32_t)first[r]);
        if (label) kw_str(w, "label", label);
        kw_tensor(w, "image", &img);
        kwriter_end(w);
        kimage_free(&im[r]);
    }
    free(first), free(im);
}

void kgen_write_samples(kwriter *w, const gpt *m, const ktokenizer *t, kpool *pool,
                        const kgen_request *q) {
    if (q->n < 1) return;
    if (ktok_is_text(t))
        write_text_samples(w, m, t, pool, q);
    else
        write_image_samples(w, m, t, pool, q);
}
