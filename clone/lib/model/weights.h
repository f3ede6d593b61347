/* weights — operations on a whole model's weights that fine-tuning and adapter files share:
 * the hash that ties a LoRA adapter file to the base it was trained on, and a copy of a
 * model with more vocabulary rows (new class tokens, --add-class).
 *
 * Weights hash: FNV-1a 64 over the model's tensors in the model's order (each tensor: its
 * name, a NUL byte, then its F32 data little-endian), written "fnv1a64:<16 hex>"; a scalar
 * head (score.weight) does not count: it is grown fresh on a base, not part of it. */
#ifndef KILN_WEIGHTS_H
#define KILN_WEIGHTS_H

#include <stddef.h>

#include "model/gpt.h"

/* "fnv1a64:0123456789abcdef" of m's tensors into out (at least 25 bytes). */
void gpt_weights_hash(const gpt *m, char *out, size_t outsz);

/* A copy of base with `n_add` more vocabulary rows (token embeddings at the end of wte):
 * every other tensor copied, new row k a copy of row rows[k], or for -1 the mean of rows
 * [mean[0], mean[1]). */
gpt *gpt_grow_vocab(const gpt *base, int n_add, const int *rows, const int mean[2]);

/* A copy of base with the given head: a scalar head added (score.weight from gpt_create's
 * initialisation, for an adapter that carries its trained values) or dropped. */
gpt *gpt_with_head(const gpt *base, gpt_head head);

#endif
