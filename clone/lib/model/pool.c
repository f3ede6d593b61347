/* pool — fork/join worker threads: spin, then sleep on a futex between jobs. */
#include "model/pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"

/* How long a worker polls for the next job before it sleeps: pauses, then yields (which let
 * another runnable thread have the core), then a futex wait. */
#define SPIN_PAUSES 20000
#define SPIN_YIELDS 2000

struct kpool {
    int nthreads;
    pthread_t *threads;
    kpool_fn fn;
    void *ctx;
    _Atomic unsigned gen; /* bumped once per job; workers wait for it to change */
    atomic_int pending;   /* workers still running the current job */
    atomic_int sleepers;  /* workers asleep (or about to be) on gen */
    atomic_bool stop;
};

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(_Atomic unsigned *addr, unsigned seen) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic unsigned *addr) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

typedef struct worker_arg {
    kpool *pool;
    int tid;
} worker_arg;

/* Wait until gen differs from `seen`; returns the new value. */
static unsigned wait_for_job(kpool *p, unsigned seen) {
    for (int i = 0; i < SPIN_PAUSES + SPIN_YIELDS; i++) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
        if (i < SPIN_PAUSES)
            cpu_relax();
        else
            sched_yield();
    }
    for (;;) {
        atomic_fetch_add(&p->sleepers, 1);
        /* seq_cst pairs with kpool_run: either it sees us asleep or we see its job. */
        if (atomic_load(&p->gen) == seen) futex_wait(&p->gen, seen);
        atomic_fetch_sub(&p->sleepers, 1);
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
    }
}

static void *worker_main(void *arg) {
    worker_arg a = *(worker_arg *)arg;
    free(arg);
    kpool *p = a.pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load(&p->stop)) return NULL;
        p->fn(p->ctx, a.tid, p->nthreads);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

kpool *kpool_create(int nthreads) {
    if (nthreads <= 0) {
        const char *env = getenv("KILN_THREADS");
        uint64_t n = 0;
        if (env && parse_u64(env, &n) && n > 0 && n <= 1024)
            nthreads = (int)n;
        else
            nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (nthreads <= 0) nthreads = 1;
    }
    kpool *p = xcalloc(1, sizeof *p);
    p->nthreads = nthreads;
    p->threads = xcalloc((size_t)nthreads, sizeof *p->threads);
    for (int t = 1; t < nthreads; t++) {
        worker_arg *a = xmalloc(sizeof *a);
        a->pool = p;
        a->tid = t;
        if (pthread_create(&p->threads[t], NULL, worker_main, a) != 0)
            kiln_die(EX_KILN_SOFTWARE, "cannot start worker thread %d", t);
    }
    return p;
}

void kpool_run(kpool *p, kpool_fn fn, void *ctx) {
    if (p->nthreads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->nthreads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn/ctx, orders before sleepers */
    if (atomic_load(&p->sleepers) > 0) futex_wake_all(&p->gen);
    fn(ctx, 0, p->nthreads);
    /* Workers usually finish within microseconds of us; when they do not (more threads
     * than free cores, e.g. upstream stages busy), give the core away instead of spinning. */
    for (int i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
        if (i < SPIN_PAUSES)
            cpu_relax();
        else
            sched_yield();
    }
}

int kpool_size(const kpool *p) {
    return p->nthreads;
}

void kpool_free(kpool *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    atomic_fetch_add(&p->gen, 1);
    futex_wake_all(&p->gen);
    for (int t = 1; t < p->nthreads; t++) pthread_join(p->threads[t], NULL);
    free(p->threads);
    free(p);
}
