/* generate: the KV-cached decoder gives the training forward's logits at every position, for
 * several rows and across a window slide; greedy runs over prompts of different lengths
 * (longer than the context, sliding, ending at a stop token) give what full forwards give;
 * sampling does not depend on the threads; sampling honours greedy, top-k, top-p, allowed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/generate.h"

static void cached_matches_forward(kpool *pool) {
    gpt_config c = {.n_layer = 2, .n_embd = 32, .n_head = 4, .n_ctx = 16, .vocab = 37};
    gpt *m = gpt_create(&c, pool, 7);
    enum { R = 3, T = 12 };
    int32_t tok[R * T];
    for (int i = 0; i < R * T; i++) tok[i] = (i * 7 + 3) % c.vocab;
    gpt_forward(m, tok, NULL, NULL, R, T);
    const float *ref = gpt_logits(m);
    kgen *g = kgen_create(m, R, pool);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        int32_t col[R];
        for (int r = 0; r < R; r++) col[r] = tok[r * T + t];
        const float *l = kgen_feed(g, col);
        for (int r = 0; r < R; r++)
            for (int v = 0; v < c.vocab; v++) {
                double d = fabs(l[r * c.vocab + v] - ref[((size_t)r * T + t) * c.vocab + v]);
                if (d > worst) worst = d;
            }
    }
    CHECK(worst <= 1e-5);
    CHECK(kgen_pos(g) == T);
    /* the run loop is deterministic for a seed and slides past the context */
    int32_t prompt[R] = {1, 2, 3}, out1[R * 40], out2[R * 40];
    int lens[R];
    ksampler s = ksampler_default();
    kgen_run(g, prompt, 1, 40, &s, NULL, -1, 5, NULL, NULL, out1, lens);
    CHECK(lens[0] == 40 && lens[2] == 40);
    kgen_run(g, prompt, 1, 40, &s, NULL, -1, 5, NULL, NULL, out2, lens);
    CHECK(memcmp(out1, out2, sizeof out1) == 0);
    kgen_free(g);
    gpt_free(m);
}

enum { GR = 5, GNP = 20, GNEW = 30 };

/* Greedy continuation of one prompt by a full forward per token, with kgen_run's window: a
 * prompt past n_ctx starts from its last n_ctx tokens, and a context past n_ctx restarts
 * from its last n_ctx / 2.  Returns the tokens drawn (up to and with `stop`). */
static int greedy_reference(gpt *m, const int32_t *prompt, int plen, int32_t stop, int32_t *out) {
    int n_ctx = m->cfg.n_ctx, V = m->cfg.vocab, len = plen;
    int start = plen > n_ctx ? plen - n_ctx : 0;
    int32_t hist[GNP + GNEW];
    float work[2 * 64];
    memcpy(hist, prompt, sizeof(int32_t) * plen);
    ksampler s = ksampler_default();
    s.temperature = 0;
    for (int i = 0; i < GNEW; i++) {
        gpt_forward(m, hist + start, NULL, NULL, 1, len - start);
        const float *last = gpt_logits(m) + (size_t)(len - start - 1) * V;
        int32_t tok = ksample_pick(&s, last, V, NULL, NULL, work);
        out[i] = hist[len++] = tok;
        if (tok == stop) return i + 1;
        if (len - start > n_ctx) start = len - n_ctx / 2;
    }
    return GNEW;
}

static void ragged_greedy(kpool *pool) {
    gpt_config c = {.n_layer = 2, .n_embd = 32, .n_head = 4, .n_ctx = 16, .vocab = 37};
    gpt *m = gpt_create(&c, pool, 3);
    unsigned seed = 1;
    for (size_t i = 0; i < m->n_params; i++) { /* weights that make greedy text vary */
        seed = seed * 1103515245u + 12345u;
        m->params[i] += ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.5f;
    }
    const int plen[GR] = {1, 3, 7, 16, 20};
    int32_t prompts[GR * GNP], out[GR * GNEW], want[GNEW];
    int lens[GR];
    for (int i = 0; i < GR * GNP; i++) prompts[i] = (int32_t)((i * 7 + i / GNP) % c.vocab);
    ksampler s = ksampler_default();
    s.temperature = 0;
    kgen *g = kgen_create(m, GR, pool);
    int32_t stop = -1;
    for (int pass = 0; pass < 2; pass++) {
        kgen_run_ragged(g, prompts, GNP, plen, GNEW, &s, NULL, stop, 1, NULL, NULL, out, lens);
        for (int r = 0; r < GR; r++) {
            int n = greedy_reference(m, prompts + r * GNP, plen[r], stop, want);
            CHECK(lens[r] == n);
            CHECK(!memcmp(out + r * GNEW, want, sizeof(int32_t) * n));
        }
        stop = out[2 * GNEW + 4]; /* then rows end at a stop token, some early */
    }
    int ended = 0;
    for (int r = 0; r < GR; r++) ended += lens[r] < GNEW;
    CHECK(ended >= 1);
    kgen_free(g);
    gpt_free(m);
}

/* Temperature sampling: the same tokens with sampling on 1 thread or spread over 3. */
static void sampling_threads(kpool *pool) {
    gpt_config c = {.n_layer = 1, .n_embd = 16, .n_head = 2, .n_ctx = 32, .vocab = 29};
    gpt *m = gpt_create(&c, pool, 4);
    enum { SR = 7, SN = 24 };
    int32_t prompts[SR * 2], a[SR * SN], b[SR * SN];
    int plen[SR], lens[SR];
    for (int r = 0; r < SR; r++) prompts[2 * r] = prompts[2 * r + 1] = r, plen[r] = 1 + r % 2;
    ksampler s = ksampler_default();
    kpool *three = kpool_create(3);
    kgen *g1 = kgen_create(m, SR, NULL), *g3 = kgen_create(m, SR, three);
    kgen_run_ragged(g1, prompts, 2, plen, SN, &s, NULL, -1, 9, NULL, NULL, a, lens);
    kgen_run_ragged(g3, prompts, 2, plen, SN, &s, NULL, -1, 9, NULL, NULL, b, lens);
    CHECK(!memcmp(a, b, sizeof a));
    kgen_free(g1), kgen_free(g3);
    kpool_free(three);
    gpt_free(m);
}

static void sampling_rules(void) {
    float logits[6] = {0.1f, 3.0f, 2.9f, -1.0f, 0.0f, 2.0f}, work[12];
    uint8_t allowed[6] = {1, 0, 1, 1, 1, 1};
    krng rng;
    krng_init(&rng, 1, 0, 0, KRNG_GENERATE);
    ksampler s = ksampler_default();
    s.temperature = 0;
    CHECK(ksample_pick(&s, logits, 6, NULL, &rng, work) == 1);
    CHECK(ksample_pick(&s, logits, 6, allowed, &rng, work) == 2);
    s = ksampler_default();
    s.top_k = 2;
    int seen[6] = {0};
    for (int i = 0; i < 2000; i++) seen[ksample_pick(&s, logits, 6, NULL, &rng, work)]++;
    CHECK(seen[1] > 0 && seen[2] > 0 && seen[0] + seen[3] + seen[4] + seen[5] == 0);
    s = ksampler_default();
    s.top_p = 0.3; /* the top token alone holds more than 30% */
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 500; i++) seen[ksample_pick(&s, logits, 6, NULL, &rng, work)]++;
    CHECK(seen[1] == 500);
    s = ksampler_default();
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 4000; i++) seen[ksample_pick(&s, logits, 6, allowed, &rng, work)]++;
    CHECK(seen[1] == 0 && seen[3] > 0 && seen[2] > seen[5] && seen[5] > seen[4]);
}

int main(void) {
    kpool *pool = kpool_create(2);
    cached_matches_forward(pool);
    ragged_greedy(pool);
    sampling_threads(pool);
    sampling_rules();
    kpool_free(pool);
    return check_report("generate");
}
