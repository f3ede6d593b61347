/* gptckpt — a model from a checkpoint file: its shape from the config metadata, its weights
 * (and AdamW moments) by Hugging Face name.  For kiln train --init and any stage that runs
 * a trained model (eval, sampling).  Errors exit 65 naming the file and the tensor. */
#ifndef KILN_GPTCKPT_H
#define KILN_GPTCKPT_H

#include "ckpt/store.h"
#include "model/gpt.h"
#include "model/optim.h"

/* Fill the fields of cfg that the checkpoint's config has (n_layer, n_embd, n_head, n_ctx,
 * vocab; head "scalar" or "lm"); the others are left as they are. */
void gpt_config_from_ckpt(const kckpt *ck, gpt_config *cfg);

/* Copy every tensor of m from ck (score.weight may be absent: a new scalar head keeps its
 * initialisation), and, when opt is given and ck has optimizer state, the moments and the
 * optimizer step. */
void gpt_load_ckpt(gpt *m, const kckpt *ck, adamw *opt);

#endif
