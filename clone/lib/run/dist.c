/* dist — MPI collectives for the engine, or their one-process forms. */
#include "run/dist.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#ifdef KILN_MPI
#include <mpi.h>
#endif

static int dist_rank = 0, dist_size = 1;
static bool joined = false, mpi_on = false;

/* mpirun's Open MPI sets this in every rank it starts. */
static int launched_size(void) {
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    return s && *s ? atoi(s) : 0;
}

void kdist_init(void) {
    if (joined) return;
    joined = true;
    int n = launched_size();
#ifdef KILN_MPI
    if (n < 1) return; /* alone: MPI stays untouched */
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) kiln_die(EX_KILN_IO, "MPI_Init failed");
    mpi_on = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_size);
#else
    if (n > 1)
        kiln_die(EX_KILN_USAGE,
                 "started by mpirun as one of %d ranks, but this kiln was built without MPI: "
                 "install libopenmpi-dev (make deps) and rebuild (rm -rf build bin; make)",
                 n);
#endif
}

int kdist_rank(void) {
    return dist_rank;
}

int kdist_size(void) {
    return dist_size;
}

const char *kdist_backend(void) {
#ifdef KILN_MPI
    static char name[64];
    int major = 0, minor = 0, release = 0;
#if defined(OMPI_MAJOR_VERSION)
    major = OMPI_MAJOR_VERSION, minor = OMPI_MINOR_VERSION, release = OMPI_RELEASE_VERSION;
    snprintf(name, sizeof name, "Open MPI %d.%d.%d", major, minor, release);
#else
    MPI_Get_version(&major, &minor);
    snprintf(name, sizeof name, "MPI %d.%d", major, minor);
#endif
    return name;
#else
    return "none";
#endif
}

void kdist_sum_doubles(double *buf, int n) {
#ifdef KILN_MPI
    if (dist_size > 1) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)buf, (void)n;
#endif
}

void kdist_gather_u64(uint64_t v, uint64_t *out) {
#ifdef KILN_MPI
    if (dist_size > 1) {
        MPI_Allgather(&v, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, MPI_COMM_WORLD);
        return;
    }
#endif
    out[0] = v;
}

/* MPI counts are ints: long buffers go in pieces. */
#define KDIST_CHUNK ((size_t)1 << 30)

void kdist_bcast_floats(float *buf, size_t n, int root) {
#ifdef KILN_MPI
    for (size_t i = 0; dist_size > 1 && i < n; i += KDIST_CHUNK) {
        size_t k = n - i < KDIST_CHUNK ? n - i : KDIST_CHUNK;
        MPI_Bcast(buf + i, (int)k, MPI_FLOAT, root, MPI_COMM_WORLD);
    }
#else
    (void)buf, (void)n, (void)root;
#endif
}

static void sum_floats(float *buf, size_t n) {
#ifdef KILN_MPI
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)buf, (void)n;
#endif
}

kdist_grads *kdist_grads_create(size_t bucket_floats) {
    kdist_grads *d = xcalloc(1, sizeof *d);
    d->bucket = bucket_floats < KDIST_CHUNK ? bucket_floats : KDIST_CHUNK;
    d->buf = xmalloc(xmul(d->bucket, sizeof(float)));
    return d;
}

/* Reduce buf[0..fill) and copy each piece back to the gradient it came from: the pieces
 * are ps[first..] from offset `from` in ps[first], in order. */
static void flush_bucket(kdist_grads *d, size_t fill, const kparam *ps, int first, size_t from) {
    double t0 = kiln_now();
    sum_floats(d->buf, fill);
    d->seconds += kiln_now() - t0;
    d->bytes += fill * sizeof(float);
    for (size_t at = 0; at < fill; first++, from = 0) {
        size_t k = ps[first].numel - from < fill - at ? ps[first].numel - from : fill - at;
        /* (kparam's g is const for the optimizer; it is the model's own gradient buffer) */
        memcpy((float *)ps[first].g + from, d->buf + at, k * sizeof(float));
        at += k;
    }
}

void kdist_grads_sum(kdist_grads *d, const kparam *ps, int n) {
    if (dist_size < 2) return;
    size_t fill = 0, from = 0;
    int first = 0; /* the bucket starts at ps[first].g + from */
    for (int i = 0; i < n; i++) {
        for (size_t off = 0; off < ps[i].numel;) {
            size_t k = ps[i].numel - off < d->bucket - fill ? ps[i].numel - off : d->bucket - fill;
            memcpy(d->buf + fill, ps[i].g + off, k * sizeof(float));
            fill += k, off += k;
            if (fill == d->bucket) {
                flush_bucket(d, fill, ps, first, from);
                fill = 0, first = off < ps[i].numel ? i : i + 1, from = off < ps[i].numel ? off : 0;
            }
        }
    }
    if (fill) flush_bucket(d, fill, ps, first, from);
}

void kdist_grads_free(kdist_grads *d) {
    if (!d) return;
    free(d->buf);
    free(d);
}

void kdist_finalize(void) {
#ifdef KILN_MPI
    if (mpi_on) MPI_Finalize();
#endif
    mpi_on = false;
}
