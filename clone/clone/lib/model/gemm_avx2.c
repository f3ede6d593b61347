/* gemm_avx2 — lib/model/gemm's kernels for AVX2 with FMA (Haswell and later, Zen): 6 x 16
 * register tiles of C (6 rows x 2 vectors of 8 = 12 accumulators + 2 of B + 1 broadcast in
 * 15 of the 16 registers, the classic shape for this register file), a masked last vector
 * for ragged widths, and 8 x 8 transposes in registers.
 *
 * The Makefile compiles this file alone with -mavx2 -mfma; lib/model/gemm.c calls it only on
 * a CPU that runs both. */
#include <immintrin.h>
#include <string.h>

#include "model/gemm_kernels.h"

#define MR KGEMM_MR
#define NV 2 /* 8-float vectors across a C tile */
#define NR (8 * NV)

/* The first n of 8 lanes set: the mask of a ragged last vector (masked lanes are neither
 * read nor written, so a B or C that ends there is never touched past its end). */
static __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The last vector of a tile: masked only when the tile is ragged (a masked move costs more
 * than a plain one, a masked store much more on AMD). */
static inline __attribute__((always_inline)) __m256 load_last(bool masked, __m256i tail,
                                                              const float *p) {
    return masked ? _mm256_maskload_ps(p, tail) : _mm256_loadu_ps(p);
}

/* c[rows, 8 nv] (+)= alpha a b (+ bias) over kc, in registers; the last vector of 8 masked
 * by `tail` when `masked`.  Inlined with constant nv, masked and rows, it is the plain
 * 6 x 16 kernel of the big products. */
static inline __attribute__((always_inline)) void
tile_kernel(int nv, bool masked, __m256i tail, int rows, int kc, float alpha,
            const float *restrict a, size_t rs, size_t cs, const float *restrict b, size_t ldb,
            const float *bias, float *c, int ldc, bool accumulate) {
    __m256 acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) acc[i][v] = _mm256_setzero_ps();
    const float *ar[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) ar[i] = a + i * rs;
    /* as in lib/model/gemm_avx512.c: fetch the C that the stores will add to */
    if (accumulate)
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++)
            _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
    for (int k = 0; k < kc; k++, b += ldb) {
        __m256 bv[NV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            bv[v] = v < nv - 1 ? _mm256_loadu_ps(b + 8 * v) : load_last(masked, tail, b + 8 * v);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(ar[i] + k * cs);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
    __m256 va = _mm256_set1_ps(alpha), vb[NV];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++)
        vb[v] = !bias        ? _mm256_setzero_ps()
                : v < nv - 1 ? _mm256_loadu_ps(bias + 8 * v)
                             : load_last(masked, tail, bias + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            float *p = c + (size_t)i * ldc + 8 * v;
            bool last_masked = masked && v == nv - 1;
            __m256 x = _mm256_fmadd_ps(va, acc[i][v], vb[v]);
            if (accumulate) x = _mm256_add_ps(x, load_last(last_masked, tail, p));
            if (last_masked)
                _mm256_maskstore_ps(p, tail, x);
            else
                _mm256_storeu_ps(p, x);
        }
}

/* The whole 6 x 16 tile on its own path; edge tiles use the same kernel with one vector or
 * two, a masked last one and fewer rows stored. */
static void tile(int w, int h, int kc, float alpha, const float *a, size_t rs, size_t cs,
                 const float *b, size_t ldb, const float *bias, float *c, int ldc,
                 bool accumulate) {
    __m256i tail = lanes_below(w % 8);
    if (w == NR && h == MR)
        tile_kernel(NV, false, tail, MR, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
    else if (w > 8 && w % 8)
        tile_kernel(2, true, tail, h, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
    else if (w > 8)
        tile_kernel(2, false, tail, h, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
    else if (w % 8)
        tile_kernel(1, true, tail, h, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
    else
        tile_kernel(1, false, tail, h, kc, alpha, a, rs, cs, b, ldb, bias, c, ldc, accumulate);
}

/* Xt[c, r] = X[r, c] in 8 x 8 blocks, each transposed in registers: unpack pairs of rows,
 * shuffle pairs of floats, then swap 128-bit halves.  Edges go element by element. */
static void transpose8(const float *X, size_t ldx, float *Xt, size_t ldt) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(X + i * ldx);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(Xt + i * ldt, t[i]);
}

static void transpose(int rows, int cols, const float *X, size_t ldx, float *Xt, size_t ldt) {
    int r8 = rows / 8 * 8, c8 = cols / 8 * 8;
    for (int r = 0; r < r8; r += 8)
        for (int c = 0; c < c8; c += 8) transpose8(X + r * ldx + c, ldx, Xt + c * ldt + r, ldt);
    for (int r = 0; r < rows; r++)
        for (int c = r < r8 ? c8 : 0; c < cols; c++) Xt[c * ldt + r] = X[r * ldx + c];
}

/* A transposed B is a [w, kc] block of rows turned on its side, 8 x 8 at a time. */
static void pack_panel(bool tb, const float *B, size_t ldb, int kc, int w, float *out) {
    if (tb) transpose(w, kc, B, ldb, out, NR);
    for (int k = 0; k < kc; k++) {
        float *o = out + (size_t)k * NR;
        if (!tb) {
            const float *src = B + k * ldb;
            if (w == NR)
                for (int v = 0; v < NV; v++)
                    _mm256_storeu_ps(o + 8 * v, _mm256_loadu_ps(src + 8 * v));
            else
                memcpy(o, src, sizeof(float) * w);
        }
        for (int c = w; c < NR; c++) o[c] = 0.0f;
    }
}

const kgemm_kernels kgemm_avx2_kernels = {
    .name = "avx2", .nr = NR, .tile = tile, .pack_panel = pack_panel, .transpose = transpose};
