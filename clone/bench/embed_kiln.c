/* embed_kiln — time kiln's embedding path (lib/model/embed.h: forward, mean pooling,
 * normalisation; 64 rows a forward) and exact top-10 search (lib/model/search.h) on random
 * data.  Prints two JSON lines; bench/embed.sh runs it beside bench/embed_torch.py.
 *   embed: N rows of T random tokens through a model of the given shape, vectors/s
 *   search: Q queries against V vectors of width C (normalised), top 10, queries/s */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"
#include "model/embed.h"
#include "model/search.h"

static void random_rows(float *v, size_t n, int C, uint64_t seed) {
    krng r;
    krng_init(&r, seed, 0, 0, 0);
    for (size_t i = 0; i < n * (size_t)C; i++) v[i] = (float)krng_normal(&r);
    l2_normalise_rows(v, (int64_t)n, C);
}

static void bench_embed(int layers, int dim, int heads, int N, int T, kpool *pool) {
    gpt_config cfg = {.n_layer = layers, .n_embd = dim, .n_head = heads, .n_ctx = T, .vocab = 256};
    gpt *m = gpt_create(&cfg, pool, 1);
    kembedder *e = kembedder_new(m, GPT_POOL_MEAN, 64);
    int32_t *tok = xmalloc(sizeof(int32_t) * (size_t)T);
    krng r;
    krng_init(&r, 2, 0, 0, 0);
    double best = INFINITY;
    for (int round = 0; round < 3; round++) {
        double t0 = kiln_now();
        for (int i = 0; i < N; i++) {
            for (int t = 0; t < T; t++) tok[t] = (int32_t)krng_below(&r, 256);
            kembedder_add(e, tok, (size_t)T);
            int rows;
            if (kembedder_full(e) || i == N - 1) kembedder_run(e, &rows);
        }
        double s = kiln_now() - t0;
        best = s < best ? s : best;
    }
    printf("{\"bench\": \"embed\", \"rows\": %d, \"T\": %d, \"seconds\": %.4f, \"vectors_per_s\": "
           "%.1f}\n",
           N, T, best, N / best);
    free(tok);
    kembedder_free(e);
    gpt_free(m);
}

static void bench_search(int V, int Q, int C, kpool *pool) {
    float *v = xmalloc(xmul((size_t)V * C, sizeof(float))),
          *q = xmalloc(xmul((size_t)Q * C, sizeof(float)));
    random_rows(v, (size_t)V, C, 3);
    random_rows(q, (size_t)Q, C, 4);
    int64_t *idx = xmalloc(sizeof(int64_t) * (size_t)Q * 10);
    float *score = xmalloc(sizeof(float) * (size_t)Q * 10);
    double best = INFINITY;
    for (int round = 0; round < 3; round++) {
        double t0 = kiln_now();
        ksearch_topk(pool, v, V, q, Q, C, 10, idx, score);
        double s = kiln_now() - t0;
        best = s < best ? s : best;
    }
    printf(
        "{\"bench\": \"search\", \"vectors\": %d, \"queries\": %d, \"dim\": %d, \"seconds\": %.4f, "
        "\"queries_per_s\": %.1f, \"first\": %lld}\n",
        V, Q, C, best, Q / best, (long long)idx[0]);
    free(v), free(q), free(idx), free(score);
}

int main(int argc, char **argv) {
    kiln_set_prog(argv[0]);
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    kpool *pool = kpool_create(threads);
    bench_embed(4, 256, 4, 1024, 128, pool);
    bench_search(100000, 1000, 256, pool);
    kpool_free(pool);
}
