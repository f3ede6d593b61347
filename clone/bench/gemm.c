/* gemm — kiln's SGEMM (lib/model/gemm) against OpenBLAS on the products of a config-B training step
 * (6 layers, 384 wide, B 16 x T 256 = 4,096 rows), both split over the pool's threads the
 * way lib/model/gpt splits them: rows of C for the forward and input-gradient products, halves of
 * the batch (summed afterwards) for the weight gradients.  OpenBLAS runs single-threaded
 * inside each pool thread, as kiln ran it before lib/gemm.  Random inputs; the best of
 * --reps runs of each, alternating.  Prints a Markdown table.
 *   build/rel/bench/gemm [--reps N]        (KILN_THREADS picks the threads; default all) */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gemm.h"
#include "model/pool.h"
#include "core/util.h"

typedef struct shape {
    const char *what;
    bool ta, tb;
    int M, N, K;
} shape;

typedef struct job {
    const shape *s;
    bool mine; /* kgemm, else cblas_sgemm */
    const float *A, *B;
    float *C, *partial, *ws;
} job;

static void product(const job *j, bool ta, bool tb, int M, int N, int K, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc, int tid) {
    if (j->mine)
        kgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc,
              j->ws + (size_t)tid * kgemm_workspace_floats());
    else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

static void task(void *ctx, int tid, int nt) {
    const job *j = ctx;
    const shape *s = j->s;
    size_t lo, hi;
    if (s->ta) { /* weight gradient: a slice of the batch each, thread 0 into C */
        kpool_range((size_t)s->K, 64, tid, nt, &lo, &hi);
        float *C = tid ? j->partial + (size_t)(tid - 1) * s->M * s->N : j->C;
        product(j, true, false, s->M, s->N, (int)(hi - lo), j->A + lo * s->M, s->M,
                j->B + lo * s->N, s->N, tid ? 0.0f : 1.0f, C, s->N, tid);
        return;
    }
    kpool_range((size_t)s->M, 16, tid, nt, &lo, &hi);
    product(j, false, s->tb, (int)(hi - lo), s->N, s->K, j->A + lo * s->K, s->K, j->B,
            s->tb ? s->K : s->N, 0.0f, j->C + lo * s->N, s->N, tid);
}

static void sum_task(void *ctx, int tid, int nt) {
    const job *j = ctx;
    size_t lo, hi, size = (size_t)j->s->M * j->s->N;
    kpool_range(size, 16, tid, nt, &lo, &hi);
    for (int p = 1; p < nt; p++)
        for (size_t i = lo; i < hi; i++) j->C[i] += j->partial[(p - 1) * size + i];
}

static double run(kpool *pool, job *j) {
    double t = kiln_now();
    kpool_run(pool, task, j);
    if (j->s->ta) kpool_run(pool, sum_task, j); /* add the partials, as lib/model/gpt does */
    return kiln_now() - t;
}

static float *random_floats(size_t n) {
    float *x = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return x;
}

int main(int argc, char **argv) {
    kiln_set_prog(argv[0]);
    int reps = 12;
    static const struct option opts[] = {{"reps", 1, 0, 'r'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c != 'r') return EX_KILN_USAGE;
        reps = (int)opt_u64("--reps", optarg);
    }
    openblas_set_num_threads(1);
    kpool *pool = kpool_create(0);
    int nt = kpool_size(pool), C = 384, N = 4096;
    const shape shapes[] = {
        {"c_attn forward", false, false, N, 3 * C, C},
        {"attn c_proj forward", false, false, N, C, C},
        {"c_fc forward", false, false, N, 4 * C, C},
        {"mlp c_proj forward", false, false, N, C, 4 * C},
        {"c_attn input gradient", false, true, N, C, 3 * C},
        {"c_fc input gradient", false, true, N, C, 4 * C},
        {"mlp c_proj input gradient", false, true, N, 4 * C, C},
        {"c_attn weight gradient", true, false, C, 3 * C, N},
        {"c_fc weight gradient", true, false, C, 4 * C, N},
        {"mlp c_proj weight gradient", true, false, 4 * C, C, N},
    };
    size_t big = (size_t)N * 4 * C;
    float *A = random_floats(big), *B = random_floats(big), *Cm = xcalloc(big, sizeof(float));
    float *partial = xcalloc((size_t)(nt > 1 ? nt - 1 : 1) * 16 * C * C, sizeof(float));
    float *ws = aligned_alloc(64, (size_t)nt * kgemm_workspace_floats() * sizeof(float));
    if (!ws) kiln_die(EX_KILN_SOFTWARE, "out of memory");
    printf("%d threads, best of %d, kiln's %s kernel; GFLOP/s\n\n", nt, reps, kgemm_kernel());
    printf("| product | M x N x K | kiln gemm | OpenBLAS | ratio |\n|---|---|---|---|---|\n");
    double flops_all = 0, t_mine_all = 0, t_blas_all = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        double best[2] = {1e30, 1e30};
        for (int r = 0; r < reps; r++)
            for (int mine = 0; mine < 2; mine++) {
                job j = {s, mine, A, B, Cm, partial, ws};
                double t = run(pool, &j);
                if (t < best[mine]) best[mine] = t;
            }
        double flops = 2.0 * s->M * s->N * s->K;
        flops_all += flops, t_mine_all += best[1], t_blas_all += best[0];
        printf("| %s | %d x %d x %d | %.1f | %.1f | %.3f |\n", s->what, s->M, s->N, s->K,
               flops / best[1] / 1e9, flops / best[0] / 1e9, best[0] / best[1]);
    }
    printf("| all of the above, once each | | %.1f | %.1f | %.3f |\n", flops_all / t_mine_all / 1e9,
           flops_all / t_blas_all / 1e9, t_blas_all / t_mine_all);
    free(A);
    free(B);
    free(Cm);
    free(partial);
    free(ws);
    kpool_free(pool);
    return 0;
}
