/* gemm — kiln's single-threaded SGEMM, the one entry point for the matrix products of the
 * model and its adapters (lib/model/gpt, lib/model/lora): the linear layers' (kgemm,
 * kgemm_pack / kgemm_packed) and attention's small per-head ones (kgemm_small).
 *
 * C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C, row-major, op = transpose or not.  The
 * caller splits work across threads (lib/model/gpt runs one call per pool thread on its block
 * of C, or shares one packed B: kgemm_pack / kgemm_packed) and hands each call its own
 * workspace.
 *
 * Which kernel runs where.  The build targets any x86-64 (no -march), so a binary runs on
 * whatever machine it is copied to; when the program starts, lib/model/gemm.c picks the best
 * kernel the CPU runs, each compiled alone for its instruction set (the Makefile's per-file
 * flags):
 *   avx512   AVX-512F: 6 x 64 register tiles (lib/model/gemm_avx512.c); Skylake-X and later
 *            Xeons, Ice Lake, Zen 4.  The fastest: 16-float vectors, 32 registers, masks.
 *   avx2     AVX2 + FMA: 6 x 16 tiles (lib/model/gemm_avx2.c); Haswell to Alder Lake, Zen 1-3.
 *   generic  OpenBLAS (cblas_sgemm, one thread: the pool's threads are the parallelism) on
 *            anything older; there the "packed" B is just op(B) row-major.
 * Why not OpenBLAS everywhere: on the model's products a plain BLIS-style loop nest (pack a
 * slab of B, read A in place, register tiles) runs 7% faster than OpenBLAS 0.3.21's kernels on
 * the same thread split (build/rel/bench/gemm, BENCHMARKS.md), and on attention's products, B
 * read in place, it needs no packing.  The avx2 kernel only matches OpenBLAS's Haswell kernels
 * (KILN_CPU=avx2 OPENBLAS_CORETYPE=Haswell build/rel/bench/gemm on a Zen 4: 101 against 100
 * GFLOP/s) but keeps the shared packing and attention's unpacked products.  Results differ
 * between kernels only by rounding (the order of the sums), never in shape.
 *
 * KILN_CPU=avx2 or KILN_CPU=generic caps the choice (a machine's slower paths can be tested
 * where a faster one runs; .ci/run does); KILN_CPU=avx512 is the default; any other value
 * stops the program. */
#ifndef KILN_GEMM_H
#define KILN_GEMM_H

#include <stdbool.h>
#include <stddef.h>

/* The kernel in use: "avx512", "avx2" or "generic". */
const char *kgemm_kernel(void);
/* Use that kernel from now on (tests, benchmarks): false, and no change, when the name is
 * unknown or this CPU cannot run it.  Ignores KILN_CPU.  Not while products run; workspace
 * and packed sizes taken before may change with it. */
bool kgemm_use(const char *name);

/* Floats of workspace one kgemm call needs (any shape, any kernel). */
size_t kgemm_workspace_floats(void);

/* C = alpha op(A) op(B) + beta C.  A is [M, K] (ta: [K, M]) with row stride lda, B is [K, N]
 * (tb: [N, K]) with row stride ldb.  ws: kgemm_workspace_floats() floats, 64-byte aligned. */
void kgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc, float *ws);

/* One B shared by threads that split the rows of C: op(B) [K, N] packed into
 * kgemm_packed_floats(K, N) floats (64-byte aligned), its columns [j0, j1) at a time so
 * that threads can share the packing (j0 a multiple of kgemm_panel_width()); then
 * C = alpha op(A) op(B) + beta C (+ bias [N] on every row, when not NULL) for any rows of A,
 * from the packed B. */
size_t kgemm_packed_floats(int K, int N);
int kgemm_panel_width(void);
int kgemm_tile_rows(void); /* rows of C per register tile: row splits in its multiples waste none */
void kgemm_pack(bool tb, int K, int N, const float *B, int ldb, int j0, int j1, float *Bp);
void kgemm_packed(bool ta, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *Bp, float beta, const float *bias, float *C, int ldc, float *ws);

/* C = alpha op(A) B + beta C with B [K, N] read in place, unpacked: for small products whose
 * B rows are already contiguous and stay in cache (a head's keys, values, queries).  Any N;
 * ws as for kgemm. */
void kgemm_small(bool ta, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc, float *ws);

/* Xt [cols, rows] (row stride ldt) = X^T for X [rows, cols] (row stride ldx). */
void ktranspose(int rows, int cols, const float *X, int ldx, float *Xt, int ldt);

#endif
