/* lora — low-rank adapters (LoRA, Hu et al. 2021) on the linear layers of a gpt's blocks.
 *
 * An adapted linear computes y = x W + b + s * drop(x) A^T B^T with A [r, in], B [out, r]
 * and s = alpha / r.  A starts Kaiming-uniform (bound 1/sqrt(in), as PEFT's
 * kaiming_uniform_(a=sqrt(5))), B at zero, so a fresh adapter leaves the model unchanged.
 * Only A and B train; the base weights stay frozen.
 *
 * Tensors use PEFT's names and layout, so a PEFT-aware loader can read them:
 *   base_model.model.transformer.h.N.attn.c_attn.lora_A.weight   [r, C]     (target qkv)
 *   base_model.model.transformer.h.N.attn.c_attn.lora_B.weight   [3C, r]
 *   ... attn.c_proj (proj: C -> C), mlp.c_fc (fc: C -> 4C), mlp.c_proj (fcproj: 4C -> C)
 * All adapters live in one parameter buffer and one gradient buffer, listed in `tensors`
 * like the model's.
 *
 * The model core calls lora_forward after each adapted linear's forward and lora_backward
 * after its backward (gpt->lora set); lora keeps x A^T of the last forward for that.
 * Dropout (training only) draws its mask from (seed, forward pass, layer, target, row), so
 * backward regenerates the mask instead of storing it. */
#ifndef KILN_LORA_H
#define KILN_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/gpt.h"
#include "model/pool.h"

typedef enum { LORA_QKV = 0, LORA_PROJ, LORA_FC, LORA_FCPROJ, LORA_N_TARGETS } lora_target;

typedef struct lora_config {
    int r;
    float alpha, dropout;
    unsigned targets; /* bit (1 << lora_target) per adapted linear */
} lora_config;

typedef struct lora {
    lora_config cfg;
    int n_layer, n_embd;
    float scale; /* alpha / r */
    size_t n_params;
    float *params, *grads;
    gpt_tensor *tensors; /* A then B per (layer, target), in buffer order */
    int n_tensors;
    size_t *a_off;   /* [L * LORA_N_TARGETS] offset of A in params, or SIZE_MAX when absent */
    bool training;   /* dropout applies only while true */
    uint64_t seed;   /* dropout masks */
    uint64_t pass;   /* forward passes so far (keys the dropout mask) */
    int N_cap;       /* rows the activation buffers hold */
    float *xa;       /* [L, LORA_N_TARGETS, N_cap, r] x A^T of the last forward */
    float *dxa;      /* [N_cap, r] backward scratch */
    float *xd, *tmp; /* [N_cap, 4C] dropped input and its gradient (dropout only) */
    float *gemm_ws;  /* [gemm_threads, kgemm_workspace_floats()] (lib/model/gemm.h) */
    int gemm_threads;
} lora;

/* "r=8,alpha=16,targets=qkv,proj,fc,fcproj,dropout=0.05" (targets also "all"; the items
 * after targets= that are not key=value are more targets).  Defaults: r 8, alpha 2r,
 * targets qkv,proj, dropout 0.  false with the reason in err. */
bool lora_parse(const char *spec, lora_config *cfg, char *err, size_t errsz);
/* "qkv,proj" for a targets bitmask, into out (32 bytes hold any). */
void lora_targets_str(unsigned targets, char *out, size_t outsz);

/* Adapters for a model shape, initialised from seed. */
lora *lora_create(const lora_config *cfg, const gpt_config *g, uint64_t seed);
void lora_free(lora *a);

/* The (in, out) widths of a target for a model of width C. */
void lora_dims(lora_target t, int C, int *in, int *out);
/* Index of a tensor by name, or -1. */
int lora_find_tensor(const lora *a, const char *name);

/* y[N, out] += s * drop(x) A^T B^T for (layer, target); a no-op when not adapted. */
void lora_forward(lora *a, kpool *pool, int layer, lora_target t, const float *x, float *y, int N);
/* After the base linear's backward: dx[N, in] += the adapter's input gradient (when dx is
 * not NULL) and the gradients of A and B accumulate, from dy [N, out] and the same x. */
void lora_backward(lora *a, kpool *pool, int layer, lora_target t, const float *x, const float *dy,
                   float *dx, int N);

/* Fold the adapters into the model's weights: W += s A^T B^T (Conv1D layout [in, out]). */
void lora_merge(const lora *a, gpt *m);

#endif
