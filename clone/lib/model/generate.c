/* generate — sampling and the generation loop over the model's own decoder (gpt_decode). */
#include "model/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct kgen {
    gpt *m;
    kpool *pool; /* sampling's threads, or NULL */
    int rows, pos, V, n_ctx;
    gpt_kv *kv;    /* made for the positions the first use needs, remade bigger when needed */
    float *logits; /* [rows, V] */
    int *at;       /* [rows] kgen_feed's positions */
    float *work;   /* [threads, 2V] sampling scratch */
    int threads;
};

kgen *kgen_create(gpt *m, int rows, kpool *pool) {
    if (rows < 1) kiln_die(EX_KILN_SOFTWARE, "kgen_create: %d rows", rows);
    kgen *g = xcalloc(1, sizeof *g);
    *g = (kgen){.m = m,
                .pool = pool,
                .rows = rows,
                .V = m->cfg.vocab,
                .n_ctx = m->cfg.n_ctx,
                .threads = pool ? kpool_size(pool) : 1};
    g->logits = xmalloc(xmul(xmul((size_t)rows, (size_t)g->V), sizeof(float)));
    g->at = xmalloc(xmul((size_t)rows, sizeof(int)));
    g->work = xmalloc(xmul(xmul((size_t)g->threads, 2 * (size_t)g->V), sizeof(float)));
    return g;
}

void kgen_free(kgen *g) {
    if (!g) return;
    gpt_kv_free(g->kv);
    free(g->logits), free(g->at), free(g->work);
    free(g);
}

/* A cache holding at least `positions` per row. */
static void ensure_kv(kgen *g, int positions) {
    if (g->kv && gpt_kv_positions(g->kv) >= positions) return;
    gpt_kv_free(g->kv);
    g->kv = gpt_kv_create(g->m, g->rows, positions);
}

void kgen_reset(kgen *g) {
    g->pos = 0;
}

int kgen_pos(const kgen *g) {
    return g->pos;
}

const float *kgen_feed(kgen *g, const int32_t *tokens) {
    if (g->pos >= g->n_ctx)
        kiln_die(EX_KILN_SOFTWARE, "kgen_feed: position %d past the context %d", g->pos, g->n_ctx);
    ensure_kv(g, g->n_ctx);
    for (int r = 0; r < g->rows; r++) g->at[r] = g->pos;
    gpt_decode(g->m, g->kv, g->rows, tokens, NULL, g->at, g->logits);
    g->pos++;
    return g->logits;
}

/* ---- sampling ----------------------------------------------------------------------------- */

ksampler ksampler_default(void) {
    return (ksampler){.temperature = 1.0, .top_k = 0, .top_p = 1.0};
}

float kgen_logprob(const float *logits, int V, double temperature, int32_t token) {
    double t = temperature > 0 ? temperature : 1.0, max = logits[0];
    for (int i = 1; i < V; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0.0; /* in double: V terms, and the result is compared with a forward's */
    for (int i = 0; i < V; i++) sum += exp((logits[i] - max) / t);
    return (float)((logits[token] - max) / t - log(sum));
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

/* One run: every row's tokens so far, which rows are still drawing, a decode call's tokens. */
typedef struct run {
    kgen *g;
    const ksampler *s;
    const uint8_t *allowed;
    int stride, keep;  /* hist's row length; tokens a sliding window restarts from */
    int32_t *hist;     /* [rows, stride] prompt, then what was drawn */
    int *hlen;         /* [rows] */
    krng *rng;         /* [rows] */
    int n_live, *live; /* rows still drawing, in order; row j of g->logits is live[j]'s */
    int32_t *pick;     /* [rows] the token drawn for live[j] */
    float *pick_logp;  /* [rows] its log-probability, or NULL when not wanted */
    int *last_pos;     /* [rows] where live[j]'s last token goes */
    int32_t *tok;      /* [cap] a decode call's tokens, sequences and positions */
    int *erow, *epos;
    atomic_size_t next;
} run;

/* The live rows' next logits: each one's last token at its next position.  At the start,
 * and for a row whose cache is full (the window slides), the row first restarts from
 * position 0 with its tokens before that one: its prompt (the last n_ctx of it), or its
 * last `keep`.  Restarts go in one call without logits, the last tokens in another. */
static void feed_live(run *u, bool start) {
    kgen *g = u->g;
    int P = gpt_kv_positions(g->kv), n = 0;
    for (int j = 0; j < u->n_live; j++) {
        int r = u->live[j], len = gpt_kv_len(g->kv, r), last = u->hlen[r] - 1;
        int from = start ? (last + 1 > g->n_ctx ? last + 1 - g->n_ctx : 0)
                         : (len >= P ? last + 1 - u->keep : -1);
        u->last_pos[j] = from >= 0 ? last - from : len;
        for (int t = from; from >= 0 && t < last; t++)
            u->tok[n] = u->hist[(size_t)r * u->stride + t], u->erow[n] = r, u->epos[n++] = t - from;
    }
    if (n) gpt_decode(g->m, g->kv, n, u->tok, u->erow, u->epos, NULL);
    for (int j = 0; j < u->n_live; j++) {
        int r = u->live[j];
        u->tok[j] = u->hist[(size_t)r * u->stride + u->hlen[r] - 1];
        u->erow[j] = r, u->epos[j] = u->last_pos[j];
    }
    gpt_decode(g->m, g->kv, u->n_live, u->tok, u->erow, u->epos, g->logits);
}

/* Draw a token for each live row, rows spread over the threads (each row has its own rng,
 * so the draws do not depend on which thread made them). */
static void sample_task(void *ctx, int tid, int nt) {
    run *u = ctx;
    kgen *g = u->g;
    float *work = g->work + (size_t)tid * 2 * g->V;
    size_t lo, hi;
    while (kpool_next(&u->next, (size_t)u->n_live, 1, nt, &lo, &hi))
        for (size_t j = lo; j < hi; j++) {
            const float *logits = g->logits + j * g->V;
            u->pick[j] = ksample_pick(u->s, logits, g->V, u->allowed, &u->rng[u->live[j]], work);
            if (u->pick_logp)
                u->pick_logp[j] = kgen_logprob(logits, g->V, u->s->temperature, u->pick[j]);
        }
}

static void sample_live(run *u) {
    atomic_store_explicit(&u->next, 0, memory_order_relaxed);
    if (u->g->pool && u->n_live > 1)
        kpool_run(u->g->pool, sample_task, u);
    else
        sample_task(u, 0, 1);
}

/* The run's buffers, rows' prompts in hist, every row live.  Returns the cache positions it
 * needs: without a slide, the longest prompt in the window and the tokens fed after it. */
static int run_start(run *u, const int32_t *prompts, int np, const int *plen, int n_new,
                     uint64_t seed, uint64_t first_row, bool want_logp) {
    kgen *g = u->g;
    size_t R = (size_t)g->rows;
    u->stride = np + n_new;
    u->keep = g->n_ctx / 2 > 0 ? g->n_ctx / 2 : 1;
    u->hist = xmalloc(xmul(xmul(R, (size_t)u->stride), sizeof(int32_t)));
    u->hlen = xmalloc(xmul(R, sizeof(int)));
    u->rng = xmalloc(xmul(R, sizeof(krng)));
    u->live = xmalloc(xmul(R, sizeof(int)));
    u->pick = xmalloc(xmul(R, sizeof(int32_t)));
    u->pick_logp = want_logp ? xmalloc(xmul(R, sizeof(float))) : NULL;
    u->last_pos = xmalloc(xmul(R, sizeof(int)));
    int window = 1;
    for (int r = 0; r < g->rows; r++) {
        int n = plen ? plen[r] : np;
        if (n < 1 || n > np) kiln_die(EX_KILN_SOFTWARE, "kgen_run: row %d's prompt of %d", r, n);
        memcpy(u->hist + (size_t)r * u->stride, prompts + (size_t)r * np, sizeof(int32_t) * n);
        u->hlen[r] = n;
        krng_init(&u->rng[r], seed, first_row + (uint64_t)r, 0, KRNG_GENERATE);
        u->live[r] = r;
        if (n > window) window = n < g->n_ctx ? n : g->n_ctx;
    }
    u->n_live = g->rows;
    size_t cap = xmul(R, (size_t)(window > u->keep ? window : u->keep));
    u->tok = xmalloc(xmul(cap, sizeof(int32_t)));
    u->erow = xmalloc(xmul(cap, sizeof(int)));
    u->epos = xmalloc(xmul(cap, sizeof(int)));
    return window + n_new < g->n_ctx ? window + n_new : g->n_ctx;
}

static void run_free(run *u) {
    free(u->hist), free(u->hlen), free(u->rng), free(u->live), free(u->pick), free(u->pick_logp);
    free(u->last_pos), free(u->tok), free(u->erow), free(u->epos);
}

/* The loop of kgen_run_ragged and kgen_run_logp. */
static void run_rows(kgen *g, const int32_t *prompts, int np, const int *plen, int n_new,
                     const ksampler *s, const uint8_t *allowed, int32_t stop, uint64_t seed,
                     uint64_t first_row, kgen_token_fn fn, void *ctx, int32_t *out, float *logp,
                     int *lens) {
    if (np < 1) kiln_die(EX_KILN_SOFTWARE, "kgen_run: empty prompt");
    for (int r = 0; r < g->rows; r++) lens[r] = 0;
    g->pos = 0;
    if (n_new <= 0) return;
    run u = {.g = g, .s = s, .allowed = allowed};
    ensure_kv(g, run_start(&u, prompts, np, plen, n_new, seed, first_row, logp != NULL));
    gpt_kv_pack_weights(g->m, g->kv); /* the weights hold still for the whole run */
    feed_live(&u, true);
    bool go = true;
    for (int i = 0; i < n_new; i++) {
        sample_live(&u);
        int live = 0;
        for (int j = 0; j < u.n_live; j++) {
            int r = u.live[j];
            int32_t tok = u.pick[j];
            u.hist[(size_t)r * u.stride + u.hlen[r]++] = tok;
            if (logp) logp[(size_t)r * n_new + lens[r]] = u.pick_logp[j];
            out[(size_t)r * n_new + lens[r]++] = tok;
            if (fn && !fn(ctx, r, tok)) go = false;
            if (tok != stop) u.live[live++] = r; /* an ended row costs nothing from now on */
        }
        u.n_live = live;
        if (i + 1 == n_new || live == 0 || !go) break;
        feed_live(&u, false);
    }
    gpt_kv_unpack_weights(g->kv);
    run_free(&u);
}

void kgen_run_ragged(kgen *g, const int32_t *prompts, int np, const int *plen, int n_new,
                     const ksampler *s, const uint8_t *allowed, int32_t stop, uint64_t seed,
                     kgen_token_fn fn, void *ctx, int32_t *out, int *lens) {
    run_rows(g, prompts, np, plen, n_new, s, allowed, stop, seed, 0, fn, ctx, out, NULL, lens);
}

void kgen_run_logp(kgen *g, const int32_t *prompts, int np, const int *plen, int n_new,
                   const ksampler *s, const uint8_t *allowed, int32_t stop, uint64_t seed,
                   uint64_t first_row, int32_t *out, float *logp, int *lens) {
    run_rows(g, prompts, np, plen, n_new, s, allowed, stop, seed, first_row, NULL, NULL, out, logp,
             lens);
}

void kgen_run(kgen *g, const int32_t *prompts, int np, int n_new, const ksampler *s,
              const uint8_t *allowed, int32_t stop, uint64_t seed, kgen_token_fn fn, void *ctx,
              int32_t *out, int *lens) {
    kgen_run_ragged(g, prompts, np, NULL, n_new, s, allowed, stop, seed, fn, ctx, out, lens);
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

static void write_text_samples(kwriter *w, gpt *m, const ktokenizer *t, kpool *pool,
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

void kgen_images(gpt *m, const ktokenizer *t, kpool *pool, const int32_t *first, int R,
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

static void write_image_samples(kwriter *w, gpt *m, const ktokenizer *t, kpool *pool,
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

void kgen_write_samples(kwriter *w, gpt *m, const ktokenizer *t, kpool *pool,
                        const kgen_request *q) {
    if (q->n < 1) return;
    if (ktok_is_text(t))
        write_text_samples(w, m, t, pool, q);
    else
        write_image_samples(w, m, t, pool, q);
}
