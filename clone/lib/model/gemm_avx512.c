/* gemm_avx512 — lib/model/gemm's kernels for AVX-512F: 6 x 64 register tiles of C (6 rows
 * x 4 vectors of 16 = 24 accumulators + 4 of B in 28 of the 32 registers), a masked last
 * vector for ragged widths, and 16 x 16 transposes in registers.
 *
 * The Makefile compiles this file alone with -mavx512f -mfma; lib/model/gemm.c calls it only
 * on a CPU (and kernel) that runs AVX-512F, so nothing else in a build needs those flags. */
#include <immintrin.h>
#include <string.h>

#include "model/gemm_kernels.h"

#define MR KGEMM_MR
#define NV 4 /* 16-float vectors across a C tile */
#define NR (16 * NV)

/* c[rows, 16 nv] (+)= alpha a b (+ bias) over kc, in registers, the last vector of 16 masked
 * by `tail`.  Inlined with constant nv, tail and rows, it is the plain 6 x 64 kernel of the
 * big products. */
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

/* The whole 6 x 64 tile on its own path; edge tiles use the same kernel with fewer vectors,
 * a masked last one and fewer rows stored. */
static void tile(int w, int h, int kc, float alpha, const float *a, size_t rs, size_t cs,
                 const float *b, size_t ldb, const float *bias, float *c, int ldc,
                 bool accumulate) {
    if (w == NR && h == MR) {
        tile_kernel(NV, 0xFFFF, MR, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
        return;
    }
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

static void transpose(int rows, int cols, const float *X, size_t ldx, float *Xt, size_t ldt) {
    int r16 = rows / 16 * 16, c16 = cols / 16 * 16;
    for (int r = 0; r < r16; r += 16)
        for (int c = 0; c < c16; c += 16) transpose16(X + r * ldx + c, ldx, Xt + c * ldt + r, ldt);
    for (int r = 0; r < rows; r++)
        for (int c = r < r16 ? c16 : 0; c < cols; c++) Xt[c * ldt + r] = X[r * ldx + c];
}

/* A transposed B is a [w, kc] block of rows turned on its side, 16 x 16 at a time. */
static void pack_panel(bool tb, const float *B, size_t ldb, int kc, int w, float *out) {
    if (tb) transpose(w, kc, B, ldb, out, NR);
    for (int k = 0; k < kc; k++) {
        float *o = out + (size_t)k * NR;
        if (!tb) {
            const float *src = B + k * ldb;
            if (w == NR)
                for (int v = 0; v < NV; v++)
                    _mm512_storeu_ps(o + 16 * v, _mm512_loadu_ps(src + 16 * v));
            else
                memcpy(o, src, sizeof(float) * w);
        }
        for (int c = w; c < NR; c++) o[c] = 0.0f;
    }
}

const kgemm_kernels kgemm_avx512_kernels = {
    .name = "avx512", .nr = NR, .tile = tile, .pack_panel = pack_panel, .transpose = transpose};
