/* search — blocked GEMM scores, a top-k heap per query. */
#include "model/search.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "model/gemm.h"

enum { QBLOCK = 256, NSLAB = 1024 }; /* queries a product, vectors a slab */

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
    int Q, C, k, nthreads;
    float *score; /* [threads, Q, k] each thread's best so far */
    int64_t *idx; /* [threads, Q, k] */
    int *count;   /* [threads, Q] entries in each heap */
    atomic_size_t next;
    size_t units;
} job;

/* Thread tid's heap of query q. */
static topk heap_of(const job *j, int tid, int q, int n) {
    size_t at = ((size_t)tid * j->Q + q) * j->k;
    return (topk){j->k, n, j->score + at, j->idx + at};
}

/* One slab of vectors [n0, n0 + nn) against every query, QBLOCK_BIG queries a product: the
 * slab is packed once per block of queries, not once per query. */
static void search_slab(job *j, int tid, int64_t n0, int nn, float *scores, float *ws) {
    for (int q0 = 0; q0 < j->Q; q0 += QBLOCK) {
        int nq = j->Q - q0 < QBLOCK ? j->Q - q0 : QBLOCK;
        kgemm(false, true, nq, nn, j->C, 1.0f, j->queries + (size_t)q0 * j->C, j->C,
              j->vectors + (size_t)n0 * j->C, j->C, 0.0f, scores, NSLAB, ws);
        for (int q = 0; q < nq; q++) {
            int *count = &j->count[(size_t)tid * j->Q + q0 + q];
            topk h = heap_of(j, tid, q0 + q, *count);
            const float *row = scores + (size_t)q * NSLAB;
            for (int n = 0; n < nn; n++)
                if (h.n < h.k || !worse(row[n], n0 + n, h.score[0], h.idx[0]))
                    offer(&h, row[n], n0 + n);
            *count = h.n;
        }
    }
}

static void search_thread(void *ctx, int tid, int nthreads) {
    job *j = ctx;
    float *scores = xmalloc(sizeof(float) * QBLOCK * NSLAB);
    float *ws = aligned_alloc(64, (kgemm_workspace_floats() * sizeof(float) + 63) / 64 * 64);
    if (!ws) kiln_die(EX_KILN_SOFTWARE, "out of memory (search workspace)");
    size_t lo, hi;
    while (kpool_next(&j->next, j->units, 1, nthreads, &lo, &hi))
        for (size_t u = lo; u < hi; u++) {
            int64_t n0 = (int64_t)u * NSLAB;
            search_slab(j, tid, n0, (int)(j->N - n0 < NSLAB ? j->N - n0 : NSLAB), scores, ws);
        }
    free(scores);
    free(ws);
}

/* Query q's best k over every thread's heap, best first, into idx/score rows of width k. */
static void merge_heaps(const job *j, int q, int kk, int k, int64_t *idx, float *score) {
    float *s = xmalloc(sizeof(float) * (size_t)kk);
    int64_t *ix = xmalloc(sizeof(int64_t) * (size_t)kk);
    topk best = {kk, 0, s, ix};
    for (int t = 0; t < j->nthreads; t++) {
        topk h = heap_of(j, t, q, j->count[(size_t)t * j->Q + q]);
        for (int i = 0; i < h.n; i++) offer(&best, h.score[i], h.idx[i]);
    }
    sort_best_first(&best);
    for (int r = 0; r < k; r++) {
        idx[(size_t)q * k + r] = r < kk ? ix[r] : -1;
        score[(size_t)q * k + r] = r < kk ? s[r] : -INFINITY;
    }
    free(s), free(ix);
}

void ksearch_topk(kpool *pool, const float *vectors, int64_t N, const float *queries, int Q, int C,
                  int k, int64_t *idx, float *score) {
    int kk = N < k ? (int)N : k, threads = pool ? kpool_size(pool) : 1;
    job j = {.vectors = vectors,
             .queries = queries,
             .N = N,
             .Q = Q,
             .C = C,
             .k = kk ? kk : 1,
             .nthreads = threads};
    size_t heaps = (size_t)threads * (size_t)Q;
    j.score = xmalloc(xmul(xmul(heaps, (size_t)j.k), sizeof(float)));
    j.idx = xmalloc(xmul(xmul(heaps, (size_t)j.k), sizeof(int64_t)));
    j.count = xcalloc(heaps ? heaps : 1, sizeof(int));
    j.units = (size_t)((N + NSLAB - 1) / NSLAB);
    atomic_init(&j.next, 0);
    if (pool && kk)
        kpool_run(pool, search_thread, &j);
    else if (kk)
        search_thread(&j, 0, 1);
    for (int q = 0; q < Q; q++) merge_heaps(&j, q, kk, k, idx, score);
    free(j.score), free(j.idx), free(j.count);
}
