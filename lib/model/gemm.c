/* gemm — a BLIS-style SGEMM: packed panels of B and one AVX-512 micro-kernel.
 *
 * Loops, outermost first: NC columns of B, KC of the shared dimension (that slab of op(B)
 * is packed once, in NR-wide panels), MR rows of A (read in place: an untransposed row is
 * already contiguous in k, and six rows stream well; a transposed A is copied into one
 * small [KC][MR] panel), then the NR-wide panels, each MR x NR tile of C computed in
 * registers over the whole KC slice.  The rows of A stay in L1 while the slab of B
 * streams past them.  Edge tiles use the same kernel with fewer vectors, a masked last
 * one and fewer rows stored.  kgemm_small skips the packing: B is read in place (attention's
 * per-head products, whose B is small and already in cache).
 *
 * On the model's products (build/rel/bench/gemm, 2 threads, Zen 4): 197-220 GFLOP/s against
 * OpenBLAS 0.3.21's 193-201 on the same split; packing A as well, or reading B in place, was
 * slower while tuning. */
#include "model/gemm.h"

#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>

#define MR 6 /* rows of a C tile: 6 x 4 accumulators + 4 of B fill 28 of 32 registers */
#define NV 4 /* 16-float vectors across a C tile */
#define NR (16 * NV)
#define KC 384  /* shared-dimension slice: all of it for the model's width-384 inputs */
#define NC 1536 /* columns of B packed at once */

size_t kgemm_workspace_floats(void) {
    return (size_t)KC * MR + (size_t)KC * NC;
}

/* c[rows, 16 nv] (+)= alpha a b (+ bias, a row vector, when not NULL) over kc, in registers.
 * a[i, k] is at a[i * rs + k * cs] (all MR rows readable); b[k, :] at b + k * ldb, its last
 * vector of 16 masked by `tail` (so a B read in place is never read past its width).  Inlined
 * with constant nv, tail and rows, it is the plain 6 x 64 kernel of the big products. */
static inline __attribute__((always_inline)) void
tile_kernel(int nv, __mmask16 tail, int rows, int kc, float alpha, const float *restrict a,
            size_t rs, size_t cs, const float *restrict b, size_t ldb, const float *bias, float *c,
            int ldc, bool accumulate) {
    __m512 acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    const float *ar[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) ar[i] = a + i * rs;
    /* C is read back at the end (the previous k slice's sums): fetch it now, or the stores
     * wait on a tile that left the cache since (4% on the products with several slices). */
    if (accumulate)
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++)
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                _mm_prefetch((const char *)(c + (size_t)i * ldc + 16 * v), _MM_HINT_T0);
    for (int k = 0; k < kc; k++, b += ldb) {
        __m512 bv[NV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            bv[v] =
                v < nv - 1 ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(tail, b + 16 * v);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(ar[i][k * cs]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb[NV];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++)
        vb[v] = bias ? _mm512_maskz_loadu_ps(v < nv - 1 ? 0xFFFF : tail, bias + 16 * v)
                     : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            float *p = c + (size_t)i * ldc + 16 * v;
            __mmask16 m = v < nv - 1 ? 0xFFFF : tail;
            __m512 x = _mm512_fmadd_ps(va, acc[i][v], vb[v]);
            if (accumulate) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, p));
            _mm512_mask_storeu_ps(p, m, x);
        }
}

static void micro_kernel(int kc, float alpha, const float *restrict a, size_t rs, size_t cs,
                         const float *restrict b, size_t ldb, const float *bias, float *c, int ldc,
                         bool accumulate) {
    tile_kernel(NV, 0xFFFF, MR, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
}

static void transpose_any(int rows, int cols, const float *X, size_t ldx, float *Xt, size_t ldt);

/* Pack op(B)[k0 : k0+kc, j0 : j0+nc] as NR-wide panels, [kc][NR] each, zero-padded.  A
 * transposed B is a [w, kc] block of rows turned on its side, 16 x 16 at a time. */
static void pack_b(bool tb, const float *B, int ldb, int k0, int kc, int j0, int nc, float *out) {
    for (int j = 0; j < nc; j += NR, out += (size_t)kc * NR) {
        int w = nc - j < NR ? nc - j : NR;
        if (tb) transpose_any(w, kc, B + (size_t)(j0 + j) * ldb + k0, (size_t)ldb, out, NR);
        for (int k = 0; k < kc; k++) {
            float *o = out + (size_t)k * NR;
            if (!tb) {
                const float *src = B + (size_t)(k0 + k) * ldb + j0 + j;
                if (w == NR)
                    for (int v = 0; v < NV; v++)
                        _mm512_storeu_ps(o + 16 * v, _mm512_loadu_ps(src + 16 * v));
                else
                    memcpy(o, src, sizeof(float) * w);
            }
            for (int c = w; c < NR; c++) o[c] = 0.0f;
        }
    }
}

/* One tile of any width w <= NR and height h <= MR (b readable to 16 ceil(w / 16) floats
 * per row, masked past w; a's MR rows all readable). */
static void any_tile(int w, int h, int kc, float alpha, const float *a, size_t rs, size_t cs,
                     const float *b, size_t ldb, const float *bias, float *c, int ldc,
                     bool accumulate) {
    __mmask16 tail = w % 16 ? (__mmask16)((1u << (w % 16)) - 1) : (__mmask16)0xFFFF;
    switch ((w + 15) / 16) {
    case 1:
        tile_kernel(1, tail, h, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
        break;
    case 2:
        tile_kernel(2, tail, h, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
        break;
    case 3:
        tile_kernel(3, tail, h, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
        break;
    default:
        tile_kernel(4, tail, h, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
        break;
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
    for (int i = 0; i < mc; i += MR) {
        int h = mc - i < MR ? mc - i : MR;
        size_t ars = rs, acs = cs;
        const float *ai = a_rows(a + i * rs, h, kc, &ars, &acs, apad);
        for (int j = 0; j < nc; j += NR) {
            const float *b = Bp + (size_t)(j / NR) * panel_stride;
            float *c = C + (size_t)i * ldc + j;
            int w = nc - j < NR ? nc - j : NR;
            const float *bj = bias ? bias + j : NULL;
            if (h == MR && w == NR)
                micro_kernel(kc, alpha, ai, ars, acs, b, NR, bj, c, ldc, accumulate);
            else
                any_tile(w, h, kc, alpha, ai, ars, acs, b, NR, bj, c, ldc, accumulate);
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
    float *apad = ws, *Bp = ws + (size_t)KC * MR;
    size_t rs = ta ? 1 : (size_t)lda, cs = ta ? (size_t)lda : 1;
    for (int j0 = 0; j0 < N; j0 += NC) {
        int nc = N - j0 < NC ? N - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            pack_b(tb, B, ldb, k0, kc, j0, nc, Bp);
            macro_kernel(M, nc, kc, alpha, A + k0 * cs, rs, cs, Bp, (size_t)kc * NR, NULL, C + j0,
                         ldc, k0 > 0 || beta != 0.0f, apad);
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
                  const float *Bp, float beta, const float *bias, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (!apply_beta(M, N, K, &beta, C, ldc)) return;
    float *apad = ws;
    size_t rs = ta ? 1 : (size_t)lda, cs = ta ? (size_t)lda : 1;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        macro_kernel(M, N, kc, alpha, A + k0 * cs, rs, cs, Bp + (size_t)k0 * NR, (size_t)K * NR,
                     k0 == 0 ? bias : NULL, C, ldc, k0 > 0 || beta != 0.0f, apad);
    }
}

void kgemm_small(bool ta, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (!apply_beta(M, N, K, &beta, C, ldc)) return;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        for (int i = 0; i < M; i += MR) {
            int h = M - i < MR ? M - i : MR;
            size_t rs = ta ? 1 : (size_t)lda, cs = ta ? (size_t)lda : 1;
            const float *ai = a_rows(A + i * rs + k0 * cs, h, kc, &rs, &cs, ws);
            for (int j = 0; j < N; j += NR)
                any_tile(N - j < NR ? N - j : NR, h, kc, alpha, ai, rs, cs,
                         B + (size_t)k0 * ldb + j, (size_t)ldb, NULL, C + (size_t)i * ldc + j, ldc,
                         k0 > 0 || beta != 0.0f);
        }
    }
}

/* Xt[c, r] = X[r, c] in 16 x 16 blocks, each transposed in registers: unpack pairs of rows,
 * then shuffle pairs of floats, then 128-bit lanes twice.  Edges go element by element. */
static void transpose16(const float *X, size_t ldx, float *Xt, size_t ldt) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(X + i * ldx);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(Xt + i * ldt, r[i]);
}

static void transpose_any(int rows, int cols, const float *X, size_t ldx, float *Xt, size_t ldt) {
    int r16 = rows / 16 * 16, c16 = cols / 16 * 16;
    for (int r = 0; r < r16; r += 16)
        for (int c = 0; c < c16; c += 16) transpose16(X + r * ldx + c, ldx, Xt + c * ldt + r, ldt);
    for (int r = 0; r < rows; r++)
        for (int c = r < r16 ? c16 : 0; c < cols; c++) Xt[c * ldt + r] = X[r * ldx + c];
}

void ktranspose(int rows, int cols, const float *X, int ldx, float *Xt, int ldt) {
    transpose_any(rows, cols, X, (size_t)ldx, Xt, (size_t)ldt);
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
                  const float *Bp, float beta, const float *bias, float *C, int ldc, float *ws) {
    kgemm(ta, false, M, N, K, alpha, A, lda, Bp, N, beta, C, ldc, ws);
    if (bias)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] += bias[j];
}

void kgemm_small(bool ta, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc, float *ws) {
    kgemm(ta, false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ws);
}

void ktranspose(int rows, int cols, const float *X, int ldx, float *Xt, int ldt) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) Xt[(size_t)c * ldt + r] = X[(size_t)r * ldx + c];
}
#endif
