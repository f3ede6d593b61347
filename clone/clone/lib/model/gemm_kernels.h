/* gemm_kernels — what lib/model/gemm.c's loop nest asks of one instruction set: a table of
 * functions per kernel (lib/model/gemm_avx512.c, lib/model/gemm_avx2.c), each file compiled
 * for its own instruction set (the Makefile's per-file flags) and called only once
 * lib/model/gemm.c has seen the CPU run it.  Internal to lib/model/gemm*.c. */
#ifndef KILN_GEMM_KERNELS_H
#define KILN_GEMM_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

/* Rows of every register tile of C.  One constant for all kernels: the loop nest copies
 * rows of a transposed A MR floats at a time, and a copy of known size is a few moves,
 * not a call to memcpy. */
#define KGEMM_MR 6

typedef struct kgemm_kernels {
    const char *name;
    int nr; /* columns of a register tile of C: the width of a packed panel of B */
    /* c[h, w] = alpha a b (+ bias, a row vector, when not NULL) (+ c when accumulate), with
     * w <= nr, h <= KGEMM_MR, over kc.  a[i, k] is at a[i * rs + k * cs], all KGEMM_MR rows
     * readable; b[k, :] at b + k * ldb, read only to column w (a B read in place may end
     * there). */
    void (*tile)(int w, int h, int kc, float alpha, const float *a, size_t rs, size_t cs,
                 const float *b, size_t ldb, const float *bias, float *c, int ldc, bool accumulate);
    /* One [kc][nr] panel of op(B), zero-padded past column w <= nr: B[k, j] at B[k * ldb + j],
     * or with tb at B[j * ldb + k]. */
    void (*pack_panel)(bool tb, const float *B, size_t ldb, int kc, int w, float *out);
    /* Xt[c, r] = X[r, c] for X [rows, cols]. */
    void (*transpose)(int rows, int cols, const float *X, size_t ldx, float *Xt, size_t ldt);
} kgemm_kernels;

extern const kgemm_kernels kgemm_avx512_kernels; /* 6 x 64 tiles, 512-bit vectors */
extern const kgemm_kernels kgemm_avx2_kernels;   /* 6 x 16 tiles, 256-bit vectors and FMA */

#endif
