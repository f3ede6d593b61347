/* test_pool — every index of a job is visited exactly once for 1..4 threads, by kpool_range's
 * static shares (aligned) and kpool_next's guided chunks, and a pool survives many jobs and
 * idle sleeps. */
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "model/pool.h"

typedef struct job {
    size_t n;
    atomic_int *hits;
    atomic_int calls;
    atomic_size_t next; /* visit_dynamic */
} job;

static void visit(void *ctx, int tid, int nt) {
    job *j = ctx;
    size_t lo, hi;
    kpool_range(j->n, 16, tid, nt, &lo, &hi);
    CHECK(lo % 16 == 0 && lo <= hi && hi <= j->n);
    for (size_t i = lo; i < hi; i++) atomic_fetch_add(&j->hits[i], 1);
    atomic_fetch_add(&j->calls, 1);
}

/* kpool_next: chunks start at multiples of 16, shrink as the job drains, and cover it. */
static void visit_dynamic(void *ctx, int tid, int nt) {
    job *j = ctx;
    size_t lo, hi, last = (size_t)-1;
    (void)tid;
    while (kpool_next(&j->next, j->n, 16, nt, &lo, &hi)) {
        CHECK(lo % 16 == 0 && lo < hi && hi <= j->n); /* whole chunks but the last */
        CHECK((hi - lo) % 16 == 0 || hi == j->n);
        CHECK(hi - lo <= last || hi == j->n); /* guided: never bigger than this thread's last */
        last = hi - lo;
        for (size_t i = lo; i < hi; i++) atomic_fetch_add(&j->hits[i], 1);
    }
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
            kpool_run(p, round % 2 ? visit_dynamic : visit, &j);
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
    atomic_size_t next = 0; /* guided sizes, one thread: 1000/2 -> 512, then 488/2 -> 256, ... */
    CHECK(kpool_next(&next, 1000, 16, 1, &lo, &hi) && lo == 0 && hi == 512);
    CHECK(kpool_next(&next, 1000, 16, 1, &lo, &hi) && lo == 512 && hi == 768);
    while (kpool_next(&next, 1000, 16, 1, &lo, &hi)) CHECK(hi - lo <= 128);
    CHECK(hi == 1000 && hi - lo <= 16);
    return check_report("pool");
}
