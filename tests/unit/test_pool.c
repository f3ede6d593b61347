/* test_pool — every index of a job is visited exactly once for 1..4 threads, kpool_range
 * partitions with alignment, and a pool survives many jobs and idle sleeps. */
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pool.h"

typedef struct job {
    size_t n;
    atomic_int *hits;
    atomic_int calls;
} job;

static void visit(void *ctx, int tid, int nt) {
    job *j = ctx;
    size_t lo, hi;
    kpool_range(j->n, 16, tid, nt, &lo, &hi);
    CHECK(lo % 16 == 0 && lo <= hi && hi <= j->n);
    for (size_t i = lo; i < hi; i++) atomic_fetch_add(&j->hits[i], 1);
    atomic_fetch_add(&j->calls, 1);
}

int main(void) {
    for (int nt = 1; nt <= 4; nt++) {
        kpool *p = kpool_create(nt);
        CHECK(kpool_size(p) == nt);
        static atomic_int hits[1000];
        for (int round = 0; round < 100; round++) {
            job j = {.n = (size_t)(round * 7) % 1000, .hits = hits};
            memset(hits, 0, sizeof hits);
            if (round == 50) usleep(20000); /* workers fall asleep; the next job wakes them */
            kpool_run(p, visit, &j);
            CHECK(atomic_load(&j.calls) == nt);
            for (size_t i = 0; i < 1000; i++) CHECK(atomic_load(&hits[i]) == (i < j.n));
        }
        kpool_free(p);
    }
    size_t lo, hi;
    kpool_range(5, 16, 0, 2, &lo, &hi); /* fewer aligned blocks than threads: one is idle */
    CHECK(lo == hi);
    kpool_range(5, 16, 1, 2, &lo, &hi);
    CHECK(lo == 0 && hi == 5);
    kpool_range(100, 1, 2, 3, &lo, &hi);
    CHECK(hi == 100);
    return check_report("pool");
}
