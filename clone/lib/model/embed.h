/* embed — a model's embedding of token rows: the final hidden states pooled over each row
 * (mean over its tokens, or its last token) and L2-normalised, as sentence-transformers
 * embeds a text.  Rows of different lengths travel padded to one length T with a mask
 * (1 = a token).  For `kiln embed`, `kiln search` and retrieval evaluation; training goes
 * through lib/run/contrastive.h, which pools the same way. */
#ifndef KILN_EMBED_H
#define KILN_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/gpt.h"

/* out [B, C]: row b's pooled, normalised state.  x, mask [B, T]; T <= n_ctx. */
void gpt_embed(gpt *m, const int32_t *x, const uint8_t *mask, int B, int T, gpt_pool_mode mode,
               float *out);

/* v /= |v| for each of n rows of width C (a zero row stays zero). */
void l2_normalise_rows(float *v, int64_t n, int C);

/* ---- many rows of any length --------------------------------------------------------------- */

/* Rows gathered until a forward's worth, then embedded together: each row truncated to the
 * model's context, right-padded to the longest (the causal model's states of real tokens
 * do not see the padding; the mask keeps it out of the pooling). */
typedef struct kembedder kembedder;

kembedder *kembedder_new(gpt *m, gpt_pool_mode mode, int rows);
void kembedder_free(kembedder *e);
/* Add a row of n tokens (n >= 1); returns its index in the batch. */
int kembedder_add(kembedder *e, const int32_t *tokens, size_t n);
int kembedder_rows(const kembedder *e);
bool kembedder_full(const kembedder *e);
/* Embed the rows added since the last run: [rows, C], valid until the next run.  Then the
 * batch is empty again. */
const float *kembedder_run(kembedder *e, int *rows);

#endif
