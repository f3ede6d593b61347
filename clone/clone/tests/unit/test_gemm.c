/* test_gemm — kgemm against a plain triple loop in double precision: every transpose
 * combination, edge sizes around the tile and slice sizes, strides wider than the matrix,
 * and beta 0 (C's old contents, even NaN, ignored), 1 and 0.5; and kgemm_packed from a B
 * packed in two column ranges; kgemm_small (B in place) over the same sizes and every width of
 * a masked last vector; ktranspose.  All of it for every kernel this CPU runs (avx512, avx2,
 * generic), whatever KILN_CPU says; and that KILN_CPU chose the kernel the program started on. */
#include "../../lib/model/gemm.h"

#include <stdlib.h>
#include <string.h>

#include "../../lib/core/rng.h"
#include "../../lib/core/util.h"
#include "check.h"

static void fill(float *x, size_t n, krng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)krng_uniform(r) - 0.5f;
}

/* C[i, j] from the definition, with the same layouts as kgemm's arguments. */
static double reference(bool ta, bool tb, int i, int j, int K, const float *A, int lda,
                        const float *B, int ldb) {
    double s = 0.0;
    for (int k = 0; k < K; k++) {
        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        s += a * b;
    }
    return s;
}

/* kgemm, or with `small` kgemm_small (B untransposed, read in place). */
static void check_case(bool small, bool ta, bool tb, int M, int N, int K, float beta, float *ws,
                       krng *r) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    size_t a_rows = ta ? K : M, b_rows = tb ? N : K;
    float *A = xmalloc(sizeof(float) * a_rows * lda), *B = xmalloc(sizeof(float) * b_rows * ldb);
    float *C = xmalloc(sizeof(float) * M * ldc), *C0 = xmalloc(sizeof(float) * M * ldc);
    fill(A, a_rows * lda, r);
    fill(B, b_rows * ldb, r);
    fill(C0, (size_t)M * ldc, r);
    if (beta == 0.0f) C0[0] = NAN; /* must not leak into the result */
    memcpy(C, C0, sizeof(float) * M * ldc);
    if (small)
        kgemm_small(ta, M, N, K, 0.75f, A, lda, B, ldb, beta, C, ldc, ws);
    else
        kgemm(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, beta, C, ldc, ws);
    int bad = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < ldc; j++) {
            float got = C[(size_t)i * ldc + j], old = C0[(size_t)i * ldc + j];
            if (j >= N) { /* the padding between rows is not touched */
                bad += got != old && !(got != got && old != old);
                continue;
            }
            double want =
                0.75 * reference(ta, tb, i, j, K, A, lda, B, ldb) + (beta ? beta * old : 0.0);
            bad += !(fabs(got - want) <= 1e-5 * (1.0 + sqrt((double)K)));
        }
    }
    if (bad)
        fprintf(stderr, "%s %s ta=%d tb=%d M=%d N=%d K=%d beta=%g: %d wrong elements\n",
                kgemm_kernel(), small ? "kgemm_small" : "kgemm", ta, tb, M, N, K, beta, bad);
    CHECK(bad == 0);
    free(A);
    free(B);
    free(C);
    free(C0);
}

/* kgemm_packed from a B packed in two column ranges (as two threads would), rows of A at
 * an offset, beta 1 over a NaN-free C, plus a bias row. */
static void check_packed(bool ta, bool tb, int M, int N, int K, float *ws, krng *r) {
    int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N;
    size_t a_rows = ta ? K : M, b_rows = tb ? N : K;
    float *A = xmalloc(sizeof(float) * a_rows * lda), *B = xmalloc(sizeof(float) * b_rows * ldb);
    float *C = xmalloc(sizeof(float) * M * ldc), *C0 = xmalloc(sizeof(float) * M * ldc);
    float *Bp = aligned_alloc(64, (kgemm_packed_floats(K, N) * sizeof(float) + 63) / 64 * 64);
    if (!Bp) exit(1);
    fill(A, a_rows * lda, r);
    fill(B, b_rows * ldb, r);
    fill(C0, (size_t)M * ldc, r);
    memcpy(C, C0, sizeof(float) * M * ldc);
    int w = kgemm_panel_width(), split = (N / 2 + w - 1) / w * w;
    kgemm_pack(tb, K, N, B, ldb, split, N, Bp);
    kgemm_pack(tb, K, N, B, ldb, 0, split, Bp);
    float *bias = xmalloc(sizeof(float) * N);
    fill(bias, (size_t)N, r);
    kgemm_packed(ta, M, N, K, 1.0f, A, lda, Bp, 1.0f, bias, C, ldc, ws);
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double want =
                reference(ta, tb, i, j, K, A, lda, B, ldb) + C0[(size_t)i * ldc + j] + bias[j];
            bad += !(fabs(C[(size_t)i * ldc + j] - want) <= 1e-5 * (1.0 + sqrt((double)K)));
        }
    if (bad)
        fprintf(stderr, "%s kgemm_packed ta=%d tb=%d M=%d N=%d K=%d: %d wrong elements\n",
                kgemm_kernel(), ta, tb, M, N, K, bad);
    CHECK(bad == 0);
    free(A);
    free(B);
    free(C);
    free(C0);
    free(Bp);
    free(bias);
}

/* ktranspose over whole 16 x 16 blocks, ragged edges and wider strides. */
static void check_transpose(int rows, int cols, krng *r) {
    int ldx = cols + 3, ldt = rows + 5;
    float *X = xmalloc(sizeof(float) * rows * ldx), *Xt = xmalloc(sizeof(float) * cols * ldt);
    fill(X, (size_t)rows * ldx, r);
    fill(Xt, (size_t)cols * ldt, r);
    ktranspose(rows, cols, X, ldx, Xt, ldt);
    int bad = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) bad += Xt[(size_t)j * ldt + i] != X[(size_t)i * ldx + j];
    if (bad)
        fprintf(stderr, "%s ktranspose %d x %d: %d wrong elements\n", kgemm_kernel(), rows, cols,
                bad);
    CHECK(bad == 0);
    free(X);
    free(Xt);
}

/* Every check above, on the kernel in use. */
static void check_kernel(float *ws, krng *r) {
    const int sizes_m[] = {1, 5, 6, 7, 13, 64, 100};
    const int sizes_n[] = {1, 17, 64, 65, 130};
    const int sizes_k[] = {1, 7, 64, 383, 384, 385, 800};
    for (int t = 0; t < 6; t++) /* 4, 5: kgemm_small, A untransposed and transposed */
        for (size_t im = 0; im < sizeof sizes_m / sizeof *sizes_m; im++)
            for (size_t in = 0; in < sizeof sizes_n / sizeof *sizes_n; in++)
                for (size_t ik = 0; ik < sizeof sizes_k / sizeof *sizes_k; ik++)
                    check_case(t >= 4, t & 1, t < 4 && (t & 2), sizes_m[im], sizes_n[in],
                               sizes_k[ik], (float)((im + in + ik) % 3) * 0.5f, ws, r);
    /* wider than one packed slab of B (1536 columns), and K = 0 (C = beta C) */
    check_case(false, false, false, 8, 1600, 16, 0.0f, ws, r);
    check_case(false, false, true, 8, 1600, 16, 1.0f, ws, r);
    check_case(false, true, false, 9, 70, 0, 0.0f, ws, r);
    check_case(false, false, false, 9, 70, 0, 0.5f, ws, r);
    check_case(true, true, false, 9, 70, 0, 0.5f, ws, r);
    /* attention's shapes: 64-wide heads, causal row counts, every 16-column tail */
    for (int n = 1; n <= 48; n++) check_case(true, n & 1, false, 6, n, 64, 0.0f, ws, r);
    check_case(true, false, false, 250, 64, 256, 0.0f, ws, r);
    const int sizes_t[] = {1, 7, 8, 9, 15, 16, 17, 33, 64, 256};
    for (size_t a = 0; a < sizeof sizes_t / sizeof *sizes_t; a++)
        for (size_t b = 0; b < sizeof sizes_t / sizeof *sizes_t; b++)
            check_transpose(sizes_t[a], sizes_t[b], r);
    for (int t = 0; t < 4; t++) {
        check_packed(t & 1, t & 2, 13, 130, 800, ws, r); /* K over two slabs, edge panel */
        check_packed(t & 1, t & 2, 192, 64, 7, ws, r);
    }
}

/* The program started on the best kernel this CPU runs, at most KILN_CPU's. */
static void check_start(const char *started, const char *const *names, int n) {
    const char *cap = getenv("KILN_CPU");
    int first = 0;
    while (cap && *cap && first < n && strcmp(names[first], cap)) first++;
    CHECK(first < n);
    while (first < n && !kgemm_use(names[first])) first++;
    CHECK(first < n && !strcmp(started, names[first]));
    CHECK(!kgemm_use("avx1024") && !strcmp(kgemm_kernel(), names[first]));
}

int main(void) {
    float *ws = aligned_alloc(64, sizeof(float) * ((kgemm_workspace_floats() + 15) / 16 * 16));
    if (!ws) return 1;
    krng r;
    krng_init(&r, 7, 0, 0, 0);
    const char *started = kgemm_kernel();
    const char *const names[] = {"avx512", "avx2", "generic"};
    int n = (int)(sizeof names / sizeof *names), ran = 0;
    for (int i = 0; i < n; i++) {
        if (!kgemm_use(names[i])) {
            printf("%s: not on this CPU\n", names[i]);
            continue;
        }
        CHECK(!strcmp(kgemm_kernel(), names[i]));
        int failures = check_failures;
        check_kernel(ws, &r);
        printf("%s: %s\n", names[i], check_failures == failures ? "ok" : "FAILED");
        ran++;
    }
    CHECK(kgemm_use("generic")); /* OpenBLAS runs everywhere */
    CHECK(ran >= 1);
    check_start(started, names, n);
    free(ws);
    return check_report("test_gemm");
}
