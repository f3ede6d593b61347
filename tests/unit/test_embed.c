/* test_embed — kembedder (lib/model/embed.h: rows gathered, right-padded to the longest of
 * the batch, embedded a batch at a time) gives the vectors of gpt_embed over the same rows
 * padded to the full context, bit for bit: padding never reaches a row's vector.  Mean, last
 * and position-weighted pooling (each checked by hand too), rows of different lengths, batches of 1
 * to 64 rows, 1 to 3 threads. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "core/util.h"
#include "model/embed.h"

/* Rows of random lengths 1..T (one of length T), embedded both ways; the number of floats
 * that differ. */
static int differing(int threads, gpt_pool_mode mode, int rows, int cap) {
    gpt_config cfg = {.n_layer = 2, .n_embd = 32, .n_head = 4, .n_ctx = 40, .vocab = 50};
    int T = cfg.n_ctx, C = cfg.n_embd;
    kpool *pool = kpool_create(threads);
    gpt *m = gpt_create(&cfg, pool, 7);
    krng r;
    krng_init(&r, 11, 0, 0, 0);
    int32_t *x = xcalloc((size_t)rows * T, sizeof *x);
    uint8_t *mask = xcalloc((size_t)rows * T, 1);
    int *len = xcalloc((size_t)rows, sizeof *len);
    for (int b = 0; b < rows; b++) {
        len[b] = b == 0 ? T : 1 + (int)krng_below(&r, (uint64_t)T);
        for (int t = 0; t < len[b]; t++)
            x[(size_t)b * T + t] = (int32_t)krng_below(&r, 50), mask[(size_t)b * T + t] = 1;
    }
    float *want = xmalloc(sizeof(float) * (size_t)rows * C);
    gpt_embed(m, x, mask, rows, T, mode, want);
    kembedder *e = kembedder_new(m, mode, cap);
    int bad = 0, done = 0;
    for (int b = 0; b < rows; b++) {
        kembedder_add(e, x + (size_t)b * T, (size_t)len[b]);
        if (kembedder_full(e) || b == rows - 1) {
            int n;
            const float *got = kembedder_run(e, &n);
            CHECK(n > 0 && n <= cap);
            for (size_t i = 0; i < (size_t)n * C; i++)
                bad += memcmp(&got[i], &want[(size_t)done * C + i], sizeof(float)) != 0;
            done += n;
        }
    }
    CHECK(done == rows);
    kembedder_free(e);
    free(x), free(mask), free(len), free(want);
    gpt_free(m);
    kpool_free(pool);
    return bad;
}

/* The three poolings by hand from the final states: row of 3 tokens then padding. */
static void check_pool_weights(void) {
    gpt_config cfg = {.n_layer = 1, .n_embd = 8, .n_head = 2, .n_ctx = 5, .vocab = 20};
    enum { T = 5, C = 8 };
    kpool *pool = kpool_create(1);
    gpt *m = gpt_create(&cfg, pool, 3);
    const int32_t x[T] = {4, 9, 2, 0, 0};
    const uint8_t mask[T] = {1, 1, 1, 0, 0};
    gpt_forward_hidden(m, x, 1, T);
    const float *h = gpt_hidden(m);
    float got[C];
    const double weights[3][T] = {{0, 0, 1, 0, 0}, /* last, mean, weightedmean */
                                  {1 / 3., 1 / 3., 1 / 3., 0, 0},
                                  {1 / 6., 2 / 6., 3 / 6., 0, 0}};
    for (int mode = 0; mode < 3; mode++) {
        gpt_pool(m, mask, (gpt_pool_mode)mode, got);
        for (int c = 0; c < C; c++) {
            double want = 0;
            for (int t = 0; t < T; t++) want += weights[mode][t] * h[t * C + c];
            CHECK_NEAR(got[c], want, 1e-6);
        }
    }
    CHECK(gpt_pool_parse("weightedmean") == GPT_POOL_WEIGHTED &&
          gpt_pool_parse("last") == GPT_POOL_LAST);
    gpt_free(m);
    kpool_free(pool);
}

int main(void) {
    check_pool_weights();
    CHECK(differing(1, GPT_POOL_MEAN, 9, 4) == 0);
    CHECK(differing(3, GPT_POOL_MEAN, 70, 64) == 0); /* a full batch and a short one */
    CHECK(differing(3, GPT_POOL_LAST, 70, 64) == 0);
    CHECK(differing(3, GPT_POOL_WEIGHTED, 70, 64) == 0);
    CHECK(differing(2, GPT_POOL_MEAN, 5, 1) == 0);
    return check_report("test_embed");
}
