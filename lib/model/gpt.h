/* gpt — the model core: a GPT-2 style decoder-only transformer with hand-written forward
 * and backward passes (llm.c style), matrix products through lib/model/gemm (kiln's AVX-512 SGEMM).
 *
 * Token + learned position embeddings, pre-LayerNorm blocks (causal multi-head
 * self-attention, tanh-GELU 4x MLP), final LayerNorm, output head tied to wte.  Three
 * heads share the trunk: the language model (next-token cross-entropy honouring a loss
 * mask), pooled hidden states (custom embeddings) and a scalar head on the pooled state
 * (reward model, PPO value).
 *
 * All parameters live in one contiguous float buffer, all gradients in another of the same
 * layout; the named views below point into them.  Per-layer tensors are stacked ([L, ...]),
 * so every Hugging Face tensor ("transformer.h.3.attn.c_attn.weight") is one contiguous
 * slice, listed in m->tensors.  Weights use the HF Conv1D layout [in, out]: y = x W + b.
 *
 * Typical step:  gpt_zero_grad(m); loss = gpt_forward(m, x, y, mask, B, T);
 *                gpt_backward(m, 1.0f); ... optimizer on m->params / m->grads. */
#ifndef KILN_GPT_H
#define KILN_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/pool.h"

typedef enum { GPT_HEAD_LM = 0, GPT_HEAD_SCALAR = 1 } gpt_head;
typedef enum { GPT_POOL_LAST = 0, GPT_POOL_MEAN = 1 } gpt_pool_mode;

typedef struct gpt_config {
    int n_layer, n_embd, n_head, n_ctx, vocab;
    gpt_head head; /* GPT_HEAD_SCALAR adds score.weight [1, n_embd] (HF sequence classifier) */
} gpt_config;

/* Views into the parameter (or gradient) buffer. Per-layer tensors are [L, ...]. */
typedef struct gpt_views {
    float *wte;      /* [V, C] token embedding, also the output head */
    float *wpe;      /* [n_ctx, C] */
    float *ln1w;     /* [L, C] */
    float *ln1b;     /* [L, C] */
    float *qkvw;     /* [L, C, 3C]   attn.c_attn */
    float *qkvb;     /* [L, 3C] */
    float *attprojw; /* [L, C, C]    attn.c_proj */
    float *attprojb; /* [L, C] */
    float *ln2w;     /* [L, C] */
    float *ln2b;     /* [L, C] */
    float *fcw;      /* [L, C, 4C]   mlp.c_fc */
    float *fcb;      /* [L, 4C] */
    float *fcprojw;  /* [L, 4C, C]   mlp.c_proj */
    float *fcprojb;  /* [L, C] */
    float *lnfw;     /* [C] */
    float *lnfb;     /* [C] */
    float *scorew;   /* [1, C] scalar head only, else NULL */
} gpt_views;

/* One Hugging Face named tensor: a contiguous slice of the buffers. */
typedef struct gpt_tensor {
    char name[64];
    size_t offset, numel;
    int ndim;
    uint64_t shape[2];
    bool decay; /* a matrix: AdamW applies weight decay to it */
} gpt_tensor;

typedef struct gpt_acts gpt_acts;
struct lora;

typedef struct gpt {
    gpt_config cfg;
    size_t n_params;
    float *params, *grads; /* n_params floats each, 64-byte aligned */
    gpt_views p, g;
    gpt_tensor *tensors;
    int n_tensors;
    kpool *pool;      /* borrowed */
    gpt_acts *acts;   /* activations of the last forward, sized for (B, T) */
    int B, T;         /* of the last forward */
    float loss;       /* mean masked cross-entropy of the last LM forward */
    float mask_count; /* positions that counted in it */
    /* Fine-tuning (lib/run/finetune.h, lib/model/lora.h); NULL for plain training.  A frozen tensor
     * gets no weight-gradient GEMM, and backward stops below the lowest block that has
     * anything to train; its gradient buffer is left undefined (optimizers skip it). */
    const bool *frozen; /* [n_tensors] */
    struct lora *lora;  /* adapters on the block linears (forward and backward call them) */
} gpt;

/* A description of what is wrong with cfg, or NULL when it is usable. */
const char *gpt_config_check(const gpt_config *cfg);

/* A model with GPT-2 initialisation from `seed` (N(0, 0.02), residual projections scaled
 * by 1/sqrt(2L), zero biases, unit LayerNorm gains).  Also sets OpenBLAS to one thread:
 * the pool is the only threading layer. */
gpt *gpt_create(const gpt_config *cfg, kpool *pool, uint64_t seed);
void gpt_free(gpt *m);
/* The tensor table a model of cfg has (names, shapes, offsets), without the model: for
 * checking a checkpoint against its config.  malloc'd, *n entries; cfg must pass
 * gpt_config_check. */
gpt_tensor *gpt_tensor_table(const gpt_config *cfg, int *n);

/* Index of the tensor with that name, or -1. */
int gpt_find_tensor(const gpt *m, const char *name);

void gpt_zero_grad(gpt *m);

/* Language model.  x, y: [B, T] token ids (y may be NULL: logits only), mask: [B, T],
 * 1 = the target at this position counts (NULL: all count).  Returns the mean
 * cross-entropy over the counted positions (0 when none count, NAN when y is NULL). */
float gpt_forward(gpt *m, const int32_t *x, const int32_t *y, const uint8_t *mask, int B, int T);
/* [B, T, V] logits of the last gpt_forward (until gpt_backward, which reuses them). */
const float *gpt_logits(const gpt *m);
/* Accumulate into m->grads the gradient of scale * loss of the last gpt_forward. */
void gpt_backward(gpt *m, float scale);

/* Trunk only (no logits): for pooling and the scalar head. */
void gpt_forward_hidden(gpt *m, const int32_t *x, int B, int T);
/* Final hidden states (after ln_f) [B, T, C] of the last forward. */
const float *gpt_hidden(const gpt *m);

/* Pooled hidden state per row, out [B, C]: the last position whose mask is 1 (or T-1 with
 * no mask), or the mean over mask-1 positions.  After gpt_forward or gpt_forward_hidden. */
void gpt_pool(gpt *m, const uint8_t *mask, gpt_pool_mode mode, float *out);
/* Accumulate the gradient of sum(dpooled * pooled) of the last gpt_pool. */
void gpt_pool_backward(gpt *m, const float *dpooled);

/* Scalar head: values[b] = score.weight . pooled[b] (GPT_HEAD_SCALAR models). */
void gpt_scalar(gpt *m, const uint8_t *mask, gpt_pool_mode mode, float *values);
/* Accumulate the gradient of sum(dvalues * values) of the last gpt_scalar. */
void gpt_scalar_backward(gpt *m, const float *dvalues);

/* Model FLOPs per token of one training step: 6 * params + 12 * L * T * C. */
double gpt_flops_per_token(const gpt_config *cfg, int T);

#endif
