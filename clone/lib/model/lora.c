/* lora — low-rank adapters: parsing, layout, forward/backward over the pool, merge. */
#include "model/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"
#include "model/gemm.h"

static const char *const target_names[LORA_N_TARGETS] = {"qkv", "proj", "fc", "fcproj"};
static const char *const target_modules[LORA_N_TARGETS] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                                           "mlp.c_proj"};

#define LORA_RNG_INIT 17 /* krng stream of A's initialisation */

/* ---- options ------------------------------------------------------------------------- */

static int target_of(const char *s, size_t n) {
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (strlen(target_names[t]) == n && !strncmp(s, target_names[t], n)) return t;
    return -1;
}

static bool bad(char *err, size_t errsz, const char *fmt, const char *what, size_t n) {
    snprintf(err, errsz, fmt, (int)n, what);
    return false;
}

bool lora_parse(const char *spec, lora_config *cfg, char *err, size_t errsz) {
    *cfg = (lora_config){.r = 8, .alpha = -1, .dropout = 0, .targets = 0};
    bool in_targets = false;
    for (const char *s = spec; *s;) {
        size_t n = strcspn(s, ",");
        const char *eq = memchr(s, '=', n);
        char val[64] = "";
        if (eq) {
            size_t vn = n - (size_t)(eq + 1 - s);
            if (vn >= sizeof val) return bad(err, errsz, "value too long in '%.*s'", s, n);
            memcpy(val, eq + 1, vn);
        }
        size_t kn = eq ? (size_t)(eq - s) : n;
        double d;
        uint64_t u;
        if (eq && kn == 1 && *s == 'r') {
            if (!parse_u64(val, &u) || u < 1 || u > 4096)
                return bad(err, errsz, "r must be an integer 1..4096 in '%.*s'", s, n);
            cfg->r = (int)u, in_targets = false;
        } else if (eq && kn == 5 && !strncmp(s, "alpha", 5)) {
            if (!parse_f64(val, &d) || !(d > 0 && d < 1e6))
                return bad(err, errsz, "alpha must be a positive number in '%.*s'", s, n);
            cfg->alpha = (float)d, in_targets = false;
        } else if (eq && kn == 7 && !strncmp(s, "dropout", 7)) {
            if (!parse_f64(val, &d) || !(d >= 0 && d < 1))
                return bad(err, errsz, "dropout must be in [0, 1) in '%.*s'", s, n);
            cfg->dropout = (float)d, in_targets = false;
        } else if (eq && kn == 7 && !strncmp(s, "targets", 7)) {
            in_targets = true;
            if (!strcmp(val, "all")) {
                cfg->targets = (1u << LORA_N_TARGETS) - 1;
            } else {
                int t = target_of(val, strlen(val));
                if (t < 0)
                    return bad(err, errsz, "unknown target in '%.*s' (qkv, proj, fc, fcproj, all)",
                               s, n);
                cfg->targets |= 1u << t;
            }
        } else if (!eq && in_targets && target_of(s, n) >= 0) {
            cfg->targets |= 1u << target_of(s, n);
        } else if (!eq && in_targets) {
            return bad(err, errsz, "unknown target '%.*s' (qkv, proj, fc, fcproj, all)", s, n);
        } else {
            return bad(err, errsz, "unknown item '%.*s' (r=, alpha=, targets=, dropout=)", s, n);
        }
        s += n;
        if (*s == ',') s++;
    }
    if (!cfg->targets) cfg->targets = (1u << LORA_QKV) | (1u << LORA_PROJ);
    if (cfg->alpha < 0) cfg->alpha = 2.0f * (float)cfg->r;
    return true;
}

void lora_targets_str(unsigned targets, char *out, size_t outsz) {
    out[0] = '\0';
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (targets & (1u << t))
            snprintf(out + strlen(out), outsz - strlen(out), "%s%s", out[0] ? "," : "",
                     target_names[t]);
}

/* ---- layout ------------------------------------------------------------------------------ */

void lora_dims(lora_target t, int C, int *in, int *out) {
    static const int ins[] = {1, 1, 1, 4}, outs[] = {3, 1, 4, 1};
    *in = ins[t] * C;
    *out = outs[t] * C;
}

static size_t slot(int layer, lora_target t) {
    return (size_t)layer * LORA_N_TARGETS + t;
}

static void add_tensor(lora *a, int layer, lora_target t, char which, size_t off, uint64_t d0,
                       uint64_t d1) {
    gpt_tensor *x = &a->tensors[a->n_tensors++];
    snprintf(x->name, sizeof x->name, "base_model.model.transformer.h.%d.%s.lora_%c.weight", layer,
             target_modules[t], which);
    x->offset = off;
    x->numel = (size_t)(d0 * d1);
    x->ndim = 2;
    x->shape[0] = d0;
    x->shape[1] = d1;
    x->decay = false; /* PEFT trains adapters without weight decay by default */
}

lora *lora_create(const lora_config *cfg, const gpt_config *g, uint64_t seed) {
    lora *a = xcalloc(1, sizeof *a);
    a->cfg = *cfg;
    a->n_layer = g->n_layer;
    a->n_embd = g->n_embd;
    a->scale = cfg->alpha / (float)cfg->r;
    a->seed = seed;
    a->a_off = xmalloc(xmul(slot(g->n_layer, 0), sizeof(size_t)));
    a->tensors = xcalloc(slot(g->n_layer, 0) * 2, sizeof *a->tensors);
    size_t r = (size_t)cfg->r, off = 0;
    for (int l = 0; l < g->n_layer; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            a->a_off[slot(l, t)] = SIZE_MAX;
            if (!(cfg->targets & (1u << t))) continue;
            int in, out;
            lora_dims(t, g->n_embd, &in, &out);
            a->a_off[slot(l, t)] = off;
            add_tensor(a, l, t, 'A', off, r, (uint64_t)in);
            off += r * (size_t)in;
            add_tensor(a, l, t, 'B', off, (uint64_t)out, r);
            off += (size_t)out * r;
        }
    a->n_params = off;
    a->params = xcalloc(off ? off : 1, sizeof(float));
    a->grads = xcalloc(off ? off : 1, sizeof(float));
    for (int i = 0; i < a->n_tensors; i += 2) { /* A: U(-1/sqrt(in), 1/sqrt(in)); B: 0 */
        const gpt_tensor *A = &a->tensors[i];
        float bound = 1.0f / sqrtf((float)A->shape[1]);
        krng rng;
        krng_init(&rng, seed, (uint64_t)i, 0, LORA_RNG_INIT);
        for (size_t k = 0; k < A->numel; k++)
            a->params[A->offset + k] = (float)krng_range(&rng, -bound, bound);
    }
    return a;
}

void lora_free(lora *a) {
    if (!a) return;
    free(a->params);
    free(a->grads);
    free(a->tensors);
    free(a->a_off);
    free(a->xa);
    free(a->dxa);
    free(a->xd);
    free(a->tmp);
    free(a->gemm_ws);
    free(a);
}

int lora_find_tensor(const lora *a, const char *name) {
    for (int i = 0; i < a->n_tensors; i++)
        if (!strcmp(a->tensors[i].name, name)) return i;
    return -1;
}

static void ensure_rows(lora *a, int N) {
    if (N <= a->N_cap) return;
    size_t r = (size_t)a->cfg.r, C4 = 4 * (size_t)a->n_embd;
    free(a->xa), free(a->dxa), free(a->xd), free(a->tmp);
    a->xa = xmalloc(xmul(slot(a->n_layer, 0) * (size_t)N * r, sizeof(float)));
    a->dxa = xmalloc(xmul((size_t)N * r, sizeof(float)));
    a->xd = a->cfg.dropout > 0 ? xmalloc(xmul((size_t)N * C4, sizeof(float))) : NULL;
    a->tmp = a->cfg.dropout > 0 ? xmalloc(xmul((size_t)N * C4, sizeof(float))) : NULL;
    a->N_cap = N;
}

/* kgemm workspaces for `threads` calls at once, 64-byte aligned (lib/model/gemm.h). */
static float *new_workspaces(int threads) {
    size_t bytes = xmul(xmul((size_t)threads, kgemm_workspace_floats()), sizeof(float));
    float *ws = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!ws) kiln_die(EX_KILN_SOFTWARE, "out of memory (%zu bytes)", bytes);
    return ws;
}

static void ensure_workspaces(lora *a, int threads) {
    if (threads <= a->gemm_threads) return;
    free(a->gemm_ws);
    a->gemm_ws = new_workspaces(threads);
    a->gemm_threads = threads;
}

/* ---- forward and backward ------------------------------------------------------------- */

typedef struct lora_job {
    lora *a;
    int layer, in, out, N;
    lora_target t;
    const float *x, *A, *B, *dy;
    float *y, *xa, *dx, *dA, *dB;
    bool drop; /* dropout on this pass */
} lora_job;

static float *ws_of(const lora_job *j, int tid) {
    return j->a->gemm_ws + (size_t)tid * kgemm_workspace_floats();
}

/* dst (+)= src * mask for row n, the mask (1/(1-p) or 0 per element) regenerated from
 * (seed, pass, layer, target, row): xorshift seeded per row, so any thread split draws the
 * same numbers and backward sees forward's mask. */
static void dropout_row(const lora_job *j, size_t n, const float *src, float *dst, bool add) {
    uint64_t s = krng_mix64(j->a->seed ^ krng_mix64(j->a->pass * 0x9e3779b97f4a7c15ull ^
                                                    (slot(j->layer, j->t) << 40) ^ n)) |
                 1;
    float p = j->a->cfg.dropout, keep = 1.0f / (1.0f - p);
    uint32_t threshold = (uint32_t)((double)p * 4294967296.0);
    for (int i = 0; i < j->in; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        float v = (uint32_t)(s >> 32) < threshold ? 0.0f : src[i] * keep;
        dst[i] = add ? dst[i] + v : v;
    }
}

/* The rows [lo, hi) of the dropped input (x itself without dropout). */
static const float *input_rows(const lora_job *j, size_t lo, size_t hi) {
    if (!j->drop) return j->x + lo * j->in;
    for (size_t n = lo; n < hi; n++)
        dropout_row(j, n, j->x + n * j->in, j->a->xd + n * j->in, false);
    return j->a->xd + lo * j->in;
}

static void forward_task(void *ctx, int tid, int nt) {
    const lora_job *j = ctx;
    int r = j->a->cfg.r;
    size_t lo, hi;
    kpool_range((size_t)j->N, 16, tid, nt, &lo, &hi);
    if (lo == hi) return;
    int n = (int)(hi - lo);
    const float *x = input_rows(j, lo, hi);
    float *xa = j->xa + lo * r;
    kgemm(false, true, n, r, j->in, 1.0f, x, j->in, j->A, j->in, 0.0f, xa, r, ws_of(j, tid));
    kgemm(false, true, n, j->out, r, j->a->scale, xa, r, j->B, r, 1.0f, j->y + lo * j->out, j->out,
          ws_of(j, tid));
}

static lora_job job_for(lora *a, int layer, lora_target t, const float *x, int N) {
    lora_job j = {.a = a, .layer = layer, .t = t, .x = x, .N = N};
    lora_dims(t, a->n_embd, &j.in, &j.out);
    size_t off = a->a_off[slot(layer, t)];
    j.A = a->params + off;
    j.B = j.A + (size_t)a->cfg.r * j.in;
    j.dA = a->grads + off;
    j.dB = j.dA + (size_t)a->cfg.r * j.in;
    j.xa = a->xa + slot(layer, t) * (size_t)a->N_cap * a->cfg.r;
    j.drop = a->training && a->cfg.dropout > 0;
    return j;
}

static bool adapted(const lora *a, int layer, lora_target t) {
    return layer >= 0 && layer < a->n_layer && a->a_off[slot(layer, t)] != SIZE_MAX;
}

/* The first adapted target of layer 0 starts a new forward pass. */
static bool first_slot(const lora *a, int layer, lora_target t) {
    if (layer != 0) return false;
    for (int k = 0; k < (int)t; k++)
        if (adapted(a, 0, k)) return false;
    return true;
}

void lora_forward(lora *a, kpool *pool, int layer, lora_target t, const float *x, float *y, int N) {
    if (!adapted(a, layer, t)) return;
    if (first_slot(a, layer, t)) a->pass++;
    ensure_rows(a, N);
    ensure_workspaces(a, kpool_size(pool));
    lora_job j = job_for(a, layer, t, x, N);
    j.y = y;
    kpool_run(pool, forward_task, &j);
}

/* Rows: dxa = s dy B, dx += (dxa A) * mask; regenerates the dropped input for dA. */
static void backward_rows_task(void *ctx, int tid, int nt) {
    const lora_job *j = ctx;
    int r = j->a->cfg.r;
    size_t lo, hi;
    kpool_range((size_t)j->N, 16, tid, nt, &lo, &hi);
    if (lo == hi) return;
    int n = (int)(hi - lo);
    float *dxa = j->a->dxa + lo * r;
    kgemm(false, false, n, r, j->out, j->a->scale, j->dy + lo * j->out, j->out, j->B, r, 0.0f, dxa,
          r, ws_of(j, tid));
    input_rows(j, lo, hi); /* fills xd with dropout; the column job reads it */
    if (!j->dx) return;
    if (!j->drop) {
        kgemm(false, false, n, j->in, r, 1.0f, dxa, r, j->A, j->in, 1.0f, j->dx + lo * j->in, j->in,
              ws_of(j, tid));
        return;
    }
    float *tmp = j->a->tmp + lo * j->in;
    kgemm(false, false, n, j->in, r, 1.0f, dxa, r, j->A, j->in, 0.0f, tmp, j->in, ws_of(j, tid));
    for (size_t k = lo; k < hi; k++)
        dropout_row(j, k, tmp + (k - lo) * j->in, j->dx + k * j->in, true);
}

/* Columns: dA[:, cols] += dxa^T xd[:, cols];  rows of B: dB[rows] += s dy[:, rows]^T xa. */
static void backward_weights_task(void *ctx, int tid, int nt) {
    const lora_job *j = ctx;
    int r = j->a->cfg.r;
    const float *xd = j->drop ? j->a->xd : j->x;
    size_t lo, hi;
    kpool_range((size_t)j->in, 16, tid, nt, &lo, &hi);
    if (lo < hi)
        kgemm(true, false, r, (int)(hi - lo), j->N, 1.0f, j->a->dxa, r, xd + lo, j->in, 1.0f,
              j->dA + lo, j->in, ws_of(j, tid));
    kpool_range((size_t)j->out, 16, tid, nt, &lo, &hi);
    if (lo < hi)
        kgemm(true, false, (int)(hi - lo), r, j->N, j->a->scale, j->dy + lo, j->out, j->xa, r, 1.0f,
              j->dB + lo * r, r, ws_of(j, tid));
}

void lora_backward(lora *a, kpool *pool, int layer, lora_target t, const float *x, const float *dy,
                   float *dx, int N) {
    if (!adapted(a, layer, t)) return;
    if (N > a->N_cap) kiln_die(EX_KILN_SOFTWARE, "lora_backward without its forward");
    ensure_workspaces(a, kpool_size(pool));
    lora_job j = job_for(a, layer, t, x, N);
    j.dy = dy;
    j.dx = dx;
    kpool_run(pool, backward_rows_task, &j);
    kpool_run(pool, backward_weights_task, &j);
}

/* ---- merge ---------------------------------------------------------------------------- */

static float *weight_of(gpt *m, lora_target t, int layer) {
    size_t C = (size_t)m->cfg.n_embd, l = (size_t)layer;
    switch (t) {
    case LORA_QKV:
        return m->p.qkvw + l * C * 3 * C;
    case LORA_PROJ:
        return m->p.attprojw + l * C * C;
    case LORA_FC:
        return m->p.fcw + l * C * 4 * C;
    default:
        return m->p.fcprojw + l * 4 * C * C;
    }
}

void lora_merge(const lora *a, gpt *m) {
    if (m->cfg.n_layer != a->n_layer || m->cfg.n_embd != a->n_embd)
        kiln_die(EX_KILN_SOFTWARE, "lora_merge: adapter and model shapes differ");
    int r = a->cfg.r;
    float *ws = new_workspaces(1);
    for (int l = 0; l < a->n_layer; l++)
        for (int t = 0; t < LORA_N_TARGETS; t++) {
            if (!adapted(a, l, t)) continue;
            int in, out;
            lora_dims(t, a->n_embd, &in, &out);
            const float *A = a->params + a->a_off[slot(l, t)], *B = A + (size_t)r * in;
            /* W[in, out] += s A^T[in, r] B^T[r, out] */
            kgemm(true, true, in, out, r, a->scale, A, in, B, r, 1.0f, weight_of(m, t, l), out, ws);
        }
    free(ws);
}
