/* generate: the KV-cached decoder gives the training forward's logits at every position, for
 * several rows and across a window slide; sampling honours greedy, top-k, top-p, allowed. */
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
    CHECK(worst < 1e-4);
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
    sampling_rules();
    kpool_free(pool);
    return check_report("generate");
}
