/* test_gpt_threads — the same batch gives the same loss and gradients (of the loss, and of a
 * weighted sum of log-probabilities), and the same per-token log-probabilities and entropies,
 * on 1, 2 and 3 threads, and bit for bit the same on every run with the same number of
 * threads.
 *
 * The batch is large enough (B 8 x T 192 = 1,536 rows) for every threaded path of lib/model/gpt:
 * the linear layers' GEMMs pack B once and hand out chunks of rows as threads come free,
 * the weight gradients split the batch into per-thread partial sums, attention hands out
 * (batch, head) pairs.  One thread runs none of that, so it is the reference; sums are added
 * in a different order there, hence a tolerance.  Runs must not depend on which thread took
 * which chunk (a resumed run repeats the straight one exactly), hence equality. */
#include <stdlib.h>
#include <string.h>

#include "../../lib/model/gpt.h"
#include "../../lib/model/pool.h"
#include "check.h"

enum { B = 8, T = 192 };

static int32_t xs[B * T], ys[B * T];
static uint8_t mask[B * T];
static float logp_weights[B * T];

/* Loss and gradients of the model on `threads` threads, grads into out: the LM loss's, then
 * (out + n) a weighted sum of log-probabilities' (gpt_backward_weighted), whose per-token
 * log-probabilities and entropies go to lp [2, B, T]. */
static float run(int threads, int vocab, float *out, float *lp, size_t *n) {
    kpool *pool = kpool_create(threads);
    gpt_config cfg = {.n_layer = 2, .n_embd = 64, .n_head = 2, .n_ctx = T, .vocab = vocab};
    gpt *m = gpt_create(&cfg, pool, 11);
    unsigned seed = 3; /* biases and LayerNorms off their zero / one init, so they count */
    for (size_t i = 0; i < m->n_params; i++) {
        seed = seed * 1103515245u + 12345u;
        m->params[i] += ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
    gpt_zero_grad(m);
    float loss = gpt_forward(m, xs, ys, mask, B, T);
    gpt_backward(m, 1.0f);
    if (out) memcpy(out, m->grads, m->n_params * sizeof(float));
    gpt_zero_grad(m);
    gpt_forward(m, xs, ys, mask, B, T);
    gpt_backward_weighted(m, logp_weights);
    if (out) memcpy(out + m->n_params, m->grads, m->n_params * sizeof(float));
    if (lp) gpt_token_logprobs(m, lp, lp + B * T);
    *n = m->n_params;
    gpt_free(m);
    kpool_free(pool);
    return loss;
}

/* max |got - ref| / max |ref| over n values */
static double rel_error(const float *got, const float *ref, size_t n) {
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    CHECK(scale > 0.0);
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - ref[i]));
    return worst / scale;
}

int main(void) {
    for (int i = 0; i < B * T; i++) {
        xs[i] = (int32_t)((i * 37 + 5) % 96);
        ys[i] = (int32_t)((i * 11 + 3) % 96);
        mask[i] = (i % 7) != 0;
        logp_weights[i] = mask[i] ? (float)((i * 29) % 17 - 8) / 64.0f : 0.0f; /* both signs */
    }
    /* vocabularies under and over 4 x width: the head's products take both paths */
    const int vocabs[] = {96, 300};
    enum { NLP = 2 * B * T };
    static float lp_ref[NLP], lp_got[NLP], lp_again[NLP];
    for (int v = 0; v < 2; v++) {
        size_t n;
        run(1, vocabs[v], NULL, NULL, &n);
        float *ref = malloc(2 * n * sizeof(float)), *got = malloc(2 * n * sizeof(float));
        float *again = malloc(2 * n * sizeof(float));
        if (!ref || !got || !again) return 1;
        float loss1 = run(1, vocabs[v], ref, lp_ref, &n);
        for (int threads = 2; threads <= 3; threads++) {
            float loss = run(threads, vocabs[v], got, lp_got, &n);
            for (int rep = 0; rep < 3; rep++) {
                CHECK(run(threads, vocabs[v], again, lp_again, &n) == loss);
                CHECK(!memcmp(again, got, 2 * n * sizeof(float)));
                CHECK(!memcmp(lp_again, lp_got, sizeof lp_got));
            }
            CHECK_NEAR(loss, loss1, 1e-6);
            double lm = rel_error(got, ref, n), weighted = rel_error(got + n, ref + n, n);
            double lp = rel_error(lp_got, lp_ref, NLP);
            fprintf(stderr,
                    "vocab %d, %d threads: loss %.7f (1 thread %.7f), worst error %.2g, "
                    "weighted backward %.2g, logp and entropy %.2g\n",
                    vocabs[v], threads, loss, loss1, lm, weighted, lp);
            CHECK(lm <= 1e-5);
            CHECK(weighted <= 1e-5);
            CHECK(lp <= 1e-6);
        }
        free(ref);
        free(got);
        free(again);
    }
    return check_report("gpt_threads");
}
