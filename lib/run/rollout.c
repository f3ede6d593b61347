/* rollout — K completions per prompt with their log-probabilities, over kgen_run_logp. */
#include "run/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct krollout_gen {
    gpt *m;
    kpool *pool;
    kgen *g; /* for `rows` rows: remade when a call needs another count */
    int rows;
};

krollout_opts krollout_opts_default(void) {
    return (krollout_opts){.K = 1, .max_new = 64, .s = ksampler_default(), .eos = -1};
}

krollout_gen *krollout_gen_create(gpt *m, kpool *pool) {
    krollout_gen *g = xcalloc(1, sizeof *g);
    g->m = m, g->pool = pool;
    return g;
}

void krollout_gen_free(krollout_gen *g) {
    if (!g) return;
    kgen_free(g->g);
    free(g);
}

static kgen *decoder_for(krollout_gen *g, int rows) {
    if (g->g && g->rows == rows) return g->g;
    kgen_free(g->g);
    g->g = kgen_create(g->m, rows, g->pool);
    g->rows = rows;
    return g->g;
}

void krollout_batch_free(krollout_batch *b) {
    free(b->tokens), free(b->logprobs), free(b->lens), free(b->ended), free(b->prompt_from);
    *b = (krollout_batch){0};
}

/* Every row's prompt in one [rows, np] block (row i * K + k holds prompt i), each cut to the
 * last `room` tokens so prompt and completion fit the context together. */
static int32_t *lay_out_prompts(const int32_t *const *prompts, const int *plen, int n, int K,
                                int room, int *np, int *rowlen, int *from) {
    *np = 1;
    for (int i = 0; i < n; i++) {
        if (plen[i] < 1) kiln_die(EX_KILN_SOFTWARE, "krollout_generate: prompt %d is empty", i);
        from[i] = plen[i] > room ? plen[i] - room : 0;
        if (plen[i] - from[i] > *np) *np = plen[i] - from[i];
    }
    size_t rows = xmul((size_t)n, (size_t)K);
    int32_t *block = xcalloc(xmul(rows, (size_t)*np), sizeof(int32_t));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) {
            size_t r = (size_t)i * K + k;
            rowlen[r] = plen[i] - from[i];
            memcpy(block + r * *np, prompts[i] + from[i], (size_t)rowlen[r] * sizeof(int32_t));
        }
    return block;
}

void krollout_generate(krollout_gen *g, const int32_t *const *prompts, const int *plen, int n,
                       const krollout_opts *o, uint64_t first_row, krollout_batch *out) {
    int n_ctx = g->m->cfg.n_ctx, V = g->m->cfg.vocab;
    if (n < 1 || o->K < 1 || o->max_new < 1 || o->max_new > n_ctx)
        kiln_die(EX_KILN_SOFTWARE, "krollout_generate: %d prompts, K %d, max_new %d (context %d)",
                 n, o->K, o->max_new, n_ctx);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < plen[i]; t++)
            if (prompts[i][t] < 0 || prompts[i][t] >= V)
                kiln_die(EX_KILN_SOFTWARE, "krollout_generate: prompt %d has token %d", i,
                         prompts[i][t]);
    size_t rows = xmul((size_t)n, (size_t)o->K), cells = xmul(rows, (size_t)o->max_new);
    if (rows > (size_t)INT32_MAX / 2)
        kiln_die(EX_KILN_SOFTWARE, "krollout_generate: too many rows");
    *out = (krollout_batch){.rows = (int)rows, .max_new = o->max_new};
    out->tokens = xmalloc(xmul(cells, sizeof(int32_t)));
    out->logprobs = xmalloc(xmul(cells, sizeof(float)));
    out->lens = xmalloc(xmul(rows, sizeof(int)));
    out->ended = xmalloc(xmul(rows, sizeof(bool)));
    out->prompt_from = xmalloc(xmul((size_t)n, sizeof(int)));
    int np, *rowlen = xmalloc(xmul(rows, sizeof(int)));
    int room = o->max_new < n_ctx ? n_ctx - o->max_new : 1; /* the last draw is never fed */
    int32_t *block = lay_out_prompts(prompts, plen, n, o->K, room, &np, rowlen, out->prompt_from);
    kgen_run_logp(decoder_for(g, (int)rows), block, np, rowlen, o->max_new, &o->s, o->allowed,
                  o->eos, o->seed, first_row, out->tokens, out->logprobs, out->lens);
    for (size_t r = 0; r < rows; r++)
        out->ended[r] = o->eos >= 0 && out->lens[r] > 0 &&
                        out->tokens[r * o->max_new + out->lens[r] - 1] == o->eos;
    free(block), free(rowlen);
}

void krollout_rewards(gpt *m, const int32_t *const *seqs, const int *lens, int n, float *out) {
    if (m->cfg.head != GPT_HEAD_SCALAR || n < 1)
        kiln_die(EX_KILN_SOFTWARE, "krollout_rewards: %d rows, or not a scalar-head model", n);
    int T = 1, n_ctx = m->cfg.n_ctx;
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1) kiln_die(EX_KILN_SOFTWARE, "krollout_rewards: sequence %d is empty", i);
        if (lens[i] > T) T = lens[i] < n_ctx ? lens[i] : n_ctx;
    }
    size_t cells = xmul((size_t)n, (size_t)T);
    int32_t *x = xcalloc(cells, sizeof(int32_t)); /* right-padded: causal attention never
                                                     looks at the padding */
    uint8_t *mask = xcalloc(cells, 1);
    for (int i = 0; i < n; i++) {
        int len = lens[i] < T ? lens[i] : T, from = lens[i] - len;
        memcpy(x + (size_t)i * T, seqs[i] + from, (size_t)len * sizeof(int32_t));
        memset(mask + (size_t)i * T, 1, (size_t)len);
    }
    gpt_forward_hidden(m, x, n, T);
    gpt_scalar(m, mask, GPT_POOL_LAST, out);
    free(x), free(mask);
}
