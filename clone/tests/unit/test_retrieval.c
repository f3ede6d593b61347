/* test_retrieval — the retrieval metrics on cases worked out by hand, and exact search
 * (lib/model/search.h) against a brute-force loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/search.h"
#include "run/retrieval.h"

static double metric(const kretrieval *r, const char *name) {
    for (int i = 0; i < KRET_N_METRICS; i++)
        if (!strcmp(kret_name(i), name)) return kret_value(r, i);
    CHECK(0);
    return NAN;
}

/* Query 1: relevant {7}, found at rank 3.  Query 2: relevant {1, 2}, found at ranks 1 and 6.
 * Query 3: relevant {9}, not in its 10 hits. */
static void test_metrics(void) {
    kretrieval r = {0};
    const int64_t h1[10] = {4, 5, 7, 8, 10, 11, 12, 13, 14, 15}, rel1[1] = {7};
    const int64_t h2[10] = {1, 3, 4, 5, 6, 2, 8, 10, 11, 12}, rel2[2] = {1, 2};
    const int64_t h3[10] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 11}, rel3[1] = {9};
    kret_add(&r, h1, 10, rel1, 1);
    kret_add(&r, h2, 10, rel2, 2);
    kret_add(&r, h3, 10, rel3, 1);
    kret_add(&r, h3, 10, rel3, 0); /* no relevant documents: not counted */
    kret_finish(&r);
    CHECK(r.queries == 3);
    CHECK_NEAR(metric(&r, "accuracy@1"), 1.0 / 3, 1e-12);
    CHECK_NEAR(metric(&r, "accuracy@5"), 2.0 / 3, 1e-12);
    CHECK_NEAR(metric(&r, "accuracy@10"), 2.0 / 3, 1e-12);
    CHECK_NEAR(metric(&r, "precision@1"), 1.0 / 3, 1e-12);
    CHECK_NEAR(metric(&r, "precision@5"), (1.0 / 5 + 1.0 / 5) / 3, 1e-12);
    CHECK_NEAR(metric(&r, "precision@10"), (1.0 / 10 + 2.0 / 10) / 3, 1e-12);
    CHECK_NEAR(metric(&r, "recall@1"), (0 + 0.5 + 0) / 3, 1e-12);
    CHECK_NEAR(metric(&r, "recall@5"), (1 + 0.5 + 0) / 3, 1e-12);
    CHECK_NEAR(metric(&r, "recall@10"), 2.0 / 3, 1e-12);
    CHECK_NEAR(metric(&r, "mrr@10"), (1.0 / 3 + 1.0) / 3, 1e-12);
    double ndcg1 = (1 / log2(4)) / 1.0;
    double ndcg2 = (1 / log2(2) + 1 / log2(7)) / (1 / log2(2) + 1 / log2(3));
    CHECK_NEAR(metric(&r, "ndcg@10"), (ndcg1 + ndcg2) / 3, 1e-12);
    double ap1 = 1.0 / 3, ap2 = (1.0 / 1 + 2.0 / 6) / 2;
    CHECK_NEAR(metric(&r, "map@100"), (ap1 + ap2) / 3, 1e-12);
}

/* Fewer hits than k: precision divides by k all the same (as sentence-transformers). */
static void test_short_lists(void) {
    kretrieval r = {0};
    const int64_t hits[2] = {3, 1}, rel[1] = {1};
    kret_add(&r, hits, 2, rel, 1);
    kret_finish(&r);
    CHECK_NEAR(metric(&r, "precision@5"), 1.0 / 5, 1e-12);
    CHECK_NEAR(metric(&r, "recall@10"), 1.0, 1e-12);
    CHECK_NEAR(metric(&r, "accuracy@1"), 0.0, 1e-12);
}

static float uniform(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) / (double)(1 << 24)) - 0.5f;
}

static void brute_force(const float *v, int N, const float *q, int C, int k, int64_t *idx) {
    char *taken = calloc((size_t)N, 1);
    for (int r = 0; r < k; r++) {
        int best = -1;
        double bs = -INFINITY;
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += (double)q[c] * v[(size_t)n * C + c];
            if (!taken[n] && s > bs) bs = s, best = n;
        }
        taken[best] = 1;
        idx[r] = best;
    }
    free(taken);
}

/* Shapes that cross the query block (48) and vector slab (1024) edges, several threads. */
static void test_search(int N, int Q, int C, int k, int threads) {
    float *v = malloc(sizeof(float) * (size_t)N * C), *q = malloc(sizeof(float) * (size_t)Q * C);
    uint64_t state = 12345; /* random values: periodic ones make near-ties */
    for (size_t i = 0; i < (size_t)N * C; i++) v[i] = uniform(&state);
    for (size_t i = 0; i < (size_t)Q * C; i++) q[i] = uniform(&state);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)Q * k), want[64];
    float *score = malloc(sizeof(float) * (size_t)Q * k);
    kpool *pool = threads ? kpool_create(threads) : NULL;
    ksearch_topk(pool, v, N, q, Q, C, k, idx, score);
    int kk = k < N ? k : N, wrong = 0;
    for (int i = 0; i < Q; i++) {
        brute_force(v, N, q + (size_t)i * C, C, kk, want);
        for (int r = 0; r < kk; r++) {
            wrong += idx[(size_t)i * k + r] != want[r];
        }
        for (int r = 1; r < kk; r++)
            CHECK(score[(size_t)i * k + r - 1] >= score[(size_t)i * k + r]);
        for (int r = kk; r < k; r++) CHECK(idx[(size_t)i * k + r] == -1);
    }
    CHECK(wrong == 0);
    if (pool) kpool_free(pool);
    free(v), free(q), free(idx), free(score);
}

int main(void) {
    test_metrics();
    test_short_lists();
    test_search(3000, 100, 37, 10, 2);
    test_search(1025, 49, 16, 5, 0);
    test_search(7, 3, 8, 10, 1); /* k past N */
    return check_report("test_retrieval");
}
