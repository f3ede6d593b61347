/* gemm — a BLIS-style SGEMM: packed panels of B and one AVX-512 micro-kernel.
 *
 * Loops, outermost first: NC columns of B, KC of the shared dimension (that slab of op(B)
 * is packed once, in NR-wide panels), MR rows of A (read in place: an untransposed row is
 * already contiguous in k, and six rows stream well; a transposed A is copied into one
 * small [KC][MR] panel), then the NR-wide panels, each MR x NR tile of C computed in
 * registers over the whole KC slice.  The rows of A stay in L1 while the slab of B
 * streams past them.  Edge tiles go through a small C scratch.
 *
 * On the model's products (build/rel/bench/gemm, 2 threads, Zen 4): 183-218 GFLOP/s against
 * OpenBLAS 0.3.21's 182-195 on the same split; packing A as well, or reading B in place, was
 * slower while tuning. */
#include "gemm.h"

#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>

#define MR 6 /* rows of a C tile: 6 x 4 accumulators + 4 of B fill 28 of 32 registers */
#define NV 4 /* 16-float vectors across a C tile */
#define NR (16 * NV)
#define KC 384  /* shared-dimension slice: all of it for the model's width-384 inputs */
#define NC 1536 /* columns of B packed at once */

size_t kgemm_workspace_floats(void) {
    return (size_t)KC * MR + (size_t)KC * NC + MR * NR;
}

/* c[MR, NR] (+)= alpha a b over kc.  a[i, k] is at a[i * rs + k * cs]; b[k, :] at b + k * ldb. */
static void micro_kernel(int kc, float alpha, const float *restrict a, size_t rs, size_t cs,
                         const float *restrict b, size_t ldb, float *c, int ldc, bool accumulate) {
    __m512 acc[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    const float *ar[MR];
    for (int i = 0; i < MR; i++) ar[i] = a + i * rs;
    for (int k = 0; k < kc; k++, b += ldb) {
        __m512 bv[NV];
        for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(ar[i][k * cs]);
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha);
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) {
            float *p = c + (size_t)i * ldc + 16 * v;
            __m512 x = _mm512_mul_ps(va, acc[i][v]);
            if (accumulate) x = _mm512_add_ps(x, _mm512_loadu_ps(p));
            _mm512_storeu_ps(p, x);
        }
}

/* Pack op(B)[k0 : k0+kc, j0 : j0+nc] as NR-wide panels, [kc][NR] each, zero-padded. */
static void pack_b(bool tb, const float *B, int ldb, int k0, int kc, int j0, int nc, float *out) {
    for (int j = 0; j < nc; j += NR) {
        int w = nc - j < NR ? nc - j : NR;
        for (int k = 0; k < kc; k++, out += NR) {
            if (!tb) {
                memcpy(out, B + (size_t)(k0 + k) * ldb + j0 + j, sizeof(float) * w);
            } else {
                const float *src = B + (size_t)(j0 + j) * ldb + k0 + k;
                for (int c = 0; c < w; c++) out[c] = src[(size_t)c * ldb];
            }
            for (int c = w; c < NR; c++) out[c] = 0.0f;
        }
    }
}

/* op(A)[mc, kc] (element [i, k] at a[i * rs + k * cs]) times the packed B slab Bp [kc, nc]
 * (panel p at Bp + p * panel_stride), into C tile by tile.  Each MR-row group of A stays in L1
 * across the slab; a transposed A or a last partial group is first copied into a zero-padded
 * [kc][MR] panel. */
static void macro_kernel(int mc, int nc, int kc, float alpha, const float *a, size_t rs, size_t cs,
                         const float *Bp, size_t panel_stride, float *C, int ldc, bool accumulate,
                         float *apad, float *edge) {
    for (int i = 0; i < mc; i += MR) {
        int h = mc - i < MR ? mc - i : MR;
        const float *ai = a + i * rs;
        size_t ars = rs, acs = cs;
        if (h == MR && rs == 1 && cs != 1) { /* transposed A: MR contiguous floats per k */
            for (int k = 0; k < kc; k++) memcpy(apad + k * MR, ai + k * cs, sizeof(float) * MR);
            ai = apad, ars = 1, acs = MR;
        } else if (h < MR) {
            for (int k = 0; k < kc; k++)
                for (int r = 0; r < MR; r++) apad[k * MR + r] = r < h ? ai[r * rs + k * cs] : 0.0f;
            ai = apad, ars = 1, acs = MR;
        }
        for (int j = 0; j < nc; j += NR) {
            const float *b = Bp + (size_t)(j / NR) * panel_stride;
            float *c = C + (size_t)i * ldc + j;
            int w = nc - j < NR ? nc - j : NR;
            if (h == MR && w == NR) {
                micro_kernel(kc, alpha, ai, ars, acs, b, NR, c, ldc, accumulate);
                continue;
            }
            for (int r = 0; r < h; r++)
                memcpy(edge + r * NR, c + (size_t)r * ldc, sizeof(float) * w);
            micro_kernel(kc, alpha, ai, ars, acs, b, NR, edge, NR, accumulate);
            for (int r = 0; r < h; r++)
                memcpy(c + (size_t)r * ldc, edge + r * NR, sizeof(float) * w);
        }
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

void kgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (!apply_beta(M, N, K, &beta, C, ldc)) return;
    float *apad = ws, *Bp = ws + (size_t)KC * MR, *edge = Bp + (size_t)KC * NC;
    size_t rs = ta ? 1 : (size_t)lda, cs = ta ? (size_t)lda : 1;
    for (int j0 = 0; j0 < N; j0 += NC) {
        int nc = N - j0 < NC ? N - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            pack_b(tb, B, ldb, k0, kc, j0, nc, Bp);
            macro_kernel(M, nc, kc, alpha, A + k0 * cs, rs, cs, Bp, (size_t)kc * NR, C + j0, ldc,
                         k0 > 0 || beta != 0.0f, apad, edge);
        }
    }
}

size_t kgemm_packed_floats(int K, int N) {
    return (size_t)K * (size_t)((N + NR - 1) / NR) * NR;
}

int kgemm_panel_width(void) {
    return NR;
}

int kgemm_tile_rows(void) {
    return MR;
}

void kgemm_pack(bool tb, int K, int N, const float *B, int ldb, int j0, int j1, float *Bp) {
    if (j1 > N) j1 = N;
    if (j0 < j1) pack_b(tb, B, ldb, 0, K, j0, j1 - j0, Bp + (size_t)j0 * K);
}

void kgemm_packed(bool ta, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *Bp, float beta, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (!apply_beta(M, N, K, &beta, C, ldc)) return;
    float *apad = ws, *edge = ws + (size_t)KC * MR + (size_t)KC * NC;
    size_t rs = ta ? 1 : (size_t)lda, cs = ta ? (size_t)lda : 1;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        macro_kernel(M, N, kc, alpha, A + k0 * cs, rs, cs, Bp + (size_t)k0 * NR, (size_t)K * NR, C,
                     ldc, k0 > 0 || beta != 0.0f, apad, edge);
    }
}

#else /* no AVX-512 at build time: OpenBLAS does it; "packed" B is op(B) row-major */
#include <cblas.h>

size_t kgemm_workspace_floats(void) {
    return 16;
}

void kgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc, float *ws) {
    (void)ws;
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
}

size_t kgemm_packed_floats(int K, int N) {
    return (size_t)K * (size_t)N;
}

int kgemm_panel_width(void) {
    return 16;
}

int kgemm_tile_rows(void) {
    return 1;
}

void kgemm_pack(bool tb, int K, int N, const float *B, int ldb, int j0, int j1, float *Bp) {
    if (j1 > N) j1 = N;
    for (int k = 0; k < K; k++)
        for (int j = j0; j < j1; j++)
            Bp[(size_t)k * N + j] = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
}

void kgemm_packed(bool ta, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *Bp, float beta, float *C, int ldc, float *ws) {
    kgemm(ta, false, M, N, K, alpha, A, lda, Bp, N, beta, C, ldc, ws);
}
#endif
