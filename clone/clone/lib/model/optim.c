/* optim — AdamW (PyTorch semantics), clipping, schedule, NaN/Inf guard. */
#include "model/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

adamw *adamw_create(size_t n) {
    adamw *o = xcalloc(1, sizeof *o);
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    o->clip_norm = 1.0f;
    o->n = n;
    o->m = xcalloc(n ? n : 1, sizeof(float));
    o->v = xcalloc(n ? n : 1, sizeof(float));
    return o;
}

void adamw_free(adamw *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o);
}

double lr_at(uint64_t step, double lr, uint64_t warmup, uint64_t total) {
    if (step < warmup) return lr * (double)(step + 1) / (double)warmup;
    double min_lr = lr / 10.0;
    if (total <= warmup) return lr;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    if (progress > 1.0) progress = 1.0;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(M_PI * progress));
}

typedef struct norm_job {
    const float *g;
    size_t n;
    double *partial;
} norm_job;

static void norm_task(void *ctx, int tid, int nt) {
    norm_job *j = ctx;
    size_t lo, hi;
    kpool_range(j->n, 64, tid, nt, &lo, &hi);
    double sum = 0.0;
    for (size_t i = lo; i < hi; i += 1024) { /* float blocks, double across blocks */
        size_t end = i + 1024 < hi ? i + 1024 : hi;
        float s = 0.0f;
        for (size_t k = i; k < end; k++) s += j->g[k] * j->g[k];
        sum += s;
    }
    j->partial[tid] = sum;
}

double grad_global_norm(kpool *pool, const float *g, size_t n) {
    double partial[kpool_size(pool)];
    norm_job j = {g, n, partial};
    kpool_run(pool, norm_task, &j);
    double sum = 0.0;
    for (int t = 0; t < kpool_size(pool); t++) sum += partial[t];
    return sqrt(sum);
}

int first_nonfinite(const float *buf, const gpt_tensor *tensors, int n_tensors) {
    for (int i = 0; i < n_tensors; i++) {
        const float *x = buf + tensors[i].offset;
        for (size_t k = 0; k < tensors[i].numel; k++)
            if (!isfinite(x[k])) return i;
    }
    return -1;
}

typedef struct adam_job {
    adamw *o;
    float *p;
    const float *g;
    const gpt_tensor *tensors;
    int n_tensors;
    const kparam *ps; /* or a list of tensors in their own buffers */
    float lr, gscale, bc1, bc2;
} adam_job;

/* Elements [lo, hi) of one tensor: p, g and the moments all start at that tensor. */
static void adam_span(const adam_job *j, float *p, const float *g, float *m, float *v, size_t lo,
                      size_t hi, bool decay) {
    const adamw *o = j->o;
    float b1 = o->beta1, b2 = o->beta2, lr = j->lr, eps = o->eps;
    float keep = decay ? 1.0f - lr * o->weight_decay : 1.0f;
    float step = lr / j->bc1, inv_sqrt_bc2 = 1.0f / sqrtf(j->bc2);
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] * j->gscale;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] = p[i] * keep - step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
    }
}

static void adam_task(void *ctx, int tid, int nt) {
    const adam_job *j = ctx;
    size_t lo, hi;
    kpool_range(j->o->n, 64, tid, nt, &lo, &hi);
    for (int t = 0; t < j->n_tensors; t++) {
        size_t a = j->tensors[t].offset, b = a + j->tensors[t].numel;
        if (a < lo) a = lo;
        if (b > hi) b = hi;
        if (a < b) adam_span(j, j->p, j->g, j->o->m, j->o->v, a, b, j->tensors[t].decay);
    }
}

/* The same split of the compact moment range, each tensor at its own address. */
static void adam_list_task(void *ctx, int tid, int nt) {
    const adam_job *j = ctx;
    size_t lo, hi;
    kpool_range(j->o->n, 64, tid, nt, &lo, &hi);
    for (int t = 0; t < j->n_tensors; t++) {
        const kparam *k = &j->ps[t];
        size_t a = k->moff, b = a + k->numel;
        if (a < lo) a = lo;
        if (b > hi) b = hi;
        if (a < b)
            adam_span(j, k->p, k->g, j->o->m + k->moff, j->o->v + k->moff, a - k->moff, b - k->moff,
                      k->decay);
    }
}

static adam_job adam_job_for(adamw *o, double lr, double grad_norm) {
    o->step++;
    double gscale = 1.0;
    if (o->clip_norm > 0 && grad_norm > o->clip_norm) gscale = o->clip_norm / (grad_norm + 1e-6);
    return (adam_job){.o = o,
                      .lr = (float)lr,
                      .gscale = (float)gscale,
                      .bc1 = (float)(1.0 - pow(o->beta1, (double)o->step)),
                      .bc2 = (float)(1.0 - pow(o->beta2, (double)o->step))};
}

void adamw_update(adamw *o, kpool *pool, float *params, const float *grads,
                  const gpt_tensor *tensors, int n_tensors, double lr, double grad_norm) {
    adam_job j = adam_job_for(o, lr, grad_norm);
    j.p = params;
    j.g = grads;
    j.tensors = tensors;
    j.n_tensors = n_tensors;
    kpool_run(pool, adam_task, &j);
}

void adamw_update_params(adamw *o, kpool *pool, const kparam *ps, int n, double lr,
                         double grad_norm) {
    adam_job j = adam_job_for(o, lr, grad_norm);
    j.ps = ps;
    j.n_tensors = n;
    kpool_run(pool, adam_list_task, &j);
}

double params_grad_norm(kpool *pool, const kparam *ps, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double t = grad_global_norm(pool, ps[i].g, ps[i].numel);
        sum += t * t;
    }
    return sqrt(sum);
}

int params_first_nonfinite(const kparam *ps, int n) {
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < ps[i].numel; k++)
            if (!isfinite(ps[i].g[k])) return i;
    return -1;
}
