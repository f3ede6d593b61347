/* pool — kiln's one threading layer: a fixed set of worker threads that run the same
 * function on disjoint parts of one job (fork/join), the caller taking part as thread 0.
 *
 * The model runs every parallel region through a pool (its products on lib/model/gemm), and
 * OpenBLAS, where it still runs (generation; products on a CPU without AVX2), is told to use
 * one thread: two thread pools spinning against each other on a 2-core machine halve the speed
 * of both.  Workers spin briefly between jobs (a training step runs hundreds of short regions
 * back to back) and then sleep on a futex, so an idle pool costs nothing. */
#ifndef KILN_POOL_H
#define KILN_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct kpool kpool;

/* Run by every thread of the pool on one job: tid in [0, nthreads). */
typedef void (*kpool_fn)(void *ctx, int tid, int nthreads);

/* nthreads 0: $KILN_THREADS if set, else the number of online CPUs. */
kpool *kpool_create(int nthreads);
void kpool_free(kpool *p);
int kpool_size(const kpool *p);

/* Run fn on all threads and return when every one has finished. Not reentrant. */
void kpool_run(kpool *p, kpool_fn fn, void *ctx);

/* Thread tid's share [*lo, *hi) of [0, n), in multiples of `align` (except the end). */
static inline void kpool_range(size_t n, size_t align, int tid, int nthreads, size_t *lo,
                               size_t *hi) {
    size_t blocks = (n + align - 1) / align;
    size_t b0 = blocks * (size_t)tid / (size_t)nthreads;
    size_t b1 = blocks * (size_t)(tid + 1) / (size_t)nthreads;
    *lo = b0 * align < n ? b0 * align : n;
    *hi = b1 * align < n ? b1 * align : n;
}

/* A dynamic share: the next chunk [*lo, *hi) of [0, n), taken from a counter the job starts
 * at 0; false when none is left.  Guided: a chunk is the remaining work over twice the
 * threads, rounded up to a multiple of `chunk` (the smallest), so threads start on big
 * pieces and finish together on small ones.  For the big jobs: on a shared machine one core
 * often runs slower, and with static halves the other waits for it. */
static inline bool kpool_next(atomic_size_t *next, size_t n, size_t chunk, int nthreads, size_t *lo,
                              size_t *hi) {
    size_t at = atomic_load_explicit(next, memory_order_relaxed);
    for (;;) {
        if (at >= n) return false;
        size_t size = (n - at) / (2 * (size_t)nthreads);
        size = size > chunk ? (size + chunk - 1) / chunk * chunk : chunk;
        size_t end = n - at > size ? at + size : n;
        if (atomic_compare_exchange_weak_explicit(next, &at, end, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *lo = at, *hi = end;
            return true;
        }
    }
}

#endif
