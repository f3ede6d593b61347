/* embed — a model's embedding of token rows: the final hidden states pooled over each row
 * (mean over its tokens, or its last token) and L2-normalised, as sentence-transformers
 * embeds a text.  Rows of different lengths travel padded to one length T with a mask
 * (1 = a token).  For `kiln embed`, `kiln search` and retrieval evaluation; training goes
 * through lib/run/contrastive.h, which pools the same way. */
#ifndef KILN_EMBED_H
#define KILN_EMBED_H

#include <stdint.h>

#include "model/gpt.h"

/* out [B, C]: row b's pooled, normalised state.  x, mask [B, T]; T <= n_ctx. */
void gpt_embed(gpt *m, const int32_t *x, const uint8_t *mask, int B, int T, gpt_pool_mode mode,
               float *out);

/* v /= |v| for each of n rows of width C (a zero row stays zero). */
void l2_normalise_rows(float *v, int64_t n, int C);

#endif
