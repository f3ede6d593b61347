/* rollout: the log-probabilities a rollout records equal those of a teacher-forced forward
 * over the same prompt + completion tokens (gpt_forward + gpt_token_logprobs), at temperature
 * 1 and at 0.7 (the forward's logits divided by it: ln_f's gain and bias scaled, since the
 * head is linear in them), to 1e-4, with top-k truncation on and rows ending at EOS; a
 * completion depends on its global row, not on how prompts were split into calls; a long
 * prompt is cut to leave room for max_new, to its last token when max_new is the whole
 * context (an image model's class token and pixels); a reward model's padded batch scores each
 * sequence as it scores it alone. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "run/rollout.h"

enum { NP = 4, K = 3, NEW = 10, MAXP = 20, EOS = 5 };

static gpt *tiny_model(kpool *pool) {
    gpt_config c = {.n_layer = 2, .n_embd = 32, .n_head = 4, .n_ctx = 24, .vocab = 37};
    gpt *m = gpt_create(&c, pool, 11);
    unsigned seed = 3;
    for (size_t i = 0; i < m->n_params; i++) { /* weights that make distributions uneven */
        seed = seed * 1103515245u + 12345u;
        m->params[i] += ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.4f;
    }
    return m;
}

/* A model, NP prompts of different lengths, options and a generator. */
typedef struct fixture {
    gpt *m;
    int32_t p[NP][MAXP];
    int plen[NP];
    const int32_t *ptrs[NP];
    krollout_opts o;
    krollout_gen *g;
} fixture;

static void fixture_init(fixture *f, kpool *pool, uint64_t seed) {
    const int lens[NP] = {1, 4, 9, MAXP}; /* the last is cut to n_ctx - NEW = 14 */
    f->m = tiny_model(pool);
    for (int i = 0; i < NP; i++) {
        f->plen[i] = lens[i];
        for (int t = 0; t < lens[i]; t++) f->p[i][t] = (int32_t)((i * 13 + t * 7 + 1) % 37);
        f->ptrs[i] = f->p[i];
    }
    f->o = krollout_opts_default();
    f->o.K = K, f->o.max_new = NEW, f->o.eos = EOS, f->o.seed = seed;
    f->g = krollout_gen_create(f->m, pool);
}

static void fixture_free(fixture *f) {
    krollout_gen_free(f->g);
    gpt_free(f->m);
}

/* Worst |rollout logprob - forward logprob| over every row of b.  The forward runs over the
 * row's prompt (as the model saw it) + completion, the model's ln_f scaled by 1 / temperature
 * for it (and restored). */
static double worst_vs_forward(gpt *m, const int32_t **prompts, const int *plen,
                               const krollout_batch *b, double temperature) {
    int C = m->cfg.n_embd;
    float *g = m->p.lnfw, *bias = m->p.lnfb, save_g[64], save_b[64];
    memcpy(save_g, g, sizeof(float) * C), memcpy(save_b, bias, sizeof(float) * C);
    for (int c = 0; c < C; c++) g[c] /= (float)temperature, bias[c] /= (float)temperature;
    double worst = 0;
    for (int r = 0; r < b->rows; r++) {
        int i = r / K, from = b->prompt_from[i], P = plen[i] - from, N = b->lens[r], T = P + N;
        int32_t x[64], y[64];
        float lp[64];
        memcpy(x, prompts[i] + from, sizeof(int32_t) * P);
        memcpy(x + P, b->tokens + (size_t)r * b->max_new, sizeof(int32_t) * N);
        for (int t = 0; t < T - 1; t++) y[t] = x[t + 1];
        y[T - 1] = 0;
        gpt_forward(m, x, y, NULL, 1, T - 1 > 0 ? T - 1 : 1);
        gpt_token_logprobs(m, lp, NULL);
        for (int j = 0; j < N; j++) {
            double d = fabs(lp[P - 1 + j] - b->logprobs[(size_t)r * b->max_new + j]);
            if (d > worst) worst = d;
        }
    }
    memcpy(g, save_g, sizeof(float) * C), memcpy(bias, save_b, sizeof(float) * C);
    return worst;
}

static void logprobs_match_forward(kpool *pool, double temperature) {
    fixture f;
    fixture_init(&f, pool, 9);
    f.o.s.temperature = temperature, f.o.s.top_k = 8; /* truncation must not change logprobs */
    krollout_batch b;
    krollout_generate(f.g, f.ptrs, f.plen, NP, &f.o, 0, &b);
    CHECK(b.rows == NP * K && b.max_new == NEW);
    CHECK(b.prompt_from[0] == 0 && b.prompt_from[3] == MAXP - (24 - NEW));
    int ended = 0;
    for (int r = 0; r < b.rows; r++) {
        int n = b.lens[r];
        CHECK(n >= 1 && n <= NEW);
        CHECK(b.ended[r] == (b.tokens[(size_t)r * NEW + n - 1] == EOS));
        for (int j = 0; j < n - 1; j++) CHECK(b.tokens[(size_t)r * NEW + j] != EOS);
        for (int j = 0; j < n; j++) CHECK(b.logprobs[(size_t)r * NEW + j] <= 0);
        ended += b.ended[r];
    }
    double worst = worst_vs_forward(f.m, f.ptrs, f.plen, &b, temperature);
    fprintf(stderr, "temperature %g: worst |rollout - forward| logprob %.3g, %d of %d rows ended\n",
            temperature, worst, ended, b.rows);
    CHECK(worst <= 1e-4);
    krollout_batch_free(&b);
    fixture_free(&f);
}

/* max_new = n_ctx: one prompt token and n_ctx drawn, n_ctx + 1 in all, the last never fed
 * (how an image model's class token and pixels fill a context of its pixels). */
static void whole_context(kpool *pool) {
    fixture f;
    fixture_init(&f, pool, 6);
    f.o.max_new = 24, f.o.eos = -1;
    krollout_batch b;
    krollout_generate(f.g, f.ptrs, f.plen, NP, &f.o, 0, &b);
    for (int i = 0; i < NP; i++) CHECK(b.prompt_from[i] == f.plen[i] - 1);
    for (int r = 0; r < b.rows; r++) CHECK(b.lens[r] == 24 && !b.ended[r]);
    double worst = worst_vs_forward(f.m, f.ptrs, f.plen, &b, 1.0);
    fprintf(stderr, "max_new = n_ctx: worst |rollout - forward| logprob %.3g\n", worst);
    CHECK(worst <= 1e-4);
    krollout_batch_free(&b);
    fixture_free(&f);
}

/* Two calls of two prompts each give what one call of four gives. */
static void split_calls_agree(kpool *pool) {
    fixture f;
    fixture_init(&f, pool, 4);
    krollout_batch all, a, b;
    krollout_generate(f.g, f.ptrs, f.plen, NP, &f.o, 0, &all);
    krollout_generate(f.g, f.ptrs, f.plen, 2, &f.o, 0, &a);
    krollout_generate(f.g, f.ptrs + 2, f.plen + 2, 2, &f.o, 2 * K, &b);
    for (int r = 0; r < NP * K; r++) {
        const krollout_batch *h = r < 2 * K ? &a : &b;
        int hr = r < 2 * K ? r : r - 2 * K;
        CHECK(all.lens[r] == h->lens[hr]);
        for (int j = 0; j < all.lens[r] && j < h->lens[hr]; j++) {
            CHECK(all.tokens[(size_t)r * NEW + j] == h->tokens[(size_t)hr * NEW + j]);
            CHECK_NEAR(all.logprobs[(size_t)r * NEW + j], h->logprobs[(size_t)hr * NEW + j], 1e-5);
        }
    }
    krollout_batch_free(&all), krollout_batch_free(&a), krollout_batch_free(&b);
    fixture_free(&f);
}

/* A reward model's batched, padded scores equal each sequence's alone. */
static void rewards_match_alone(kpool *pool) {
    gpt_config c = {
        .n_layer = 2, .n_embd = 32, .n_head = 4, .n_ctx = 16, .vocab = 37, .head = GPT_HEAD_SCALAR};
    gpt *m = gpt_create(&c, pool, 5);
    for (int i = 0; i < c.n_embd; i++) m->p.scorew[i] = (float)((i % 7) - 3) * 0.1f;
    enum { N = 3 };
    int32_t a[20], b[5], d[1] = {9};
    for (int i = 0; i < 20; i++) a[i] = (i * 5 + 2) % 37;
    for (int i = 0; i < 5; i++) b[i] = (i * 3 + 1) % 37;
    const int32_t *seqs[N] = {a, b, d};
    int lens[N] = {20, 5, 1}; /* the first is longer than the context: its last 16 count */
    float got[N], alone;
    krollout_rewards(m, seqs, lens, N, got);
    for (int i = 0; i < N; i++) {
        int len = lens[i] < 16 ? lens[i] : 16;
        gpt_forward_hidden(m, seqs[i] + lens[i] - len, 1, len);
        gpt_scalar(m, NULL, GPT_POOL_LAST, &alone);
        CHECK_NEAR(got[i], alone, 1e-5);
    }
    CHECK(got[0] != got[1] && got[1] != got[2]);
    gpt_free(m);
}

int main(void) {
    kpool *pool = kpool_create(2);
    logprobs_match_forward(pool, 1.0);
    logprobs_match_forward(pool, 0.7);
    split_calls_agree(pool);
    whole_context(pool);
    rewards_match_alone(pool);
    kpool_free(pool);
    return check_report("test_rollout");
}
