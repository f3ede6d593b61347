/* gemm — a BLIS-style SGEMM: packed panels of B and one register-tile kernel per instruction
 * set (lib/model/gemm_kernels.h), chosen when the program starts; OpenBLAS where none runs.
 *
 * Loops, outermost first: NC columns of B, KC of the shared dimension (that slab of op(B)
 * is packed once, in nr-wide panels), MR rows of A (read in place: an untransposed row is
 * already contiguous in k, and six rows stream well; a transposed A is copied into one
 * small [KC][MR] panel), then the nr-wide panels, each MR x nr tile of C computed in
 * registers over the whole KC slice.  The rows of A stay in L1 while the slab of B
 * streams past them.  Edge tiles use the same kernel with fewer vectors, a masked last
 * one and fewer rows stored.  kgemm_small skips the packing: B is read in place (attention's
 * per-head products, whose B is small and already in cache).
 *
 * On the model's products (build/rel/bench/gemm, 2 threads, Zen 4, the AVX-512 kernel): 197-220
 * GFLOP/s against OpenBLAS 0.3.21's 193-201 on the same split; packing A as well, or reading B in
 * place, was slower while tuning.  The loop nest itself is compiled for any x86-64: it only moves
 * pointers and small copies; every vector instruction is in the kernel files. */
#include "model/gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "model/gemm_kernels.h"

#define MR KGEMM_MR
#define KC 384  /* shared-dimension slice: all of it for the model's width-384 inputs */
#define NC 1536 /* columns of B packed at once */

/* ---- choosing the kernel ------------------------------------------------------------- */

/* __builtin_cpu_supports also checks that the OS saves the wider registers. */
static bool runs_avx512(void) {
    return __builtin_cpu_supports("avx512f");
}

static bool runs_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static bool runs_anywhere(void) {
    return true;
}

/* Best first.  OpenBLAS ("generic") is the last resort and has no table: kern NULL. */
static const struct {
    const char *name;
    const kgemm_kernels *kernels;
    bool (*cpu_runs)(void);
} choices[] = {{"avx512", &kgemm_avx512_kernels, runs_avx512},
               {"avx2", &kgemm_avx2_kernels, runs_avx2},
               {"generic", NULL, runs_anywhere}};
#define N_CHOICES (int)(sizeof choices / sizeof *choices)

static const kgemm_kernels *kern;

static int choice_named(const char *name) {
    for (int c = 0; c < N_CHOICES; c++)
        if (!strcmp(choices[c].name, name)) return c;
    return -1;
}

/* Pool threads multiply; OpenBLAS's own threads would fight them (lib/model/pool.h). */
static void use_choice(int c) {
    kern = choices[c].kernels;
    if (!kern) openblas_set_num_threads(1);
}

bool kgemm_use(const char *name) {
    int c = choice_named(name);
    if (c < 0 || !choices[c].cpu_runs()) return false;
    use_choice(c);
    return true;
}

const char *kgemm_kernel(void) {
    return kern ? kern->name : "generic";
}

/* Before main: the best kernel this CPU runs, at most $KILN_CPU's. */
__attribute__((constructor)) static void choose_kernel(void) {
    __builtin_cpu_init(); /* needed by __builtin_cpu_supports this early */
    const char *cap = getenv("KILN_CPU");
    int first = 0;
    if (cap && *cap && (first = choice_named(cap)) < 0)
        kiln_die(EX_KILN_USAGE, "KILN_CPU=%s: not a kernel (avx512, avx2, generic)", cap);
    for (int c = first; c < N_CHOICES; c++)
        if (choices[c].cpu_runs()) {
            use_choice(c);
            return;
        }
}

/* ---- the loop nest --------------------------------------------------------------------- */

size_t kgemm_workspace_floats(void) {
    return (size_t)KC * MR + (size_t)KC * NC; /* the same for every kernel */
}

/* Pack op(B)[k0 : k0+kc, j0 : j0+nc] as nr-wide panels, [kc][nr] each, zero-padded. */
static void pack_b(bool tb, const float *B, int ldb, int k0, int kc, int j0, int nc, float *out) {
    int nr = kern->nr;
    for (int j = 0; j < nc; j += nr, out += (size_t)kc * nr) {
        int w = nc - j < nr ? nc - j : nr;
        const float *src = tb ? B + (size_t)(j0 + j) * ldb + k0 : B + (size_t)k0 * ldb + j0 + j;
        kern->pack_panel(tb, src, (size_t)ldb, kc, w, out);
    }
}

/* Rows [i, i + h) of op(A) over kc as the kernels read them: in place when they are MR
 * untransposed rows; else copied into the zero-padded [kc][MR] panel apad (a transposed
 * A has MR contiguous floats per k).  Sets *rs and *cs for the result. */
static const float *a_rows(const float *ai, int h, int kc, size_t *rs, size_t *cs, float *apad) {
    if (h == MR && *cs == 1) return ai;
    if (h == MR && *rs == 1)
        for (int k = 0; k < kc; k++) memcpy(apad + k * MR, ai + k * *cs, sizeof(float) * MR);
    else
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < MR; r++) apad[k * MR + r] = r < h ? ai[r * *rs + k * *cs] : 0.0f;
    *rs = 1, *cs = MR;
    return apad;
}

/* op(A)[mc, kc] (element [i, k] at a[i * rs + k * cs]) times the packed B slab Bp [kc, nc]
 * (panel p at Bp + p * panel_stride), into C tile by tile.  Each MR-row group of A stays in L1
 * across the slab. */
static void macro_kernel(int mc, int nc, int kc, float alpha, const float *a, size_t rs, size_t cs,
                         const float *Bp, size_t panel_stride, const float *bias, float *C, int ldc,
                         bool accumulate, float *apad) {
    int nr = kern->nr;
    for (int i = 0; i < mc; i += MR) {
        int h = mc - i < MR ? mc - i : MR;
        size_t ars = rs, acs = cs;
        const float *ai = a_rows(a + i * rs, h, kc, &ars, &acs, apad);
        for (int j = 0; j < nc; j += nr)
            kern->tile(nc - j < nr ? nc - j : nr, h, kc, alpha, ai, ars, acs,
                       Bp + (size_t)(j / nr) * panel_stride, (size_t)nr, bias ? bias + j : NULL,
                       C + (size_t)i * ldc + j, ldc, accumulate);
    }
}

/* Beta other than 0 and 1 applied up front, so the kernels only store or add: C = beta C
 * (zero when beta is: C's old NaNs do not survive), *beta becomes 1.  false when K is 0 and
 * that was all there was to do. */
static bool apply_beta(int M, int N, int K, float *beta, float *C, int ldc) {
    if (K > 0 && (*beta == 0.0f || *beta == 1.0f)) return true;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(size_t)i * ldc + j] = *beta == 0.0f ? 0.0f : *beta * C[(size_t)i * ldc + j];
    *beta = 1.0f;
    return K > 0;
}

/* ---- OpenBLAS, where no kernel runs: "packed" B is op(B) row-major ---------------------- */

static void blas_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void blas_pack(bool tb, int K, int N, const float *B, int ldb, int j0, int j1, float *Bp) {
    for (int k = 0; k < K; k++)
        for (int j = j0; j < j1; j++)
            Bp[(size_t)k * N + j] = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
}

static void add_bias(int M, int N, const float *bias, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] += bias[j];
}

/* ---- the entry points ------------------------------------------------------------------ */

void kgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (!kern) {
        blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (!apply_beta(M, N, K, &beta, C, ldc)) return;
    float *apad = ws, *Bp = ws + (size_t)KC * MR;
    size_t rs = ta ? 1 : (size_t)lda, cs = ta ? (size_t)lda : 1;
    for (int j0 = 0; j0 < N; j0 += NC) {
        int nc = N - j0 < NC ? N - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            pack_b(tb, B, ldb, k0, kc, j0, nc, Bp);
            macro_kernel(M, nc, kc, alpha, A + k0 * cs, rs, cs, Bp, (size_t)kc * kern->nr, NULL,
                         C + j0, ldc, k0 > 0 || beta != 0.0f, apad);
        }
    }
}

size_t kgemm_packed_floats(int K, int N) {
    if (!kern) return (size_t)K * (size_t)N;
    return (size_t)K * (size_t)((N + kern->nr - 1) / kern->nr) * (size_t)kern->nr;
}

int kgemm_panel_width(void) {
    return kern ? kern->nr : 16;
}

int kgemm_tile_rows(void) {
    return kern ? MR : 1;
}

void kgemm_pack(bool tb, int K, int N, const float *B, int ldb, int j0, int j1, float *Bp) {
    if (j1 > N) j1 = N;
    if (j0 >= j1) return;
    if (kern)
        pack_b(tb, B, ldb, 0, K, j0, j1 - j0, Bp + (size_t)j0 * K);
    else
        blas_pack(tb, K, N, B, ldb, j0, j1, Bp);
}

void kgemm_packed(bool ta, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *Bp, float beta, const float *bias, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (!kern) {
        blas_gemm(ta, false, M, N, K, alpha, A, lda, Bp, N, beta, C, ldc);
        if (bias) add_bias(M, N, bias, C, ldc);
        return;
    }
    if (!apply_beta(M, N, K, &beta, C, ldc)) return;
    float *apad = ws;
    size_t rs = ta ? 1 : (size_t)lda, cs = ta ? (size_t)lda : 1;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        macro_kernel(M, N, kc, alpha, A + k0 * cs, rs, cs, Bp + (size_t)k0 * kern->nr,
                     (size_t)K * kern->nr, k0 == 0 ? bias : NULL, C, ldc, k0 > 0 || beta != 0.0f,
                     apad);
    }
}

void kgemm_small(bool ta, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (!kern) {
        blas_gemm(ta, false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (!apply_beta(M, N, K, &beta, C, ldc)) return;
    int nr = kern->nr;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        for (int i = 0; i < M; i += MR) {
            int h = M - i < MR ? M - i : MR;
            size_t rs = ta ? 1 : (size_t)lda, cs = ta ? (size_t)lda : 1;
            const float *ai = a_rows(A + i * rs + k0 * cs, h, kc, &rs, &cs, ws);
            for (int j = 0; j < N; j += nr)
                kern->tile(N - j < nr ? N - j : nr, h, kc, alpha, ai, rs, cs,
                           B + (size_t)k0 * ldb + j, (size_t)ldb, NULL, C + (size_t)i * ldc + j,
                           ldc, k0 > 0 || beta != 0.0f);
        }
    }
}

void ktranspose(int rows, int cols, const float *X, int ldx, float *Xt, int ldt) {
    if (kern) {
        kern->transpose(rows, cols, X, (size_t)ldx, Xt, (size_t)ldt);
        return;
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) Xt[(size_t)c * ldt + r] = X[(size_t)r * ldx + c];
}
