/* gpt — forward and backward of a GPT-2 style transformer, layer by layer, side by side.
 *
 * Layout: activations are row-major [N, width] with N = B*T rows (b major, t minor).
 * Threading: every kernel is a kpool job over rows (or columns, or attention heads), the big
 * ones handed out in guided chunks as threads come free.  The linear layers' products run on
 * lib/model/gemm (kiln's own SGEMM): B packed once and shared; weight gradients split the batch.
 * Attention runs on the same kernel (kgemm_small), by groups of 6 query rows that stop at the
 * diagonal.  Every result is independent of which thread ran what, so runs repeat bit for bit.
 * Fusions: bias in the GEMM's store (c_attn, c_fc), residual add + bias + LayerNorm (forward),
 * LayerNorm backward + residual gradient + the bias gradient of the projection that fed the
 * residual (backward), log-sum-exp + cross-entropy (forward) and softmax + CE gradient in
 * place (backward), the c_attn bias gradient inside attention backward.  Attention keeps only
 * its output and one log-sum-exp per query row; the [T, T] scores of one head live in a
 * per-thread scratch and are recomputed in backward.
 * Decoding (gpt_decode) is the same forward pass (fwd_pass: block_forward, trunk_forward) on
 * other rows: tokens of many sequences at their own positions, attention over a key/value
 * cache (gpt_kv) by the same groups of query rows, so its logits equal the training
 * forward's bit for bit where the GEMM kernel is kiln's own. */
#include "model/gpt.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "model/gemm.h"
#include "model/lora.h"
#include "core/util.h"

#define LN_EPS 1e-5f

/* The elementwise loops (the functions marked SIMD_CLONES) are compiled three times, for
 * AVX-512, AVX2 and any x86-64, and the loader picks the one this CPU runs (an ifunc): the
 * build targets any x86-64 (Makefile), where GELU's and attention's loops stay scalar (SSE2
 * cannot if-convert their selects) and a training step took 40% longer.  KILN_CPU does not
 * reach this choice (lib/model/gemm.h); tests/portable.sh runs the other copies under qemu. */
#define SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

struct gpt_acts {
    int B, T;                         /* capacity */
    float *res;                       /* [L+1, N, C] residual stream entering block l / ln_f */
    float *res2;                      /* [L, N, C] after the attention half of block l */
    float *ln1, *ln1_mean, *ln1_rstd; /* [L, N, C], [L, N], [L, N] */
    float *qkv;                       /* [L, N, 3C] */
    float *atty;                      /* [L, N, C] attention output before c_proj */
    float *att_lse;                   /* [L, B, H, T] log-sum-exp of each query row */
    float *ln2, *ln2_mean, *ln2_rstd; /* [L, N, C], [L, N], [L, N] */
    float *fch;                       /* [L, N, 4C] c_fc output (pre-GELU) */
    float *gelu;                      /* [L, N, 4C] */
    float *lnf, *lnf_mean, *lnf_rstd; /* [N, C], [N], [N] */
    float *logits;                    /* [N, V]; becomes dlogits in backward */
    float *lse;                       /* [N] */
    float *logp, *entropy;            /* [N] log p(target) and entropy of each position */
    float *weight;                    /* [N] loss weight per position: mask / count */
    int32_t *x, *y;                   /* [N] */
    float *pool_w;                    /* [N] pooling weights of the last gpt_pool */
    float *pooled;                    /* [B, C] */
    float *dres, *dc, *d3c, *d4c;     /* backward scratch [N, C], [N, C], [N, 3C], [N, 4C] */
    float *att_scratch;               /* [threads, att_scratch_floats(T, hd)] */
    float *partial;                   /* [threads, 4C] per-thread column sums */
    float *gemm_ws;                   /* [threads, kgemm_workspace_floats()] packing buffers */
    float *wgrad;                     /* [threads-1, 4C * C] weight-gradient partials */
    float *packed;                    /* [packed_floats] a block matrix packed for all threads */
    float *att_dbias;                 /* [B, 3C] c_attn bias gradient of each sequence */
    size_t packed_floats;
    bool have_logits;
    bool have_targets; /* the last forward had targets: lse, logp, entropy, weight, y hold */
};

/* ---- small helpers ------------------------------------------------------------------- */

/* 64-byte aligned floats; big buffers are 2 MiB aligned and asked to be backed by huge
 * pages, which cuts the TLB misses of GEMM packing over large activations. */
static float *alloc_floats(size_t n) {
    size_t bytes = xmul(n ? n : 1, sizeof(float));
    size_t align = bytes >= (4u << 20) ? (2u << 20) : 64;
    bytes = (bytes + align - 1) & ~(align - 1);
    void *p = aligned_alloc(align, bytes);
    if (!p) kiln_die(EX_KILN_SOFTWARE, "out of memory (%zu bytes)", bytes);
    if (align > 64) madvise(p, bytes, MADV_HUGEPAGE); /* a hint: failure is harmless */
    return p;
}

/* exp(x) for x <= 88.7, vectorisable (no libm call): 2^n * p(r), |r| <= ln2/2. */
static inline float exp_fast(float x) {
    /* Clamp with comparisons that send NaN to the bound (maxps/minps), so the integer
     * conversion below is always defined; a NaN input still comes out as NaN at the end. */
    float c = x > -87.0f ? x : -87.0f;
    c = c < 88.0f ? c : 88.0f;
    float n = (c * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = c - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) * (1 << 23)}; /* 2^n, n in [-126, 127] */
    float e = p * scale.f;
    return x == x ? e : x;
}

static inline float tanh_fast(float u) {
    return 1.0f - 2.0f / (exp_fast(2.0f * u) + 1.0f);
}

#define GELU_S 0.7978845608f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* ---- parallel GEMM ------------------------------------------------------------------- */

/* C = op(A) op(B) + beta C, row-major; with `bias`, C's rows start as bias.  Large jobs
 * pack B once, the threads sharing the work (gemm_pack_task), then take chunks of C's rows
 * as they come free (gemm_rows_task); small ones split C statically, each thread packing
 * its own B (gemm_task). */
typedef struct gemm_job {
    bool ta, tb;
    int M, N, K;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    float beta;
    float *C;
    int ldc;
    const float *bias;
    float *ws, *packed;
    size_t chunk;
    atomic_size_t next;
} gemm_job;

/* Rows of C a thread, in kgemm tiles, from which B is packed once and shared. */
#define GEMM_SHARED_TILES 128

/* Thread tid's kgemm workspace. */
static float *gemm_ws_of(float *ws, int tid) {
    return ws + (size_t)tid * kgemm_workspace_floats();
}

static void fill_bias(float *C, int ldc, const float *bias, int rows, int cols) {
    for (int i = 0; i < rows; i++) memcpy(C + (size_t)i * ldc, bias, sizeof(float) * cols);
}

static void gemm_task(void *ctx, int tid, int nt) {
    const gemm_job *j = ctx;
    const float *A = j->A, *B = j->B;
    float *C = j->C;
    int M = j->M, N = j->N;
    size_t lo, hi;
    bool split_rows = M >= 64 * nt || M >= N; /* rows split better (measured) */
    if (split_rows) {                         /* split rows of C */
        kpool_range((size_t)M, 16, tid, nt, &lo, &hi);
        A += j->ta ? lo : lo * (size_t)j->lda;
        C += lo * (size_t)j->ldc;
        M = (int)(hi - lo);
    } else { /* split columns of C */
        kpool_range((size_t)N, 16, tid, nt, &lo, &hi);
        B += j->tb ? lo * (size_t)j->ldb : lo;
        C += lo;
        N = (int)(hi - lo);
    }
    if (M == 0 || N == 0) return;
    float beta = j->beta;
    if (j->bias) {
        fill_bias(C, j->ldc, j->bias + (split_rows ? 0 : lo), M, N);
        beta = 1.0f;
    }
    kgemm(j->ta, j->tb, M, N, j->K, 1.0f, A, j->lda, B, j->ldb, beta, C, j->ldc,
          gemm_ws_of(j->ws, tid));
}

static void gemm_pack_task(void *ctx, int tid, int nt) {
    const gemm_job *j = ctx;
    size_t lo, hi;
    kpool_range((size_t)j->N, (size_t)kgemm_panel_width(), tid, nt, &lo, &hi);
    kgemm_pack(j->tb, j->K, j->N, j->B, j->ldb, (int)lo, (int)hi, j->packed);
}

static void gemm_rows_task(void *ctx, int tid, int nt) {
    gemm_job *j = ctx;
    size_t lo, hi;
    while (kpool_next(&j->next, (size_t)j->M, j->chunk, nt, &lo, &hi)) {
        const float *A = j->A + (j->ta ? lo : lo * (size_t)j->lda);
        kgemm_packed(j->ta, (int)(hi - lo), j->N, j->K, 1.0f, A, j->lda, j->packed, j->beta,
                     j->bias, j->C + lo * (size_t)j->ldc, j->ldc, gemm_ws_of(j->ws, tid));
    }
}

/* The shared-B path: pack B once, the threads sharing the packing, then hand out rows of C,
 * guided, down to chunks of about GEMM_CHUNK_FLOPS (whole tiles).  Each row of C is computed
 * by one thread in one fixed order, so results never depend on who took which chunk. */
#define GEMM_CHUNK_FLOPS 25e6 /* ~0.2 ms on one Zen 4 core: the most a thread waits at the end */

static void gemm_shared(kpool *pool, gemm_job *j) {
    size_t tile = (size_t)kgemm_tile_rows(),
           rows = (size_t)(GEMM_CHUNK_FLOPS / (2.0 * j->N * j->K));
    j->chunk = rows > tile ? rows / tile * tile : tile;
    atomic_store_explicit(&j->next, 0, memory_order_relaxed);
    kpool_run(pool, gemm_pack_task, j);
    kpool_run(pool, gemm_rows_task, j);
}

/* A GEMM's scratch: each pool thread's kgemm workspace, and room for one packed B.  The
 * training pass uses its activations' (acts_scratch), a decoder its own (gpt_kv). */
typedef struct gemm_scratch {
    float *ws, *packed;
    size_t packed_floats;
} gemm_scratch;

static void gemm_on(kpool *pool, const gemm_scratch *s, bool ta, bool tb, int M, int N, int K,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                    const float *bias) {
    gemm_job j = {.ta = ta,
                  .tb = tb,
                  .M = M,
                  .N = N,
                  .K = K,
                  .A = A,
                  .lda = lda,
                  .B = B,
                  .ldb = ldb,
                  .beta = beta,
                  .C = C,
                  .ldc = ldc,
                  .bias = bias,
                  .ws = s->ws,
                  .packed = s->packed};
    int nt = kpool_size(pool);
    if (nt > 1 && (size_t)M >= (size_t)nt * GEMM_SHARED_TILES * kgemm_tile_rows() &&
        kgemm_packed_floats(K, N) <= s->packed_floats) {
        gemm_shared(pool, &j);
        return;
    }
    kpool_run(pool, gemm_task, &j);
}

static gemm_scratch acts_scratch(const gpt *m) {
    return (gemm_scratch){m->acts->gemm_ws, m->acts->packed, m->acts->packed_floats};
}

static void gemm(gpt *m, bool ta, bool tb, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const float *bias) {
    gemm_scratch s = acts_scratch(m);
    gemm_on(m->pool, &s, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}

/* C[M, N] += A^T B for A [K, M] and B [K, N] with K the long batch dimension: a weight
 * gradient.  Each thread takes a slice of K and sums into its own partial (thread 0 straight
 * into C), then the partials are added.  Split by rows of C instead, each thread would have
 * few rows to spread the packing of its whole [K, N] B over: 3-8% slower on 2 threads
 * (measured).  The slices are fixed, not handed out as threads come free, so that the sum's
 * order and the trained weights do not depend on timing.  A partial is as big as the weight,
 * so past WGRAD_SPLIT_MAX threads the rows are split as usual. */
#define WGRAD_SPLIT_MAX 4

typedef struct wgrad_job {
    int M, N, K;
    const float *A, *B;
    float *C, *partials, *ws;
} wgrad_job;

static void wgrad_task(void *ctx, int tid, int nt) {
    const wgrad_job *j = ctx;
    size_t lo, hi;
    kpool_range((size_t)j->K, 64, tid, nt, &lo, &hi);
    float *C = tid ? j->partials + (size_t)(tid - 1) * j->M * j->N : j->C;
    kgemm(true, false, j->M, j->N, (int)(hi - lo), 1.0f, j->A + lo * j->M, j->M, j->B + lo * j->N,
          j->N, tid ? 0.0f : 1.0f, C, j->N, gemm_ws_of(j->ws, tid));
}

static void wgrad_sum_task(void *ctx, int tid, int nt) {
    const wgrad_job *j = ctx;
    size_t lo, hi, size = (size_t)j->M * j->N;
    kpool_range(size, 16, tid, nt, &lo, &hi);
    for (int t = 1; t < nt; t++) {
        const float *p = j->partials + (size_t)(t - 1) * size;
        for (size_t i = lo; i < hi; i++) j->C[i] += p[i];
    }
}

static void wgrad(gpt *m, int M, int N, int K, const float *A, const float *B, float *C) {
    int nt = kpool_size(m->pool);
    size_t width = (size_t)m->cfg.n_embd;
    if (nt == 1 || nt > WGRAD_SPLIT_MAX || K < 256 * nt || (size_t)M * N > 4 * width * width) {
        gemm(m, true, false, M, N, K, A, M, B, N, 1.0f, C, N, NULL);
        return;
    }
    wgrad_job j = {M, N, K, A, B, C, m->acts->wgrad, m->acts->gemm_ws};
    kpool_run(m->pool, wgrad_task, &j);
    kpool_run(m->pool, wgrad_sum_task, &j);
}

/* Whether the tensor whose gradient starts at g is frozen (fine-tuning). */
static bool frozen_at(const gpt *m, const float *g) {
    if (!m->frozen) return false;
    size_t off = (size_t)(g - m->grads);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].offset == off) return m->frozen[i];
    return false;
}

/* dx[N, in] = dy W^T;  dW[in, out] += x^T dy unless W is frozen.  (Bias gradients are
 * fused elsewhere.) */
static void linear_bwd(gpt *m, const float *x, const float *W, const float *dy, float *dx,
                       float *dW, int N, int in, int out) {
    gemm(m, false, true, N, in, out, dy, out, W, out, 0.0f, dx, in, NULL);
    if (!frozen_at(m, dW)) wgrad(m, in, out, N, x, dy, dW);
}

/* The lowest block whose backward is needed: one with a trainable tensor or adapter, or
 * -1 when the embeddings train (the whole trunk, and the encoder, run). */
static int lowest_trained_layer(const gpt *m) {
    if (!m->frozen) return -1;
    int low = m->cfg.n_layer;
    for (int i = 0; i < m->n_tensors; i++) {
        if (m->frozen[i]) continue;
        const char *name = m->tensors[i].name;
        if (!strncmp(name, "transformer.wte.", 16) || !strncmp(name, "transformer.wpe.", 16))
            return -1;
        if (!strncmp(name, "transformer.h.", 14) && atoi(name + 14) < low) low = atoi(name + 14);
    }
    if (m->lora && m->lora->cfg.targets) low = 0; /* adapters sit in every block */
    return low;
}

/* Sum the per-thread partial column sums [nt][n] into dst[n]. */
static void reduce_partials(gpt *m, size_t stride, size_t off, int n, float *dst) {
    int nt = kpool_size(m->pool);
    for (int t = 0; t < nt; t++) {
        const float *p = m->acts->partial + (size_t)t * stride + off;
        for (int i = 0; i < n; i++) dst[i] += p[i];
    }
}

/* ---- encoder: res0 = wte[x] + wpe[t] --------------------------------------------------- */

typedef struct enc_job {
    gpt *m;
    float *out;
    const float *dout;
    /* forward: N rows of tokens tok at positions pos (NULL: B sequences of T, t = n mod T) */
    const int32_t *tok;
    const int *pos;
    int N;
} enc_job;

static void encoder_fwd_task(void *ctx, int tid, int nt) {
    enc_job *j = ctx;
    int C = j->m->cfg.n_embd, T = j->m->T;
    size_t lo, hi;
    kpool_range((size_t)j->N, 1, tid, nt, &lo, &hi);
    for (size_t n = lo; n < hi; n++) {
        const float *te = j->m->p.wte + (size_t)j->tok[n] * C;
        const float *pe = j->m->p.wpe + (j->pos ? (size_t)j->pos[n] : n % (size_t)T) * C;
        float *o = j->out + n * C;
        for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
}

/* Each thread owns a range of channels, so scattered rows never collide. */
static void encoder_bwd_task(void *ctx, int tid, int nt) {
    enc_job *j = ctx;
    gpt *m = j->m;
    int C = m->cfg.n_embd, T = m->T, N = m->B * T;
    size_t lo, hi;
    kpool_range((size_t)C, 16, tid, nt, &lo, &hi);
    for (int n = 0; n < N; n++) {
        const float *d = j->dout + (size_t)n * C;
        float *te = m->g.wte + (size_t)m->acts->x[n] * C;
        float *pe = m->g.wpe + (size_t)(n % T) * C;
        for (size_t c = lo; c < hi; c++) {
            te[c] += d[c];
            pe[c] += d[c];
        }
    }
}

/* ---- residual + LayerNorm -------------------------------------------------------------- */

/* res_out = res_in + delta + bias (when delta), then out = LN(res_out) w + b. */
typedef struct ln_job {
    int N, C;
    const float *res_in, *delta, *bias;
    float *res_out;
    const float *w, *b;
    float *out, *mean, *rstd;
    atomic_size_t next; /* forward: rows are handed out as threads come free */
} ln_job;

SIMD_CLONES static void ln_fwd_rows(const ln_job *j, size_t lo, size_t hi) {
    int C = j->C;
    for (size_t n = lo; n < hi; n++) {
        const float *x = j->res_in + n * C;
        if (j->delta) {
            const float *d = j->delta + n * C;
            float *r = j->res_out + n * C;
            for (int c = 0; c < C; c++) r[c] = x[c] + d[c] + j->bias[c];
            x = r;
        }
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; c++) sum += x[c];
        float mu = sum / C, var = 0.0f;
#pragma omp simd reduction(+ : var)
        for (int c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
        float rs = 1.0f / sqrtf(var / C + LN_EPS);
        float *o = j->out + n * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - mu) * rs * j->w[c] + j->b[c];
        j->mean[n] = mu;
        j->rstd[n] = rs;
    }
}

static void ln_fwd_task(void *ctx, int tid, int nt) {
    ln_job *j = ctx;
    size_t lo, hi;
    (void)tid;
    while (kpool_next(&j->next, (size_t)j->N, 16, nt, &lo, &hi)) ln_fwd_rows(j, lo, hi);
}

static void residual_ln_fwd(kpool *pool, int N, int C, const float *res_in, const float *delta,
                            const float *bias, float *res_out, const float *w, const float *b,
                            float *out, float *mean, float *rstd) {
    ln_job j = {N, C, res_in, delta, bias, res_out, w, b, out, mean, rstd, 0};
    kpool_run(pool, ln_fwd_task, &j);
}

/* dres (+)= LN backward of dout; partials: dw, db and the column sums of the new dres
 * (the gradient of the bias that was added into this residual). */
typedef struct ln_bwd_job {
    gpt *m;
    int N, C;
    const float *dout, *x, *mean, *rstd, *w;
    float *dres;
    bool accumulate;
} ln_bwd_job;

SIMD_CLONES static void ln_bwd_task(void *ctx, int tid, int nt) {
    const ln_bwd_job *j = ctx;
    int C = j->C;
    float *part = j->m->acts->partial + (size_t)tid * 4 * C;
    float *dw = part, *db = part + C, *dsum = part + 2 * C;
    memset(part, 0, sizeof(float) * 3 * C);
    size_t lo, hi;
    kpool_range((size_t)j->N, 1, tid, nt, &lo, &hi);
    for (size_t n = lo; n < hi; n++) {
        const float *dy = j->dout + n * C, *x = j->x + n * C;
        float mu = j->mean[n], rs = j->rstd[n];
        float *dx = j->dres + n * C;
        float sdx = 0.0f, sdxx = 0.0f;
#pragma omp simd reduction(+ : sdx, sdxx)
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - mu) * rs, dxh = dy[c] * j->w[c];
            sdx += dxh;
            sdxx += dxh * xh;
        }
        sdx /= C;
        sdxx /= C;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - mu) * rs, dxh = dy[c] * j->w[c];
            float g = rs * (dxh - sdx - xh * sdxx);
            float r = j->accumulate ? dx[c] + g : g;
            dx[c] = r;
            dw[c] += dy[c] * xh;
            db[c] += dy[c];
            dsum[c] += r;
        }
    }
}

static void residual_ln_bwd(gpt *m, int N, const float *dout, const float *x, const float *mean,
                            const float *rstd, const float *w, float *dw, float *db, float *dres,
                            bool accumulate, float *dbias_in) {
    int C = m->cfg.n_embd;
    ln_bwd_job j = {m, N, C, dout, x, mean, rstd, w, dres, accumulate};
    kpool_run(m->pool, ln_bwd_task, &j);
    reduce_partials(m, 4 * (size_t)C, 0, C, dw);
    reduce_partials(m, 4 * (size_t)C, C, C, db);
    if (dbias_in) reduce_partials(m, 4 * (size_t)C, 2 * (size_t)C, C, dbias_in);
}

/* ---- GELU (c_fc's bias is added by its GEMM) -------------------------------------------- */

typedef struct gelu_job {
    gpt *m;
    int N, W;
    float *pre;         /* [N, W] */
    float *out;         /* forward: GELU(pre); backward: d(out) in, d(pre) out */
    atomic_size_t next; /* forward: rows are handed out as threads come free */
} gelu_job;

SIMD_CLONES static void gelu_fwd_task(void *ctx, int tid, int nt) {
    gelu_job *j = ctx;
    size_t lo, hi;
    (void)tid;
    while (kpool_next(&j->next, (size_t)j->N, 16, nt, &lo, &hi))
        for (size_t n = lo; n < hi; n++) {
            const float *pre = j->pre + n * j->W;
            float *out = j->out + n * j->W;
#pragma omp simd
            for (int i = 0; i < j->W; i++) {
                float x = pre[i];
                float t = tanh_fast(GELU_S * (x + GELU_C * x * x * x));
                out[i] = 0.5f * x * (1.0f + t);
            }
        }
}

SIMD_CLONES static void gelu_bwd_task(void *ctx, int tid, int nt) {
    const gelu_job *j = ctx;
    float *dbias = j->m->acts->partial + (size_t)tid * 4 * j->m->cfg.n_embd;
    memset(dbias, 0, sizeof(float) * j->W);
    size_t lo, hi;
    kpool_range((size_t)j->N, 1, tid, nt, &lo, &hi);
    for (size_t n = lo; n < hi; n++) {
        const float *pre = j->pre + n * j->W;
        float *d = j->out + n * j->W;
#pragma omp simd
        for (int i = 0; i < j->W; i++) {
            float x = pre[i];
            float t = tanh_fast(GELU_S * (x + GELU_C * x * x * x));
            float dt = GELU_S * (1.0f + 3.0f * GELU_C * x * x) * (1.0f - t * t);
            float g = d[i] * (0.5f * (1.0f + t) + 0.5f * x * dt);
            d[i] = g;
            dbias[i] += g;
        }
    }
}

/* ---- attention ------------------------------------------------------------------------ */

typedef struct att_job {
    gpt *m;
    const float *qkv;   /* [N, 3C] */
    float *out;         /* forward: y [N, C]; backward: dqkv [N, 3C] */
    float *lse;         /* [B, H, T] */
    const float *dy;    /* backward: [N, C] */
    atomic_size_t next; /* the next (batch, head) pair to take */
} att_job;

/* The shape of one attention job, shared by forward and backward. */
typedef struct att_dims {
    int T, C, H, hd, ld; /* ld: row stride of qkv (3C) */
    float scale;
} att_dims;

static att_dims att_dims_of(const gpt *m) {
    att_dims d = {m->T, m->cfg.n_embd, m->cfg.n_head, 0, 3 * m->cfg.n_embd, 0};
    d.hd = d.C / d.H;
    d.scale = 1.0f / sqrtf((float)d.hd);
    return d;
}

/* Attention works on groups of ATT_ROWS query rows (kgemm's register tile is 6 rows): a
 * group's products stop at its last row's diagonal, so the causal mask costs at most 5
 * extra columns per row instead of a block's worth.  Row i of P and dS holds zeros in
 * (i, i + ATT_ROWS): the products that read a whole group's columns, or a group of key
 * columns down the rows, see zeros where the future would be. */
#define ATT_ROWS 6

/* A thread's attention scratch: P (scores, then probabilities) and dS [T, T], and the
 * head's keys and values transposed, [hd, T] each. */
static size_t att_scratch_floats(int T, int hd) {
    return 2 * (size_t)T * T + 2 * (size_t)hd * T;
}

/* max(x[0:n]), n >= 1, sixteen lanes at a time: an elementwise max the compilers vectorise
 * (a max reduction loop they leave scalar, or refuse). */
SIMD_CLONES static float max_of(const float *x, int n) {
    float lane[16];
    for (int u = 0; u < 16; u++) lane[u] = x[0];
    int k = 0;
    for (; k + 16 <= n; k += 16)
#pragma omp simd
        for (int u = 0; u < 16; u++) lane[u] = x[k + u] > lane[u] ? x[k + u] : lane[u];
    for (; k < n; k++) lane[0] = x[k] > lane[0] ? x[k] : lane[0];
    float mx = lane[0];
    for (int u = 1; u < 16; u++) mx = lane[u] > mx ? lane[u] : mx;
    return mx;
}

/* Columns [0, end) of the group of rows starting at g: through its last row's diagonal. */
static int att_group_end(int g, int T) {
    return g + ATT_ROWS < T ? g + ATT_ROWS : T;
}

static int att_group_rows(int g, int T) {
    return T - g < ATT_ROWS ? T - g : ATT_ROWS;
}

/* Zero row i's future that a group's products read: columns (i, i + ATT_ROWS). */
static void zero_future(float *row, int i, int T) {
    for (int k = i + 1; k < i + ATT_ROWS && k < T; k++) row[k] = 0.0f;
}

/* S[g rows, 0:end) = scale Q Kt for one group: the scores, or with dY and Vt, dP. */
static void att_group_scores(const float *Q, int ldq, const float *Kt, int T, int hd, float scale,
                             int g, float *S, float *ws) {
    kgemm_small(false, att_group_rows(g, T), att_group_end(g, T), hd, scale, Q + (size_t)g * ldq,
                ldq, Kt, T, 0.0f, S + (size_t)g * T, T, ws);
}

/* One group of up to ATT_ROWS consecutive query rows of one head: row r is at position
 * q0 + r and attends to the keys at positions 0 .. q0 + r.  Kt holds the keys transposed,
 * [hd, q0 + rows] at least; V the values, [q0 + rows, hd].  The training pass runs it over a
 * sequence's own keys, gpt_decode over a cache: one copy of the arithmetic for both. */
typedef struct att_group {
    const float *Q, *Kt, *V; /* Q: the group's first query row */
    int ldq, ldk, ldv;
    float *Y; /* the group's first output row */
    int ldy;
    int q0, rows;
    float *lse; /* the rows' log-sum-exp, or NULL */
} att_group;

/* Scores, softmax and P V for one group; S: rows x ldS scratch (ldS >= q0 + rows). */
SIMD_CLONES static void att_fwd_group(const att_dims *d, const att_group *g, float *S, int ldS,
                                      float *ws) {
    int end = g->q0 + g->rows, hd = d->hd;
    float inv[ATT_ROWS];
    kgemm_small(false, g->rows, end, hd, d->scale, g->Q, g->ldq, g->Kt, g->ldk, 0.0f, S, ldS, ws);
    for (int r = 0; r < g->rows; r++) {
        int i = g->q0 + r;
        float *row = S + (size_t)r * ldS, mx = max_of(row, i + 1), sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int k = 0; k <= i; k++) {
            row[k] = exp_fast(row[k] - mx);
            sum += row[k];
        }
        zero_future(row, i, end);
        inv[r] = 1.0f / sum;
        if (g->lse) g->lse[r] = mx + logf(sum);
    }
    /* Y = P V with P's rows normalised afterwards: hd products a row, not i + 1 */
    kgemm_small(false, g->rows, hd, end, 1.0f, S, ldS, g->V, g->ldv, 0.0f, g->Y, g->ldy, ws);
    for (int r = 0; r < g->rows; r++)
        for (int k = 0; k < hd; k++) g->Y[(size_t)r * g->ldy + k] *= inv[r];
}

/* One (batch, head) pair of the forward: scores, softmax and P V by groups of rows. */
SIMD_CLONES static void att_fwd_head(const att_job *j, const att_dims *d, size_t bh, float *S,
                                     float *Kt, float *ws) {
    int T = d->T, C = d->C, hd = d->hd, ld = d->ld;
    size_t b = bh / d->H, h = bh % d->H;
    const float *Q = j->qkv + b * T * ld + h * hd, *K = Q + C, *V = Q + 2 * C;
    float *lse = j->lse + bh * T, *Y = j->out + b * T * C + h * hd;
    ktranspose(T, hd, K, ld, Kt, T);
    for (int g = 0; g < T; g += ATT_ROWS) {
        att_group grp = {.Q = Q + (size_t)g * ld,
                         .Kt = Kt,
                         .V = V,
                         .ldq = ld,
                         .ldk = T,
                         .ldv = ld,
                         .Y = Y + (size_t)g * C,
                         .ldy = C,
                         .q0 = g,
                         .rows = att_group_rows(g, T),
                         .lse = lse + g};
        att_fwd_group(d, &grp, S + (size_t)g * T, T, ws);
    }
}

static void att_fwd_task(void *ctx, int tid, int nt) {
    att_job *j = ctx;
    att_dims d = att_dims_of(j->m);
    float *S = j->m->acts->att_scratch + (size_t)tid * att_scratch_floats(d.T, d.hd);
    float *Kt = S + 2 * (size_t)d.T * d.T, *ws = gemm_ws_of(j->m->acts->gemm_ws, tid);
    size_t lo, hi;
    while (kpool_next(&j->next, (size_t)j->m->B * d.H, 1, nt, &lo, &hi))
        for (size_t bh = lo; bh < hi; bh++) att_fwd_head(j, &d, bh, S, Kt, ws);
}

/* dP = dY V^T and P recomputed from the scores and the saved log-sum-exp, one group of rows
 * at a time; dS = P (dP - rowsum(P dP)) scale, in place of dP. */
SIMD_CLONES static void att_bwd_probs(const float *Q, const float *dY, int C, const float *Kt,
                                      const float *Vt, const float *lse, const att_dims *d,
                                      float *P, float *dS, float *ws) {
    int T = d->T;
    for (int g = 0; g < T; g += ATT_ROWS) {
        att_group_scores(Q, d->ld, Kt, T, d->hd, d->scale, g, P, ws);
        att_group_scores(dY, C, Vt, T, d->hd, 1.0f, g, dS, ws);
        for (int i = g; i < g + att_group_rows(g, T); i++) {
            float *p = P + (size_t)i * T, *ds = dS + (size_t)i * T, l = lse[i], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int k = 0; k <= i; k++) {
                p[k] = exp_fast(p[k] - l);
                dot += p[k] * ds[k];
            }
#pragma omp simd
            for (int k = 0; k <= i; k++) ds[k] = p[k] * (ds[k] - dot) * d->scale;
            zero_future(p, i, T);
            zero_future(ds, i, T);
        }
    }
}

/* One (batch, head) pair of the backward: dq, dk, dv into dqkv and the pair's share of c_attn's
 * bias gradient. */
SIMD_CLONES static void att_bwd_head(const att_job *j, const att_dims *d, size_t bh, float *P,
                                     float *ws) {
    int T = d->T, C = d->C, hd = d->hd, ld = d->ld;
    size_t b = bh / d->H, h = bh % d->H;
    float *dS = P + (size_t)T * T, *Kt = dS + (size_t)T * T, *Vt = Kt + (size_t)hd * T;
    const float *Q = j->qkv + b * T * ld + h * hd, *K = Q + C, *V = Q + 2 * C;
    const float *dY = j->dy + b * T * C + h * hd;
    float *dQ = j->out + b * T * ld + h * hd, *dK = dQ + C, *dV = dQ + 2 * C;
    ktranspose(T, hd, K, ld, Kt, T);
    ktranspose(T, hd, V, ld, Vt, T);
    att_bwd_probs(Q, dY, C, Kt, Vt, j->lse + bh * T, d, P, dS, ws);
    for (int g = 0; g < T; g += ATT_ROWS) {
        int rows = att_group_rows(g, T), end = att_group_end(g, T);
        /* dQ[g] = dS[g, :end] K[:end];  dK[g] = dS[g:, g]^T Q[g:];  dV[g] = P[g:, g]^T dY[g:] */
        kgemm_small(false, rows, hd, end, 1.0f, dS + (size_t)g * T, T, K, ld, 0.0f,
                    dQ + (size_t)g * ld, ld, ws);
        kgemm_small(true, rows, hd, T - g, 1.0f, dS + (size_t)g * T + g, T, Q + (size_t)g * ld, ld,
                    0.0f, dK + (size_t)g * ld, ld, ws);
        kgemm_small(true, rows, hd, T - g, 1.0f, P + (size_t)g * T + g, T, dY + (size_t)g * C, C,
                    0.0f, dV + (size_t)g * ld, ld, ws);
    }
    /* c_attn's bias gradient: this head's column sums of dq, dk, dv, kept per sequence
     * (att_dbias [B, 3C]) and added in order afterwards, whichever thread ran which */
    float *dbias = j->m->acts->att_dbias + b * 3 * C + h * hd;
    for (int part = 0; part < 3; part++) memset(dbias + part * C, 0, sizeof(float) * hd);
    for (int i = 0; i < T; i++)
        for (int part = 0; part < 3; part++) {
            const float *row = dQ + (size_t)i * ld + part * C;
            float *acc = dbias + part * C;
            for (int k = 0; k < hd; k++) acc[k] += row[k];
        }
}

static void att_bwd_task(void *ctx, int tid, int nt) {
    att_job *j = ctx;
    att_dims d = att_dims_of(j->m);
    float *P = j->m->acts->att_scratch + (size_t)tid * att_scratch_floats(d.T, d.hd);
    float *ws = gemm_ws_of(j->m->acts->gemm_ws, tid);
    size_t lo, hi;
    while (kpool_next(&j->next, (size_t)j->m->B * d.H, 1, nt, &lo, &hi))
        for (size_t bh = lo; bh < hi; bh++) att_bwd_head(j, &d, bh, P, ws);
}

/* ---- cross-entropy ---------------------------------------------------------------------- */

typedef struct ce_job {
    gpt *m;
    float scale;    /* backward */
    double *loss;   /* [threads] forward partial sums */
    const float *w; /* backward: weights of log p(target) per position, or NULL (the loss) */
} ce_job;

SIMD_CLONES static void ce_fwd_task(void *ctx, int tid, int nt) {
    ce_job *j = ctx;
    gpt_acts *a = j->m->acts;
    int V = j->m->cfg.vocab, N = j->m->B * j->m->T;
    size_t lo, hi;
    kpool_range((size_t)N, 1, tid, nt, &lo, &hi);
    double loss = 0.0;
    for (size_t n = lo; n < hi; n++) {
        const float *row = a->logits + n * V;
        float mx = -INFINITY, sum = 0.0f, dot = 0.0f;
        for (int v = 0; v < V; v++) mx = row[v] > mx ? row[v] : mx;
#pragma omp simd reduction(+ : sum, dot)
        for (int v = 0; v < V; v++) {
            float d = row[v] - mx, e = exp_fast(d);
            sum += e;
            dot += e * d;
        }
        a->lse[n] = mx + logf(sum);
        /* -sum p log p with p = e / sum and log p = d - log(sum) */
        a->entropy[n] = logf(sum) - dot / sum;
        a->logp[n] = row[a->y[n]] - a->lse[n];
        if (a->weight[n] != 0.0f) loss -= a->weight[n] * a->logp[n];
    }
    j->loss[tid] = loss;
}

/* dlogits = scale * weight * (softmax - onehot), in place over the logits; with weights w of
 * log p(target), whose gradient is w (onehot - softmax), -w stands in for scale * weight. */
SIMD_CLONES static void ce_bwd_task(void *ctx, int tid, int nt) {
    ce_job *j = ctx;
    gpt_acts *a = j->m->acts;
    int V = j->m->cfg.vocab, N = j->m->B * j->m->T;
    size_t lo, hi;
    kpool_range((size_t)N, 1, tid, nt, &lo, &hi);
    for (size_t n = lo; n < hi; n++) {
        float *row = a->logits + n * V, l = a->lse[n];
        float w = j->w ? -j->w[n] : j->scale * a->weight[n];
        if (w == 0.0f) {
            memset(row, 0, sizeof(float) * V);
            continue;
        }
#pragma omp simd
        for (int v = 0; v < V; v++) row[v] = w * exp_fast(row[v] - l);
        row[a->y[n]] -= w;
    }
}

/* ---- model ------------------------------------------------------------------------------ */

const char *gpt_config_check(const gpt_config *c) {
    if (c->n_layer < 1 || c->n_layer > 80) return "layers must be 1..80";
    if (c->n_embd < 1 || c->n_embd > 16384) return "width must be 1..16384";
    if (c->n_head < 1 || c->n_embd % c->n_head) return "width must be a multiple of heads";
    if (c->n_ctx < 1 || c->n_ctx > 65536) return "context must be 1..65536";
    if (c->vocab < 1 || c->vocab > (1 << 24)) return "vocabulary must be 1..2^24";
    return NULL;
}

/* The tensor table in buffer order; fills `views` when base is given. */
static int layout(const gpt_config *cfg, float *base, gpt_views *views, gpt_tensor *out,
                  size_t *total) {
    size_t L = cfg->n_layer, C = cfg->n_embd, V = cfg->vocab, P = cfg->n_ctx;
    struct {
        float **view;
        size_t per_layer, layers; /* numel of one HF tensor, how many stacked */
        const char *fmt;
        int ndim;
        size_t d0, d1;
    } spec[] = {
        {&views->wte, V * C, 1, "transformer.wte.weight", 2, V, C},
        {&views->wpe, P * C, 1, "transformer.wpe.weight", 2, P, C},
        {&views->ln1w, C, L, "transformer.h.%d.ln_1.weight", 1, C, 0},
        {&views->ln1b, C, L, "transformer.h.%d.ln_1.bias", 1, C, 0},
        {&views->qkvw, C * 3 * C, L, "transformer.h.%d.attn.c_attn.weight", 2, C, 3 * C},
        {&views->qkvb, 3 * C, L, "transformer.h.%d.attn.c_attn.bias", 1, 3 * C, 0},
        {&views->attprojw, C * C, L, "transformer.h.%d.attn.c_proj.weight", 2, C, C},
        {&views->attprojb, C, L, "transformer.h.%d.attn.c_proj.bias", 1, C, 0},
        {&views->ln2w, C, L, "transformer.h.%d.ln_2.weight", 1, C, 0},
        {&views->ln2b, C, L, "transformer.h.%d.ln_2.bias", 1, C, 0},
        {&views->fcw, C * 4 * C, L, "transformer.h.%d.mlp.c_fc.weight", 2, C, 4 * C},
        {&views->fcb, 4 * C, L, "transformer.h.%d.mlp.c_fc.bias", 1, 4 * C, 0},
        {&views->fcprojw, 4 * C * C, L, "transformer.h.%d.mlp.c_proj.weight", 2, 4 * C, C},
        {&views->fcprojb, C, L, "transformer.h.%d.mlp.c_proj.bias", 1, C, 0},
        {&views->lnfw, C, 1, "transformer.ln_f.weight", 1, C, 0},
        {&views->lnfb, C, 1, "transformer.ln_f.bias", 1, C, 0},
        {&views->scorew, C, cfg->head == GPT_HEAD_SCALAR, "score.weight", 2, 1, C},
    };
    size_t off = 0;
    int count = 0;
    for (size_t s = 0; s < sizeof spec / sizeof spec[0]; s++) {
        if (base) *spec[s].view = spec[s].layers ? base + off : NULL;
        for (size_t l = 0; l < spec[s].layers; l++) {
            if (out) {
                gpt_tensor *t = &out[count];
                snprintf(t->name, sizeof t->name, spec[s].fmt, (int)l);
                t->offset = off;
                t->numel = spec[s].per_layer;
                t->ndim = spec[s].ndim;
                t->shape[0] = spec[s].d0;
                t->shape[1] = spec[s].d1;
                t->decay = spec[s].ndim == 2;
            }
            off += spec[s].per_layer;
            count++;
        }
    }
    if (total) *total = off;
    return count;
}

/* splitmix64 + Box-Muller: deterministic normal numbers for initialisation. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_normal(float *x, size_t n, float std, uint64_t *state) {
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((splitmix64(state) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (splitmix64(state) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(std * r * cos(2.0 * M_PI * u2));
        if (i + 1 < n) x[i + 1] = (float)(std * r * sin(2.0 * M_PI * u2));
    }
}

gpt *gpt_create(const gpt_config *cfg, kpool *pool, uint64_t seed) {
    const char *bad = gpt_config_check(cfg);
    if (bad) kiln_die(EX_KILN_USAGE, "model config: %s", bad);
    openblas_set_num_threads(1);
    gpt *m = xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->pool = pool;
    m->n_tensors = layout(cfg, NULL, &m->p, NULL, &m->n_params);
    m->tensors = xcalloc((size_t)m->n_tensors, sizeof *m->tensors);
    m->params = alloc_floats(m->n_params);
    m->grads = alloc_floats(m->n_params);
    layout(cfg, m->params, &m->p, m->tensors, NULL);
    layout(cfg, m->grads, &m->g, NULL, NULL);
    memset(m->params, 0, sizeof(float) * m->n_params);
    memset(m->grads, 0, sizeof(float) * m->n_params);

    uint64_t state = seed ^ 0x6b696c6e2d677074ull; /* "kiln-gpt" */
    float resid_std = 0.02f / sqrtf(2.0f * cfg->n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        float *x = m->params + t->offset;
        if (strstr(t->name, "ln_")) {
            if (strstr(t->name, ".weight"))
                for (size_t k = 0; k < t->numel; k++) x[k] = 1.0f;
        } else if (t->ndim == 2) {
            bool resid = strstr(t->name, "c_proj.weight") != NULL;
            fill_normal(x, t->numel, resid ? resid_std : 0.02f, &state);
        }
    }
    return m;
}

gpt_tensor *gpt_tensor_table(const gpt_config *cfg, int *n) {
    gpt_views unused;
    *n = layout(cfg, NULL, &unused, NULL, NULL);
    gpt_tensor *t = xcalloc((size_t)*n, sizeof *t);
    layout(cfg, NULL, &unused, t, NULL);
    return t;
}

static void free_acts(gpt_acts *a) {
    if (!a) return;
    float **bufs[] = {&a->res,      &a->res2,   &a->ln1,         &a->ln1_mean, &a->ln1_rstd,
                      &a->qkv,      &a->atty,   &a->att_lse,     &a->ln2,      &a->ln2_mean,
                      &a->ln2_rstd, &a->fch,    &a->gelu,        &a->lnf,      &a->lnf_mean,
                      &a->lnf_rstd, &a->logits, &a->lse,         &a->logp,     &a->entropy,
                      &a->weight,   &a->pool_w, &a->pooled,      &a->dres,     &a->dc,
                      &a->d3c,      &a->d4c,    &a->att_scratch, &a->partial,  &a->gemm_ws,
                      &a->wgrad,    &a->packed, &a->att_dbias};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(*bufs[i]);
    free(a->x);
    free(a->y);
    free(a);
}

void gpt_free(gpt *m) {
    if (!m) return;
    free_acts(m->acts);
    free(m->params);
    free(m->grads);
    free(m->tensors);
    free(m);
}

int gpt_find_tensor(const gpt *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

void gpt_zero_grad(gpt *m) {
    if (m->lora) memset(m->lora->grads, 0, sizeof(float) * m->lora->n_params);
    if (!m->frozen) {
        memset(m->grads, 0, sizeof(float) * m->n_params);
        return;
    }
    /* Frozen block matrices get no gradient at all: leave them; the rest (fused bias and
     * LayerNorm sums write into frozen ones too) starts from zero as usual. */
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        if (m->frozen[i] && t->ndim == 2 && !strncmp(t->name, "transformer.h.", 14)) continue;
        memset(m->grads + t->offset, 0, sizeof(float) * t->numel);
    }
}

/* A packed block matrix, [C, 4C] or [4C, C], whichever is bigger. */
static size_t block_packed_floats(int C) {
    size_t a = kgemm_packed_floats(C, 4 * C), b = kgemm_packed_floats(4 * C, C);
    return a > b ? a : b;
}

/* Activations for (B, T), reallocated only when a larger batch arrives. */
static void ensure_acts(gpt *m, int B, int T) {
    if (T > m->cfg.n_ctx)
        kiln_die(EX_KILN_DATA, "sequence length %d exceeds the model context %d", T, m->cfg.n_ctx);
    if (B < 1 || T < 1) kiln_die(EX_KILN_DATA, "empty batch (%d x %d)", B, T);
    m->B = B;
    m->T = T;
    gpt_acts *a = m->acts;
    if (a && a->B >= B && a->T >= T) return;
    free_acts(a);
    a = m->acts = xcalloc(1, sizeof *a);
    a->B = B;
    a->T = T;
    size_t L = m->cfg.n_layer, C = m->cfg.n_embd, H = m->cfg.n_head, N = (size_t)B * T;
    size_t V = m->cfg.vocab, nt = kpool_size(m->pool);
    a->res = alloc_floats((L + 1) * N * C);
    a->res2 = alloc_floats(L * N * C);
    a->ln1 = alloc_floats(L * N * C);
    a->ln1_mean = alloc_floats(L * N);
    a->ln1_rstd = alloc_floats(L * N);
    a->qkv = alloc_floats(L * N * 3 * C);
    a->atty = alloc_floats(L * N * C);
    a->att_lse = alloc_floats(L * B * H * T);
    a->ln2 = alloc_floats(L * N * C);
    a->ln2_mean = alloc_floats(L * N);
    a->ln2_rstd = alloc_floats(L * N);
    a->fch = alloc_floats(L * N * 4 * C);
    a->gelu = alloc_floats(L * N * 4 * C);
    a->lnf = alloc_floats(N * C);
    a->lnf_mean = alloc_floats(N);
    a->lnf_rstd = alloc_floats(N);
    a->logits = alloc_floats(N * V);
    a->lse = alloc_floats(N);
    a->logp = alloc_floats(N);
    a->entropy = alloc_floats(N);
    a->weight = alloc_floats(N);
    a->pool_w = alloc_floats(N);
    a->pooled = alloc_floats((size_t)B * C);
    a->dres = alloc_floats(N * C);
    a->dc = alloc_floats(N * C);
    a->d3c = alloc_floats(N * 3 * C);
    a->d4c = alloc_floats(N * 4 * C);
    a->att_scratch = alloc_floats(nt * att_scratch_floats(T, C / m->cfg.n_head));
    a->partial = alloc_floats(nt * 4 * C);
    a->gemm_ws = alloc_floats(nt * kgemm_workspace_floats());
    /* Room for the block matrices, [C, 4C] at most, packed or as a partial gradient: the
     * head's products with a vocabulary bigger than 4C take the paths that need neither,
     * rather than this scratch growing to a copy of wte per thread. */
    a->packed_floats = block_packed_floats((int)C);
    a->packed = alloc_floats(a->packed_floats);
    a->att_dbias = alloc_floats((size_t)B * 3 * C);
    if (nt > 1 && nt <= WGRAD_SPLIT_MAX) a->wgrad = alloc_floats((nt - 1) * 4 * C * C);
    a->x = xmalloc(N * sizeof(int32_t));
    a->y = xmalloc(N * sizeof(int32_t));
}

/* Block l's parameters (or gradients) and activations, as plain pointers. */
typedef struct block_params {
    float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb;
    float *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
} block_params;

typedef struct block_acts {
    float *res, *res2, *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att_lse;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *gelu;
} block_acts;

static block_params block_params_of(const gpt_views *v, const gpt_config *cfg, int l) {
    size_t C = cfg->n_embd, lc = (size_t)l * C;
    return (block_params){v->ln1w + lc,
                          v->ln1b + lc,
                          v->qkvw + lc * 3 * C,
                          v->qkvb + lc * 3,
                          v->attprojw + lc * C,
                          v->attprojb + lc,
                          v->ln2w + lc,
                          v->ln2b + lc,
                          v->fcw + lc * 4 * C,
                          v->fcb + lc * 4,
                          v->fcprojw + lc * 4 * C,
                          v->fcprojb + lc};
}

static block_acts block_acts_of(const gpt *m, int l) {
    const gpt_acts *a = m->acts;
    size_t N = (size_t)m->B * m->T, NC = N * m->cfg.n_embd, ln = (size_t)l * N;
    return (block_acts){
        a->res + l * NC,     a->res2 + l * NC,    a->ln1 + l * NC,  a->ln1_mean + ln,
        a->ln1_rstd + ln,    a->qkv + 3 * l * NC, a->atty + l * NC, a->att_lse + ln * m->cfg.n_head,
        a->ln2 + l * NC,     a->ln2_mean + ln,    a->ln2_rstd + ln, a->fch + 4 * l * NC,
        a->gelu + 4 * l * NC};
}

/* ---- one forward pass, for training and for decoding ------------------------------------ */

/* Decoding (gpt_decode): a run of one sequence's tokens in a chunk of rows, at consecutive
 * positions from pos: rows first .. first + count - 1. */
typedef struct dec_span {
    int row, first, pos, count;
} dec_span;

/* The decoding state behind gpt_kv: the cache, and the scratch of one chunk of rows. */
struct gpt_kv {
    int rows, P, L, C, H, threads; /* P: positions held per sequence */
    int *len;                      /* [rows] positions cached so far */
    float *k;          /* [L, rows, H, hd, P] keys, transposed per head (the scores' B, in place) */
    float *v;          /* [L, rows, P, C] values */
    int cap;           /* rows a chunk's scratch holds */
    block_acts acts;   /* one layer's activations, reused by every layer: res = res2, ln1 = ln2 */
    float *proj, *lnf; /* [cap, C] */
    gemm_scratch gs;
    float *att_scratch; /* [threads, ATT_ROWS * P] */
    kpool **solo;       /* [threads] one-thread pools: a thread's rows run inline */
    dec_span *spans;    /* [cap] of the chunk being run */
    int *split;         /* [threads + 1] the spans each thread takes (decode_split_task) */
    int *erow, *epos;   /* [ecap] each token's sequence and position in the call being run */
    size_t ecap;
    uint64_t *seen, call; /* [rows] the last call that had a token of each sequence */
    /* The linear layers' weights packed for kgemm_packed once for a run of decoding steps
     * (gpt_kv_pack_weights), instead of by every thread at every step. */
    const float **wsrc; /* [n_wp] the weight each packing is of (NULL: none held) */
    float **wpacked;    /* [n_wp] into wbuf */
    int n_wp;
    float *wbuf;
    size_t wbuf_floats;
};

/* What a forward pass runs on.  Training: B sequences of T rows with every layer's
 * activations kept for backward (m->acts).  Decoding: a chunk of rows, each a token of some
 * sequence at some position, one layer's scratch reused by every layer, keys and values
 * kept in the cache kv. */
typedef struct fwd_pass {
    gpt *m;
    kpool *pool; /* m->pool, or one thread's own when the rows are split between threads */
    int N;       /* rows */
    gemm_scratch gs;
    float *proj;                      /* [N, C] a block's output projection */
    float *lnf, *lnf_mean, *lnf_rstd; /* [N, C], [N], [N] */
    /* decoding */
    gpt_kv *kv;            /* NULL when training */
    block_acts acts;       /* the rows' scratch, every layer */
    float *att_scratch;    /* [pool threads, ATT_ROWS * P] */
    const dec_span *spans; /* the rows' spans, first counted from row0 of the chunk */
    int n_spans, row0;
} fwd_pass;

static fwd_pass training_pass(gpt *m) {
    gpt_acts *a = m->acts;
    return (fwd_pass){.m = m,
                      .pool = m->pool,
                      .N = m->B * m->T,
                      .gs = acts_scratch(m),
                      .proj = a->dc,
                      .lnf = a->lnf,
                      .lnf_mean = a->lnf_mean,
                      .lnf_rstd = a->lnf_rstd};
}

static block_acts pass_acts(const fwd_pass *f, int l) {
    return f->kv ? f->acts : block_acts_of(f->m, l);
}

static const float *kv_packed_weight(const gpt_kv *kv, const float *W);

/* y[N, out] = x[N, in] W[in, out] (+ bias); from the weight packed beforehand when a decoder
 * holds it (the same kernel on the same packing: the same bits). */
static void pass_linear(const fwd_pass *f, const float *x, const float *W, const float *bias,
                        float *y, int in, int out) {
    const float *Bp = f->kv ? kv_packed_weight(f->kv, W) : NULL;
    /* A few rows on a shared pool split better by columns, each thread packing its slice
     * (gemm_on); rows handed out from the packing would leave threads idle. */
    int nt = kpool_size(f->pool);
    if (nt > 1 && (size_t)f->N < (size_t)nt * GEMM_SHARED_TILES * (size_t)kgemm_tile_rows())
        Bp = NULL;
    if (!Bp) {
        gemm_on(f->pool, &f->gs, false, false, f->N, out, in, x, in, W, out, 0.0f, y, out, bias);
        return;
    }
    gemm_job j = {.M = f->N,
                  .N = out,
                  .K = in,
                  .A = x,
                  .lda = in,
                  .C = y,
                  .ldc = out,
                  .bias = bias,
                  .ws = f->gs.ws,
                  .packed = (float *)Bp};
    size_t tile = (size_t)kgemm_tile_rows(), rows = (size_t)(GEMM_CHUNK_FLOPS / (2.0 * out * in));
    j.chunk = rows > tile ? rows / tile * tile : tile;
    atomic_store_explicit(&j.next, 0, memory_order_relaxed);
    kpool_run(f->pool, gemm_rows_task, &j);
}

/* Decoding attention: a job per (span, head) stores the span's keys and values for that
 * head in the cache, then runs its queries by groups of rows over the cached keys, through
 * the training pass's att_fwd_group.  A sequence has one span per chunk, so no two jobs
 * touch the same part of the cache. */
typedef struct dec_att_job {
    const fwd_pass *f;
    int l;
    const block_acts *a;
    atomic_size_t next;
} dec_att_job;

static void dec_att_span(const dec_att_job *j, const att_dims *d, const dec_span *s, int h,
                         float *S, float *ws) {
    const gpt_kv *kv = j->f->kv;
    int C = d->C, hd = d->hd, ld = d->ld, P = kv->P, first = s->first - j->f->row0;
    size_t lr = (size_t)j->l * kv->rows + (size_t)s->row;
    float *Kt = kv->k + (lr * d->H + h) * hd * P, *V = kv->v + lr * P * C + h * hd;
    const float *Q = j->a->qkv + (size_t)first * ld + h * hd;
    for (int i = 0; i < s->count; i++) {
        const float *q = Q + (size_t)i * ld;
        size_t p = (size_t)(s->pos + i);
        for (int k = 0; k < hd; k++) Kt[k * P + p] = q[C + k];
        memcpy(V + p * C, q + 2 * C, sizeof(float) * hd);
    }
    float *Y = j->a->atty + (size_t)first * C + h * hd;
    for (int g = 0; g < s->count; g += ATT_ROWS) {
        int rows = s->count - g < ATT_ROWS ? s->count - g : ATT_ROWS;
        att_group grp = {.Q = Q + (size_t)g * ld,
                         .Kt = Kt,
                         .V = V,
                         .ldq = ld,
                         .ldk = P,
                         .ldv = C,
                         .Y = Y + (size_t)g * C,
                         .ldy = C,
                         .q0 = s->pos + g,
                         .rows = rows};
        att_fwd_group(d, &grp, S, P, ws);
    }
}

static void dec_att_task(void *ctx, int tid, int nt) {
    dec_att_job *j = ctx;
    const fwd_pass *f = j->f;
    att_dims d = att_dims_of(f->m);
    float *S = f->att_scratch + (size_t)tid * ATT_ROWS * f->kv->P, *ws = gemm_ws_of(f->gs.ws, tid);
    size_t lo, hi;
    while (kpool_next(&j->next, (size_t)f->n_spans * d.H, 1, nt, &lo, &hi))
        for (size_t sh = lo; sh < hi; sh++)
            dec_att_span(j, &d, &f->spans[sh / d.H], (int)(sh % d.H), S, ws);
}

static void attention_fwd(const fwd_pass *f, int l, const block_acts *a) {
    if (f->kv) {
        dec_att_job j = {f, l, a, 0};
        kpool_run(f->pool, dec_att_task, &j);
        return;
    }
    att_job aj = {f->m, a->qkv, a->atty, a->att_lse, NULL, 0};
    kpool_run(f->pool, att_fwd_task, &aj);
}

/* Block l from its ln_1 output (already computed) to the MLP projection in `out`, without
 * its bias: the caller fuses bias + residual add with the next LayerNorm.  Adapters run on
 * m's pool (decoding never splits rows between threads with adapters: decode_chunk). */
static void block_forward(const fwd_pass *f, int l, float *out) {
    gpt *m = f->m;
    block_params p = block_params_of(&m->p, &m->cfg, l);
    block_acts a = pass_acts(f, l);
    int C = m->cfg.n_embd, N = f->N;
    pass_linear(f, a.ln1, p.qkvw, p.qkvb, a.qkv, C, 3 * C);
    if (m->lora) lora_forward(m->lora, m->pool, l, LORA_QKV, a.ln1, a.qkv, N);
    attention_fwd(f, l, &a);
    pass_linear(f, a.atty, p.attprojw, NULL, out, C, C);
    if (m->lora) lora_forward(m->lora, m->pool, l, LORA_PROJ, a.atty, out, N);
    residual_ln_fwd(f->pool, N, C, a.res, out, p.attprojb, a.res2, p.ln2w, p.ln2b, a.ln2,
                    a.ln2_mean, a.ln2_rstd);
    pass_linear(f, a.ln2, p.fcw, p.fcb, a.fch, C, 4 * C);
    if (m->lora) lora_forward(m->lora, m->pool, l, LORA_FC, a.ln2, a.fch, N);
    gelu_job gj = {m, N, 4 * C, a.fch, a.gelu, 0};
    kpool_run(f->pool, gelu_fwd_task, &gj);
    pass_linear(f, a.gelu, p.fcprojw, NULL, out, 4 * C, C);
    if (m->lora) lora_forward(m->lora, m->pool, l, LORA_FCPROJ, a.gelu, out, N);
}

/* From the embeddings in layer 0's residual to ln_f's output.  Decoding keeps one residual
 * stream and adds each block into it in place. */
static void trunk_forward(const fwd_pass *f) {
    gpt *m = f->m;
    int L = m->cfg.n_layer, N = f->N, C = m->cfg.n_embd;
    block_acts first = pass_acts(f, 0);
    residual_ln_fwd(f->pool, N, C, first.res, NULL, NULL, NULL, m->p.ln1w, m->p.ln1b, first.ln1,
                    first.ln1_mean, first.ln1_rstd);
    for (int l = 0; l < L; l++) {
        block_forward(f, l, f->proj);
        block_acts cur = pass_acts(f, l);
        const float *bias = block_params_of(&m->p, &m->cfg, l).fcprojb;
        float *next_res = f->kv ? cur.res : cur.res + (size_t)N * C;
        if (l + 1 < L) {
            block_acts next = pass_acts(f, l + 1);
            block_params np = block_params_of(&m->p, &m->cfg, l + 1);
            residual_ln_fwd(f->pool, N, C, cur.res2, f->proj, bias, next_res, np.ln1w, np.ln1b,
                            next.ln1, next.ln1_mean, next.ln1_rstd);
        } else {
            residual_ln_fwd(f->pool, N, C, cur.res2, f->proj, bias, next_res, m->p.lnfw, m->p.lnfb,
                            f->lnf, f->lnf_mean, f->lnf_rstd);
        }
    }
}

/* Block l backward: acts->dres holds the gradient of the block's output (and the bias
 * gradient of its MLP projection is already summed); leaves the gradient of its input. */
static void block_backward(gpt *m, int l) {
    block_params p = block_params_of(&m->p, &m->cfg, l), g = block_params_of(&m->g, &m->cfg, l);
    block_acts a = block_acts_of(m, l);
    gpt_acts *s = m->acts; /* scratch */
    int C = m->cfg.n_embd, N = m->B * m->T;
    linear_bwd(m, a.gelu, p.fcprojw, s->dres, s->d4c, g.fcprojw, N, 4 * C, C);
    if (m->lora) lora_backward(m->lora, m->pool, l, LORA_FCPROJ, a.gelu, s->dres, s->d4c, N);
    gelu_job gj = {m, N, 4 * C, a.fch, s->d4c, 0};
    kpool_run(m->pool, gelu_bwd_task, &gj);
    reduce_partials(m, 4 * (size_t)C, 0, 4 * C, g.fcb);
    linear_bwd(m, a.ln2, p.fcw, s->d4c, s->dc, g.fcw, N, C, 4 * C);
    if (m->lora) lora_backward(m->lora, m->pool, l, LORA_FC, a.ln2, s->d4c, s->dc, N);
    residual_ln_bwd(m, N, s->dc, a.res2, a.ln2_mean, a.ln2_rstd, p.ln2w, g.ln2w, g.ln2b, s->dres,
                    true, g.attprojb);
    linear_bwd(m, a.atty, p.attprojw, s->dres, s->dc, g.attprojw, N, C, C);
    if (m->lora) lora_backward(m->lora, m->pool, l, LORA_PROJ, a.atty, s->dres, s->dc, N);
    att_job aj = {m, a.qkv, s->d3c, a.att_lse, s->dc, 0};
    kpool_run(m->pool, att_bwd_task, &aj);
    for (int b = 0; b < m->B; b++)
        for (int i = 0; i < 3 * C; i++) g.qkvb[i] += s->att_dbias[(size_t)b * 3 * C + i];
    linear_bwd(m, a.ln1, p.qkvw, s->d3c, s->dc, g.qkvw, N, C, 3 * C);
    if (m->lora) lora_backward(m->lora, m->pool, l, LORA_QKV, a.ln1, s->d3c, s->dc, N);
    residual_ln_bwd(m, N, s->dc, a.res, a.ln1_mean, a.ln1_rstd, p.ln1w, g.ln1w, g.ln1b, s->dres,
                    true, l > 0 ? block_params_of(&m->g, &m->cfg, l - 1).fcprojb : NULL);
}

void gpt_forward_hidden(gpt *m, const int32_t *x, int B, int T) {
    ensure_acts(m, B, T);
    gpt_acts *a = m->acts;
    int V = m->cfg.vocab, N = B * T;
    for (int n = 0; n < N; n++) {
        if (x[n] < 0 || x[n] >= V)
            kiln_die(EX_KILN_DATA, "token %d at position %d is outside the vocabulary (%d)", x[n],
                     n, V);
        a->x[n] = x[n];
    }
    a->have_logits = a->have_targets = false;
    enc_job ej = {.m = m, .out = a->res, .tok = a->x, .N = N};
    kpool_run(m->pool, encoder_fwd_task, &ej);
    fwd_pass f = training_pass(m);
    trunk_forward(&f);
}

float gpt_forward(gpt *m, const int32_t *x, const int32_t *y, const uint8_t *mask, int B, int T) {
    gpt_forward_hidden(m, x, B, T);
    gpt_acts *a = m->acts;
    int C = m->cfg.n_embd, V = m->cfg.vocab, N = B * T;
    gemm(m, false, true, N, V, C, a->lnf, C, m->p.wte, C, 0.0f, a->logits, V, NULL);
    a->have_logits = true;
    if (!y) {
        m->loss = NAN;
        return m->loss;
    }
    float count = 0.0f;
    for (int n = 0; n < N; n++) {
        if (y[n] < 0 || y[n] >= V)
            kiln_die(EX_KILN_DATA, "target %d at position %d is outside the vocabulary (%d)", y[n],
                     n, V);
        a->y[n] = y[n];
        count += mask ? (mask[n] != 0) : 1.0f;
    }
    for (int n = 0; n < N; n++)
        a->weight[n] = (!mask || mask[n]) && count > 0 ? 1.0f / count : 0.0f;
    double partial[kpool_size(m->pool)];
    ce_job cj = {.m = m, .loss = partial};
    kpool_run(m->pool, ce_fwd_task, &cj);
    double loss = 0.0;
    for (int t = 0; t < kpool_size(m->pool); t++) loss += partial[t];
    m->mask_count = count;
    m->loss = (float)loss;
    a->have_targets = true;
    return m->loss;
}

const float *gpt_logits(const gpt *m) {
    return m->acts && m->acts->have_logits ? m->acts->logits : NULL;
}

const float *gpt_hidden(const gpt *m) {
    return m->acts ? m->acts->lnf : NULL;
}

/* Backward from d(ln_f output) in acts->dc down to the lowest block that trains (and the
 * embeddings when they do: lowest_trained_layer). */
static void trunk_backward(gpt *m) {
    gpt_acts *a = m->acts;
    int L = m->cfg.n_layer, N = m->B * m->T;
    residual_ln_bwd(m, N, a->dc, a->res + (size_t)L * N * m->cfg.n_embd, a->lnf_mean, a->lnf_rstd,
                    m->p.lnfw, m->g.lnfw, m->g.lnfb, a->dres, false,
                    block_params_of(&m->g, &m->cfg, L - 1).fcprojb);
    int low = lowest_trained_layer(m);
    for (int l = L - 1; l >= 0 && l >= low; l--) block_backward(m, l);
    if (low >= 0) return; /* the embeddings are frozen */
    enc_job ej = {.m = m, .dout = a->dres};
    kpool_run(m->pool, encoder_bwd_task, &ej);
}

/* The LM head's backward from cj's weighting (gpt_backward, gpt_backward_weighted), plus
 * dhidden (NULL: none) into the gradient of ln_f's output, then the trunk's. */
static void lm_backward(gpt *m, const ce_job *cj, const float *dhidden, const char *who) {
    gpt_acts *a = m->acts;
    if (!a || !a->have_logits || !a->have_targets)
        kiln_die(EX_KILN_SOFTWARE, "%s without a forward with targets", who);
    int C = m->cfg.n_embd, V = m->cfg.vocab, N = m->B * m->T;
    kpool_run(m->pool, ce_bwd_task, (void *)cj);
    a->have_logits = false; /* they are dlogits now */
    gemm(m, false, false, N, C, V, a->logits, V, m->p.wte, C, 0.0f, a->dc, C, NULL);
    for (size_t i = 0; dhidden && i < (size_t)N * C; i++) a->dc[i] += dhidden[i];
    if (!frozen_at(m, m->g.wte)) wgrad(m, V, C, N, a->logits, a->lnf, m->g.wte);
    trunk_backward(m);
}

void gpt_backward(gpt *m, float scale) {
    ce_job cj = {.m = m, .scale = scale};
    lm_backward(m, &cj, NULL, "gpt_backward");
}

void gpt_backward_weighted(gpt *m, const float *w) {
    ce_job cj = {.m = m, .w = w};
    lm_backward(m, &cj, NULL, "gpt_backward_weighted");
}

void gpt_backward_weighted_hidden(gpt *m, const float *w, const float *dhidden) {
    ce_job cj = {.m = m, .w = w};
    lm_backward(m, &cj, dhidden, "gpt_backward_weighted_hidden");
}

/* ---- log-probabilities of the targets ------------------------------------------------ */

static const gpt_acts *targets_of(const gpt *m, const char *who) {
    if (!m->acts || !m->acts->have_targets)
        kiln_die(EX_KILN_SOFTWARE, "%s without a forward with targets", who);
    return m->acts;
}

void gpt_token_logprobs(const gpt *m, float *logp, float *entropy) {
    const gpt_acts *a = targets_of(m, "gpt_token_logprobs");
    size_t N = (size_t)m->B * m->T;
    if (logp) memcpy(logp, a->logp, sizeof(float) * N);
    if (entropy) memcpy(entropy, a->entropy, sizeof(float) * N);
}

/* A position counted in the forward's loss exactly when its weight mask / count is not 0
 * (with no position counted, every sum is 0 either way). */
void gpt_seq_logprobs(const gpt *m, float *out) {
    const gpt_acts *a = targets_of(m, "gpt_seq_logprobs");
    for (int b = 0; b < m->B; b++) {
        double sum = 0.0;
        for (size_t n = (size_t)b * m->T; n < (size_t)(b + 1) * m->T; n++)
            if (a->weight[n] != 0.0f) sum += a->logp[n];
        out[b] = (float)sum;
    }
}

/* ---- pooled hidden states and the scalar head ---------------------------------------- */

const char *const gpt_pool_names[] = {"last", "mean", "weightedmean", NULL};

gpt_pool_mode gpt_pool_parse(const char *name) {
    for (int i = 0; gpt_pool_names[i]; i++)
        if (!strcmp(name, gpt_pool_names[i])) return (gpt_pool_mode)i;
    kiln_die(EX_KILN_SOFTWARE, "no pooling '%s'", name);
}

void gpt_pool(gpt *m, const uint8_t *mask, gpt_pool_mode mode, float *out) {
    gpt_acts *a = m->acts;
    if (!a) kiln_die(EX_KILN_SOFTWARE, "gpt_pool before a forward");
    int B = m->B, T = m->T, C = m->cfg.n_embd;
    for (int b = 0; b < B; b++) {
        float *w = a->pool_w + (size_t)b * T;
        const uint8_t *mk = mask ? mask + (size_t)b * T : NULL;
        memset(w, 0, sizeof(float) * T);
        if (mode == GPT_POOL_LAST) {
            int last = T - 1;
            if (mk)
                while (last > 0 && !mk[last]) last--;
            w[last] = 1.0f;
        } else { /* mean: every position 1; weighted: its place among the counted, 1, 2, ... */
            double count = 0;
            for (int t = 0; t < T; t++)
                if (!mk || mk[t]) {
                    count++;
                    w[t] = mode == GPT_POOL_WEIGHTED ? (float)count : 1.0f;
                }
            double sum = mode == GPT_POOL_WEIGHTED ? count * (count + 1) / 2 : count;
            for (int t = 0; t < T; t++) w[t] = sum > 0 ? (float)(w[t] / sum) : 0.0f;
        }
        float *o = a->pooled + (size_t)b * C;
        memset(o, 0, sizeof(float) * C);
        for (int t = 0; t < T; t++) {
            if (w[t] == 0.0f) continue;
            const float *h = a->lnf + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) o[c] += w[t] * h[c];
        }
        if (out) memcpy(out + (size_t)b * C, o, sizeof(float) * C);
    }
}

void gpt_pool_backward(gpt *m, const float *dpooled) {
    gpt_acts *a = m->acts;
    int B = m->B, T = m->T, C = m->cfg.n_embd;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float w = a->pool_w[(size_t)b * T + t], *d = a->dc + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) d[c] = w * dpooled[(size_t)b * C + c];
        }
    a->have_logits = false;
    trunk_backward(m);
}

void gpt_scalar(gpt *m, const uint8_t *mask, gpt_pool_mode mode, float *values) {
    if (!m->p.scorew) kiln_die(EX_KILN_SOFTWARE, "gpt_scalar on a model without a scalar head");
    gpt_pool(m, mask, mode, NULL);
    int C = m->cfg.n_embd;
    for (int b = 0; b < m->B; b++) {
        const float *o = m->acts->pooled + (size_t)b * C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) v += m->p.scorew[c] * o[c];
        values[b] = v;
    }
}

void gpt_scalar_backward(gpt *m, const float *dvalues) {
    int B = m->B, C = m->cfg.n_embd;
    float *dpooled = xmalloc(xmul((size_t)B * C, sizeof(float)));
    for (int b = 0; b < B; b++) {
        const float *o = m->acts->pooled + (size_t)b * C;
        for (int c = 0; c < C; c++) {
            m->g.scorew[c] += dvalues[b] * o[c];
            dpooled[(size_t)b * C + c] = dvalues[b] * m->p.scorew[c];
        }
    }
    gpt_pool_backward(m, dpooled);
    free(dpooled);
}

double gpt_flops_per_token(const gpt_config *cfg, int T) {
    size_t n = 0;
    layout(cfg, NULL, &(gpt_views){0}, NULL, &n);
    return 6.0 * (double)n + 12.0 * cfg->n_layer * (double)T * cfg->n_embd;
}

/* ---- decoding ----------------------------------------------------------------------------- */

/* Rows a decoding chunk runs at once: enough for the GEMMs' shared-B path on a few threads,
 * its scratch (16 C floats a row) small next to the cache. */
#define DECODE_CHUNK 1024

gpt_kv *gpt_kv_create(const gpt *m, int rows, int positions) {
    if (rows < 1) kiln_die(EX_KILN_SOFTWARE, "gpt_kv_create: %d rows", rows);
    const gpt_config *c = &m->cfg;
    gpt_kv *kv = xcalloc(1, sizeof *kv);
    *kv = (gpt_kv){.rows = rows,
                   .P = positions > 0 && positions < c->n_ctx ? positions : c->n_ctx,
                   .L = c->n_layer,
                   .C = c->n_embd,
                   .H = c->n_head,
                   .threads = kpool_size(m->pool)};
    size_t cache = xmul(xmul((size_t)kv->L * (size_t)rows, (size_t)kv->P), (size_t)kv->C);
    kv->len = xcalloc((size_t)rows, sizeof(int));
    kv->seen = xcalloc((size_t)rows, sizeof(uint64_t));
    kv->k = alloc_floats(cache);
    kv->v = alloc_floats(cache);
    kv->gs.ws = alloc_floats(xmul((size_t)kv->threads, kgemm_workspace_floats()));
    kv->gs.packed_floats = block_packed_floats(kv->C);
    kv->gs.packed = alloc_floats(kv->gs.packed_floats);
    kv->att_scratch = alloc_floats((size_t)kv->threads * ATT_ROWS * (size_t)kv->P);
    kv->solo = xcalloc((size_t)kv->threads, sizeof(kpool *));
    for (int t = 0; t < kv->threads; t++) kv->solo[t] = kpool_create(1); /* no thread of its own */
    kv->split = xcalloc((size_t)kv->threads + 1, sizeof(int));
    return kv;
}

static void free_chunk(gpt_kv *kv) {
    block_acts *a = &kv->acts;
    float *bufs[] = {a->res,  a->ln1, a->ln1_mean, a->ln1_rstd, a->qkv,
                     a->atty, a->fch, a->gelu,     kv->proj,    kv->lnf};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(kv->spans);
}

void gpt_kv_free(gpt_kv *kv) {
    if (!kv) return;
    free_chunk(kv);
    free(kv->len), free(kv->seen), free(kv->k), free(kv->v);
    free(kv->gs.ws), free(kv->gs.packed), free(kv->att_scratch);
    free(kv->erow), free(kv->epos);
    for (int t = 0; t < kv->threads; t++) kpool_free(kv->solo[t]);
    free(kv->solo), free(kv->split);
    free(kv->wsrc), free(kv->wpacked), free(kv->wbuf);
    free(kv);
}

/* The weights pass_linear reads, in block order. */
static int linear_weights(const gpt *m, const float **W, int *in, int *out) {
    int C = m->cfg.n_embd, n = 0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        block_params p = block_params_of(&m->p, &m->cfg, l);
        W[n] = p.qkvw, in[n] = C, out[n++] = 3 * C;
        W[n] = p.attprojw, in[n] = C, out[n++] = C;
        W[n] = p.fcw, in[n] = C, out[n++] = 4 * C;
        W[n] = p.fcprojw, in[n] = 4 * C, out[n++] = C;
    }
    return n;
}

typedef struct wpack_job {
    const gpt_kv *kv;
    const int *in, *out;
} wpack_job;

static void wpack_task(void *ctx, int tid, int nt) {
    const wpack_job *j = ctx;
    for (int i = 0; i < j->kv->n_wp; i++) {
        size_t lo, hi;
        kpool_range((size_t)j->out[i], (size_t)kgemm_panel_width(), tid, nt, &lo, &hi);
        kgemm_pack(false, j->in[i], j->out[i], j->kv->wsrc[i], j->out[i], (int)lo, (int)hi,
                   j->kv->wpacked[i]);
    }
}

void gpt_kv_pack_weights(gpt *m, gpt_kv *kv) {
    int L = m->cfg.n_layer, n_max = 4 * L;
    int *in = xmalloc(xmul((size_t)n_max, 2 * sizeof(int))), *out = in + n_max;
    if (!kv->wsrc) {
        kv->wsrc = xcalloc((size_t)n_max, sizeof *kv->wsrc);
        kv->wpacked = xcalloc((size_t)n_max, sizeof *kv->wpacked);
    }
    kv->n_wp = linear_weights(m, kv->wsrc, in, out);
    size_t total = 0;
    for (int i = 0; i < kv->n_wp; i++) total += kgemm_packed_floats(in[i], out[i]);
    if (total > kv->wbuf_floats) {
        free(kv->wbuf);
        kv->wbuf = alloc_floats(total);
        kv->wbuf_floats = total;
    }
    total = 0;
    for (int i = 0; i < kv->n_wp; i++) {
        kv->wpacked[i] = kv->wbuf + total;
        total += kgemm_packed_floats(in[i], out[i]);
    }
    wpack_job j = {kv, in, out};
    kpool_run(m->pool, wpack_task, &j);
    free(in);
}

void gpt_kv_unpack_weights(gpt_kv *kv) {
    kv->n_wp = 0;
}

static const float *kv_packed_weight(const gpt_kv *kv, const float *W) {
    for (int i = 0; i < kv->n_wp; i++)
        if (kv->wsrc[i] == W) return kv->wpacked[i];
    return NULL;
}

int gpt_kv_positions(const gpt_kv *kv) {
    return kv->P;
}

int gpt_kv_len(const gpt_kv *kv, int row) {
    return row >= 0 && row < kv->rows ? kv->len[row] : 0;
}

/* A chunk's scratch for n rows (grown, never shrunk). */
static void ensure_chunk(gpt_kv *kv, int n) {
    if (n <= kv->cap) return;
    free_chunk(kv);
    size_t N = (size_t)n, C = (size_t)kv->C;
    float *res = alloc_floats(N * C), *ln = alloc_floats(N * C);
    float *mean = alloc_floats(N), *rstd = alloc_floats(N);
    kv->acts = (block_acts){.res = res,
                            .res2 = res,
                            .ln1 = ln,
                            .ln1_mean = mean,
                            .ln1_rstd = rstd,
                            .qkv = alloc_floats(N * 3 * C),
                            .atty = alloc_floats(N * C),
                            .ln2 = ln,
                            .ln2_mean = mean,
                            .ln2_rstd = rstd,
                            .fch = alloc_floats(N * 4 * C),
                            .gelu = alloc_floats(N * 4 * C)};
    kv->proj = alloc_floats(N * C);
    kv->lnf = alloc_floats(N * C);
    kv->spans = xmalloc(xmul(N, sizeof(dec_span)));
    kv->cap = n;
}

/* Each token's sequence and position into kv->erow, kv->epos, checking the rules of
 * gpt_decode; then every sequence named holds up to its last token. */
static void decode_positions(const gpt *m, gpt_kv *kv, int n, const int32_t *tokens,
                             const int *rows, const int *pos) {
    if ((size_t)n > kv->ecap) {
        free(kv->erow), free(kv->epos);
        kv->erow = xmalloc(xmul((size_t)n, sizeof(int)));
        kv->epos = xmalloc(xmul((size_t)n, sizeof(int)));
        kv->ecap = (size_t)n;
    }
    kv->call++;
    for (int i = 0; i < n; i++) {
        int r = rows ? rows[i] : i;
        if (r < 0 || r >= kv->rows)
            kiln_die(EX_KILN_SOFTWARE, "gpt_decode: sequence %d of %d", r, kv->rows);
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab)
            kiln_die(EX_KILN_DATA, "token %d is outside the vocabulary (%d)", tokens[i],
                     m->cfg.vocab);
        bool more = i > 0 && kv->erow[i - 1] == r; /* this sequence's run goes on */
        int p = pos ? pos[i] : more ? kv->epos[i - 1] + 1 : kv->len[r];
        if (more && p != kv->epos[i - 1] + 1)
            kiln_die(EX_KILN_SOFTWARE, "gpt_decode: sequence %d's positions are not consecutive",
                     r);
        if (!more && kv->seen[r] == kv->call)
            kiln_die(EX_KILN_SOFTWARE, "gpt_decode: sequence %d's tokens are not adjacent", r);
        if (!more && (p < 0 || p > kv->len[r]))
            kiln_die(EX_KILN_SOFTWARE, "gpt_decode: position %d of sequence %d, which holds %d", p,
                     r, kv->len[r]);
        if (p >= kv->P)
            kiln_die(EX_KILN_SOFTWARE, "gpt_decode: position %d past the cache (%d)", p, kv->P);
        kv->seen[r] = kv->call;
        kv->erow[i] = r;
        kv->epos[i] = p;
    }
    for (int i = 0; i < n; i++) kv->len[kv->erow[i]] = kv->epos[i] + 1;
}

/* block_acts a moved on by `lo` rows (its att_lse is not used in decoding). */
static block_acts acts_from(const block_acts *a, size_t lo, size_t C) {
    return (block_acts){.res = a->res + lo * C,
                        .res2 = a->res2 + lo * C,
                        .ln1 = a->ln1 + lo * C,
                        .ln1_mean = a->ln1_mean + lo,
                        .ln1_rstd = a->ln1_rstd + lo,
                        .qkv = a->qkv + lo * 3 * C,
                        .atty = a->atty + lo * C,
                        .ln2 = a->ln2 + lo * C,
                        .ln2_mean = a->ln2_mean + lo,
                        .ln2_rstd = a->ln2_rstd + lo,
                        .fch = a->fch + lo * 4 * C,
                        .gelu = a->gelu + lo * 4 * C};
}

/* The decoding pass over spans [s0, s1) of the chunk on `pool`, with thread `t0`'s scratch
 * onwards (the scratch of each of pool's threads follows). */
static fwd_pass decode_pass(gpt *m, gpt_kv *kv, kpool *pool, int t0, int s0, int s1) {
    const dec_span *first = &kv->spans[s0], *last = &kv->spans[s1 - 1];
    size_t lo = (size_t)first->first, C = (size_t)kv->C;
    block_acts a = acts_from(&kv->acts, lo, C);
    return (fwd_pass){.m = m,
                      .pool = pool,
                      .N = last->first + last->count - first->first,
                      .gs = {gemm_ws_of(kv->gs.ws, t0), pool == m->pool ? kv->gs.packed : NULL,
                             pool == m->pool ? kv->gs.packed_floats : 0},
                      .proj = kv->proj + lo * C,
                      .lnf = kv->lnf + lo * C,
                      .lnf_mean = a.ln1_mean, /* ln_1's are spent by then */
                      .lnf_rstd = a.ln1_rstd,
                      .kv = kv,
                      .acts = a,
                      .att_scratch = kv->att_scratch + (size_t)t0 * ATT_ROWS * kv->P,
                      .spans = first,
                      .n_spans = s1 - s0,
                      .row0 = first->first};
}

/* A pass's rows: embeddings, the trunk (storing keys and values), the head (logits: the
 * chunk's, or NULL). */
static void decode_rows(const fwd_pass *f, const int32_t *tokens, const int *pos, float *logits) {
    gpt *m = f->m;
    int C = m->cfg.n_embd, V = m->cfg.vocab;
    enc_job ej = {
        .m = m, .out = f->acts.res, .tok = tokens + f->row0, .pos = pos + f->row0, .N = f->N};
    kpool_run(f->pool, encoder_fwd_task, &ej);
    trunk_forward(f);
    if (logits)
        gemm_on(f->pool, &f->gs, false, true, f->N, V, C, f->lnf, C, m->p.wte, C, 0.0f,
                logits + (size_t)f->row0 * V, V, NULL);
}

/* Rows split between the threads: each runs its share of whole spans through the model on its
 * own, inline, so a step over a few dozen rows costs one fork/join instead of one per
 * kernel (the kernels' own jobs are too small to share well at that size). */
typedef struct split_job {
    gpt *m;
    gpt_kv *kv;
    const int32_t *tokens;
    const int *pos;
    float *logits;
} split_job;

static void decode_split_task(void *ctx, int tid, int nt) {
    const split_job *j = ctx;
    (void)nt;
    int s0 = j->kv->split[tid], s1 = j->kv->split[tid + 1];
    if (s0 == s1) return;
    fwd_pass f = decode_pass(j->m, j->kv, j->kv->solo[tid], tid, s0, s1);
    decode_rows(&f, j->tokens, j->pos, j->logits);
}

/* Whole spans per thread, about n / nt rows each; false when one span is too long for the
 * shares to come out even (then every kernel is shared instead: a long prompt). */
static bool split_spans(gpt_kv *kv, int n_spans, int n, int nt) {
    int s = 0;
    kv->split[0] = 0;
    for (int t = 1; t <= nt; t++) {
        size_t target = (size_t)n * t / nt;
        while (s < n_spans && (t == nt || (size_t)kv->spans[s].first < target)) {
            if (kv->spans[s].count > n / (2 * nt) + 1) return false;
            s++;
        }
        kv->split[t] = s;
    }
    return true;
}

/* Rows [c0, c0 + n) of the call. */
static void decode_chunk(gpt *m, gpt_kv *kv, int c0, int n, const int32_t *tokens, float *logits) {
    const int *row = kv->erow + c0, *pos = kv->epos + c0;
    int n_spans = 0, nt = kpool_size(m->pool);
    for (int i = 0; i < n; n_spans++) {
        dec_span *s = &kv->spans[n_spans];
        *s = (dec_span){row[i], i, pos[i], 0};
        while (i < n && row[i] == s->row) i++, s->count++;
    }
    tokens += c0;
    logits = logits ? logits + (size_t)c0 * m->cfg.vocab : NULL;
    /* adapters keep per-call state (lib/model/lora.h): they run on the shared pool only */
    if (nt > 1 && n_spans >= nt && !m->lora && split_spans(kv, n_spans, n, nt)) {
        split_job j = {m, kv, tokens, pos, logits};
        kpool_run(m->pool, decode_split_task, &j);
        return;
    }
    fwd_pass f = decode_pass(m, kv, m->pool, 0, 0, n_spans);
    decode_rows(&f, tokens, pos, logits);
}

void gpt_decode(gpt *m, gpt_kv *kv, int n, const int32_t *tokens, const int *rows, const int *pos,
                float *logits) {
    if (n <= 0) return;
    if (kv->L != m->cfg.n_layer || kv->C != m->cfg.n_embd || kv->H != m->cfg.n_head ||
        kv->threads < kpool_size(m->pool))
        kiln_die(EX_KILN_SOFTWARE, "gpt_decode: the cache was made for another model or pool");
    decode_positions(m, kv, n, tokens, rows, pos);
    ensure_chunk(kv, n < DECODE_CHUNK ? n : DECODE_CHUNK);
    /* inference: adapters without dropout, and training's dropout sequence left as it was */
    bool training = m->lora && m->lora->training;
    uint64_t pass = m->lora ? m->lora->pass : 0;
    if (m->lora) m->lora->training = false;
    for (int c0 = 0; c0 < n; c0 += kv->cap)
        decode_chunk(m, kv, c0, n - c0 < kv->cap ? n - c0 : kv->cap, tokens, logits);
    if (m->lora) m->lora->training = training, m->lora->pass = pass;
}

gpt_tensor *gpt_tensors_of(const gpt_config *cfg, int *n, size_t *n_params) {
    gpt_views unused;
    int count = layout(cfg, NULL, &unused, NULL, n_params);
    gpt_tensor *t = xcalloc((size_t)count, sizeof *t);
    *n = layout(cfg, NULL, &unused, t, n_params);
    return t;
}
