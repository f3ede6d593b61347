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
 *                gpt_backward(m, 1.0f); ... optimizer on m->params / m->grads.
 * Preference and RL objectives (DPO, PPO) take per-token log-probabilities of the targets
 * (gpt_token_logprobs, gpt_seq_logprobs) and a weight per position back
 * (gpt_backward_weighted).  Generation decodes many sequences at once on the same forward
 * code with a key/value cache (gpt_kv, gpt_decode; sampling in lib/model/generate.h). */
#ifndef KILN_GPT_H
#define KILN_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/pool.h"

typedef enum { GPT_HEAD_LM = 0, GPT_HEAD_SCALAR = 1 } gpt_head;
typedef enum { GPT_POOL_LAST = 0, GPT_POOL_MEAN = 1, GPT_POOL_WEIGHTED = 2 } gpt_pool_mode;
/* The modes' names, in the enum's order ("last", "mean", "weightedmean": sentence-
 * transformers' pooling names), NULL-ended for an option table; and a name's mode. */
extern const char *const gpt_pool_names[];
gpt_pool_mode gpt_pool_parse(const char *name);

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

/* Per-token log-probabilities for DPO, PPO and reward models, from the last gpt_forward with
 * targets (every position, counted by the mask or not), [B, T] each:
 *   logp[b, t]    = log p(y[b, t] | x[b, <= t])
 *   entropy[b, t] = -sum_v p(v | x[b, <= t]) log p(v | x[b, <= t])
 * Either may be NULL.  Computed by the forward in the same pass as its softmax, so they stay
 * valid after gpt_backward, until the next forward. */
void gpt_token_logprobs(const gpt *m, float *logp, float *entropy);
/* out[b] = sum_t mask[b, t] logp[b, t]: each sequence's log-probability of its counted
 * targets (the forward's mask; NULL counted all), [B]. */
void gpt_seq_logprobs(const gpt *m, float *out);
/* Accumulate into m->grads the gradient of sum_{b,t} w[b, t] logp[b, t] of the last gpt_forward
 * with targets, w [B, T] (0 where a position does not count; the mask is not applied).
 * gpt_backward(m, s) is the case w = -s mask / count.  Frozen tensors and LoRA adapters are
 * handled as gpt_backward handles them, and results do not depend on the thread count. */
void gpt_backward_weighted(gpt *m, const float *w);
/* gpt_backward_weighted plus a second loss on the final hidden states (a value head, PPO):
 * dhidden [B, T, C] is its gradient in gpt_hidden's output, added where the LM head's
 * gradient meets the trunk, so one backward through the trunk serves both. */
void gpt_backward_weighted_hidden(gpt *m, const float *w, const float *dhidden);

/* Trunk only (no logits): for pooling and the scalar head. */
void gpt_forward_hidden(gpt *m, const int32_t *x, int B, int T);
/* Final hidden states (after ln_f) [B, T, C] of the last forward. */
const float *gpt_hidden(const gpt *m);

/* Pooled hidden state per row, out [B, C]: the last position whose mask is 1 (or T-1 with
 * no mask), the mean over mask-1 positions, or their mean weighted by position (1, 2, 3, ...:
 * SGPT's weighted mean, for a causal model whose later states have seen more of the row).
 * After gpt_forward or gpt_forward_hidden. */
void gpt_pool(gpt *m, const uint8_t *mask, gpt_pool_mode mode, float *out);
/* Accumulate the gradient of sum(dpooled * pooled) of the last gpt_pool. */
void gpt_pool_backward(gpt *m, const float *dpooled);

/* Scalar head: values[b] = score.weight . pooled[b] (GPT_HEAD_SCALAR models). */
void gpt_scalar(gpt *m, const uint8_t *mask, gpt_pool_mode mode, float *values);
/* Accumulate the gradient of sum(dvalues * values) of the last gpt_scalar. */
void gpt_scalar_backward(gpt *m, const float *dvalues);

/* ---- decoding: a key/value cache, many sequences at once --------------------------------- */

/* Keys and values of every block for `rows` sequences of up to `positions` tokens each
 * (<= 0 or past n_ctx: n_ctx), with the scratch gpt_decode runs on (sized for m's pool):
 * 2 * L * rows * positions * C floats, plus about 16 * C floats per token of a call (up to
 * 1024 tokens at a time). */
typedef struct gpt_kv gpt_kv;
gpt_kv *gpt_kv_create(const gpt *m, int rows, int positions);
void gpt_kv_free(gpt_kv *kv);
int gpt_kv_positions(const gpt_kv *kv);
/* Tokens sequence `row` holds: the position its next token takes. */
int gpt_kv_len(const gpt_kv *kv, int row);
/* Pack m's linear-layer weights for kv's decoding once (about the model's size again), so
 * that a run of gpt_decode steps does not pack them at every step in every thread; the
 * packing holds until gpt_kv_unpack_weights, and the weights must not change meanwhile
 * (between two generation runs a policy may train: pack again after).  Same results. */
void gpt_kv_pack_weights(gpt *m, gpt_kv *kv);
void gpt_kv_unpack_weights(gpt_kv *kv);

/* Run n tokens through the model on its own kernels (the training forward's LayerNorm, GEMMs,
 * GELU, attention; adapters in m->lora without dropout): token i belongs to sequence rows[i]
 * (NULL: i) at position pos[i] (NULL: the next one, after the sequence's earlier tokens in
 * this call).  A sequence's tokens in one call are adjacent, at consecutive positions,
 * starting at or below what it holds (below: the sequence is rewound there); sequences not
 * named cost nothing.  Their keys and values go into kv; logits [n, V] (NULL: none) get each
 * token's next-token logits, equal to gpt_forward's on the same sequence.  Leaves m->acts
 * alone, but a LoRA adapter's saved inputs are overwritten: run its backward first. */
void gpt_decode(gpt *m, gpt_kv *kv, int n, const int32_t *tokens, const int *rows, const int *pos,
                float *logits);

/* Model FLOPs per token of one training step: 6 * params + 12 * L * T * C. */
double gpt_flops_per_token(const gpt_config *cfg, int T);

/* The tensors a model of this shape has (names, offsets, shapes), without allocating the
 * model: *n of them (malloc'd), *n_params floats in all.  For planning (lib/run/estimate.h). */
gpt_tensor *gpt_tensors_of(const gpt_config *cfg, int *n, size_t *n_params);

#endif
