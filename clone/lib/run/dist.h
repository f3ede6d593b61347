/* dist — data parallelism across processes: the few collective operations the training
 * engine (lib/run/engine.c) needs, over Open MPI when kiln is built with it (the Makefile
 * defines KILN_MPI when `pkg-config ompi-c` finds libopenmpi-dev) and trivial otherwise.
 *
 * A process started by mpirun (OMPI_COMM_WORLD_SIZE is set) joins the job at kdist_init;
 * any other process is rank 0 of 1 and never touches MPI, so a build with MPI runs alone
 * exactly as one without.  Every call below is collective: each rank makes the same calls
 * in the same order (the engine's step vote keeps them in step; lib/run/engine.c).
 *
 * MPI errors abort the whole job (MPI_ERRORS_ARE_FATAL): a rank that dies takes the others
 * with it, and the run resumes from its last ckpt record. */
#ifndef KILN_DIST_H
#define KILN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "model/optim.h"

/* Join the job if mpirun started this process (idempotent).  Exits 2 when mpirun started
 * more than one rank but this build has no MPI. */
void kdist_init(void);
int kdist_rank(void);
int kdist_size(void);
/* "Open MPI 4.1.4", or "none" for a build without MPI. */
const char *kdist_backend(void);

/* buf[i] = the sum over ranks of buf[i], in place. */
void kdist_sum_doubles(double *buf, int n);
/* out[r] = rank r's v, on every rank (out holds kdist_size() values). */
void kdist_gather_u64(uint64_t v, uint64_t *out);
/* The root's values everywhere. */
void kdist_bcast_floats(float *buf, size_t n, int root);

/* Gradient averaging in buckets: the listed gradients are packed into buckets of at most
 * `bucket` floats, each summed over ranks with one all-reduce and unpacked, so a model of
 * many small tensors costs a few large messages rather than one each.  The engine has
 * already scaled every rank's gradient by 1/(accum * ranks): the sum is the average. */
typedef struct kdist_grads {
    float *buf;
    size_t bucket;
    double seconds; /* time spent in the all-reduces, for the bench */
    uint64_t bytes; /* gradient bytes reduced so far */
} kdist_grads;

kdist_grads *kdist_grads_create(size_t bucket_floats);
void kdist_grads_sum(kdist_grads *d, const kparam *ps, int n);
void kdist_grads_free(kdist_grads *d);

/* Leave the job (after the last collective call; idempotent). */
void kdist_finalize(void);

#endif
