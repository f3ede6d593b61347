/* search — blocked GEMM scores, a top-k heap per query. */
#include "model/search.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "model/gemm.h"

enum { QBLOCK = 48, NSLAB = 1024 };

/* A min-heap of a query's best k so far: the root is the worst kept. */
typedef struct topk {
    int k, n;
    float *score;
    int64_t *idx;
} topk;

/* a ranks below b: a lower score, or an equal score at a higher index. */
static bool worse(float sa, int64_t ia, float sb, int64_t ib) {
    return sa < sb || (sa == sb && ia > ib);
}

static void swap_at(topk *h, int a, int b) {
    float s = h->score[a];
    int64_t i = h->idx[a];
    h->score[a] = h->score[b], h->idx[a] = h->idx[b];
    h->score[b] = s, h->idx[b] = i;
}

static void sift_down(topk *h, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && worse(h->score[l], h->idx[l], h->score[m], h->idx[m])) m = l;
        if (r < h->n && worse(h->score[r], h->idx[r], h->score[m], h->idx[m])) m = r;
        if (m == i) return;
        swap_at(h, i, m);
        i = m;
    }
}

static void offer(topk *h, float s, int64_t i) {
    if (h->n < h->k) {
        int c = h->n++;
        h->score[c] = s, h->idx[c] = i;
        while (c > 0 && worse(h->score[c], h->idx[c], h->score[(c - 1) / 2], h->idx[(c - 1) / 2])) {
            swap_at(h, c, (c - 1) / 2);
            c = (c - 1) / 2;
        }
    } else if (worse(h->score[0], h->idx[0], s, i)) {
        h->score[0] = s, h->idx[0] = i;
        sift_down(h, 0);
    }
}

/* The heap's contents best first, into its own arrays (heapsort: pop the worst to the end). */
static void sort_best_first(topk *h) {
    for (int n = h->n; n > 1; n--) {
        swap_at(h, 0, n - 1);
        h->n = n - 1;
        sift_down(h, 0);
    }
}

typedef struct job {
    const float *vectors, *queries;
    int64_t N;
    int Q, C, k;
    int64_t *idx;
    float *score;
    atomic_size_t next;
    size_t units;
} job;

/* Queries [q0, q1) against every vector, their heaps in the output arrays. */
static void search_block(const job *j, int q0, int q1, float *scores, float *ws) {
    int nq = q1 - q0;
    topk heaps[QBLOCK];
    for (int q = 0; q < nq; q++)
        heaps[q] =
            (topk){j->k, 0, j->score + (size_t)(q0 + q) * j->k, j->idx + (size_t)(q0 + q) * j->k};
    for (int64_t n0 = 0; n0 < j->N; n0 += NSLAB) {
        int nn = (int)(j->N - n0 < NSLAB ? j->N - n0 : NSLAB);
        kgemm(false, true, nq, nn, j->C, 1.0f, j->queries + (size_t)q0 * j->C, j->C,
              j->vectors + (size_t)n0 * j->C, j->C, 0.0f, scores, NSLAB, ws);
        for (int q = 0; q < nq; q++)
            for (int n = 0; n < nn; n++) offer(&heaps[q], scores[(size_t)q * NSLAB + n], n0 + n);
    }
    for (int q = 0; q < nq; q++) sort_best_first(&heaps[q]);
}

static void search_thread(void *ctx, int tid, int nthreads) {
    (void)tid;
    job *j = ctx;
    float *scores = xmalloc(sizeof(float) * QBLOCK * NSLAB);
    float *ws = aligned_alloc(64, (kgemm_workspace_floats() * sizeof(float) + 63) / 64 * 64);
    if (!ws) kiln_die(EX_KILN_SOFTWARE, "out of memory (search workspace)");
    size_t lo, hi;
    while (kpool_next(&j->next, j->units, 1, nthreads, &lo, &hi))
        for (size_t u = lo; u < hi; u++) {
            int q0 = (int)u * QBLOCK, q1 = q0 + QBLOCK < j->Q ? q0 + QBLOCK : j->Q;
            search_block(j, q0, q1, scores, ws);
        }
    free(scores);
    free(ws);
}

void ksearch_topk(kpool *pool, const float *vectors, int64_t N, const float *queries, int Q, int C,
                  int k, int64_t *idx, float *score) {
    int kk = N < k ? (int)N : k;
    job j = {.vectors = vectors, .queries = queries, .N = N, .Q = Q, .C = C, .k = kk};
    float *s = xmalloc(xmul((size_t)Q * (size_t)(kk ? kk : 1), sizeof(float)));
    int64_t *ix = xmalloc(xmul((size_t)Q * (size_t)(kk ? kk : 1), sizeof(int64_t)));
    j.score = s, j.idx = ix;
    j.units = ((size_t)Q + QBLOCK - 1) / QBLOCK;
    atomic_init(&j.next, 0);
    if (pool && kk)
        kpool_run(pool, search_thread, &j);
    else if (kk)
        search_thread(&j, 0, 1);
    for (int q = 0; q < Q; q++)
        for (int r = 0; r < k; r++) {
            idx[(size_t)q * k + r] = r < kk ? ix[(size_t)q * kk + r] : -1;
            score[(size_t)q * k + r] = r < kk ? s[(size_t)q * kk + r] : -INFINITY;
        }
    free(s);
    free(ix);
}
