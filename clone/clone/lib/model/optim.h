/* optim — AdamW with decoupled weight decay on matrices only, global-norm gradient
 * clipping, the warm-up + cosine learning-rate schedule, and the NaN/Inf guard that names
 * the first tensor that went bad.  Works on the model's flat parameter/gradient buffers;
 * the moment buffers m and v share their layout (and so the tensor names). */
#ifndef KILN_OPTIM_H
#define KILN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "model/gpt.h"
#include "model/pool.h"

typedef struct adamw {
    float beta1, beta2, eps, weight_decay, clip_norm;
    uint64_t step; /* updates applied so far (bias correction uses step + 1) */
    size_t n;
    float *m, *v; /* first and second moments, n floats each, zeroed */
} adamw;

/* β1 0.9, β2 0.95, eps 1e-8, weight decay 0.1, clipping at global norm 1.0. */
adamw *adamw_create(size_t n);
void adamw_free(adamw *o);

/* Warm-up over `warmup` steps (linear, from lr/warmup), then cosine decay to lr/10 at
 * step `total`. step is 0-based. */
double lr_at(uint64_t step, double lr, uint64_t warmup, uint64_t total);

/* sqrt(sum g^2) over the whole buffer, accumulated in double. */
double grad_global_norm(kpool *pool, const float *g, size_t n);

/* The first tensor with a NaN or Inf in buf, or -1 when all are finite. */
int first_nonfinite(const float *buf, const gpt_tensor *tensors, int n_tensors);

/* One AdamW update of params from grads, the gradient scaled by min(1, clip / norm);
 * decay applies to the tensors marked decay. */
void adamw_update(adamw *o, kpool *pool, float *params, const float *grads,
                  const gpt_tensor *tensors, int n_tensors, double lr, double grad_norm);

/* ---- a list of trainable tensors (fine-tuning: frozen tensors, LoRA adapters) -------- */

/* One tensor the optimizer updates: its values and gradient, wherever they live (the
 * model's buffers or an adapter's), and its slice [moff, moff + numel) of the moments.
 * The moments are compact: frozen tensors take no room in them. */
typedef struct kparam {
    const char *name;
    float *p;
    const float *g;
    size_t numel, moff;
    bool decay;
} kparam;

/* sqrt of the sum of g^2 over the listed gradients. */
double params_grad_norm(kpool *pool, const kparam *ps, int n);
/* The first listed tensor with a NaN or Inf gradient, or -1. */
int params_first_nonfinite(const kparam *ps, int n);
/* adamw_update over a list; o->n must be the sum of their numel. */
void adamw_update_params(adamw *o, kpool *pool, const kparam *ps, int n, double lr,
                         double grad_norm);

#endif
