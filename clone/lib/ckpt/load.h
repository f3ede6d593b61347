/* load — a model from a checkpoint, for every stage that trains from one or runs one.
 *
 * Two ways in: a `ckpt` record passing in the stream (kiln eval) or a checkpoint file (kiln
 * sample, kiln eval --ckpt, kiln train --init).  Either way the shape comes from the config
 * (lib/ckpt/config.h) and every tensor is checked against it, so a file whose shapes
 * disagree with its config is refused (65) instead of being read wrongly.  The functions
 * here exit with the message and code (65 bad contents, 74 unreadable): each is called once
 * at a stage's start, where there is nothing to save. */
#ifndef KILN_LOAD_H
#define KILN_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "ckpt/store.h"
#include "data/tokenizer.h"
#include "model/gpt.h"
#include "model/optim.h"
#include "model/pool.h"
#include "stream/stream.h"

/* ---- into a model being built (kiln train --init) ------------------------------------------ */

/* Overwrite the fields of cfg that the checkpoint's config has; the others stay. */
void gpt_config_from_ckpt(const kckpt *ck, gpt_config *cfg);

/* Copy every tensor of m from ck (score.weight may be absent: a new scalar head keeps its
 * initialisation), and, when opt is given and ck has optimizer state, the moments and the
 * optimizer step.  The moments are laid out as the model's tensors (a full model).  An
 * optimizer state without the moments of a tensor ck has is refused (65, naming it):
 * zeros would change the run silently (pass opt NULL to start every moment at zero). */
void gpt_load_ckpt(gpt *m, const kckpt *ck, adamw *opt);

/* ---- a runnable model with its tokenizer -------------------------------------------------- */

typedef struct kmodel {
    gpt *m;
    ktokenizer tok;
    bool has_tok;  /* the checkpoint carried a tokenizer */
    uint64_t step; /* of the checkpoint */
} kmodel;

/* From a ckpt record (config, tokenizer, step, tensors). */
void kmodel_from_record(kmodel *km, const krec *r, kpool *pool);
/* From a checkpoint file (lib/ckpt/store.h). */
void kmodel_from_file(kmodel *km, const char *path, kpool *pool);
void kmodel_free(kmodel *km);
/* Fold a LoRA adapter file (lib/ckpt/adapter.h) into km's model: its base hash must be km's;
 * the adapter's tokenizer (it may add classes) and step replace km's. */
void kmodel_apply_adapter(kmodel *km, const char *path);
/* A ckpt record of LoRA adapters (kadapter_is_record) folded into the base model file;
 * tokenizer and step from the record.  base NULL: exits 65 asking for it. */
void kmodel_from_adapter_record(kmodel *km, const krec *r, const char *base, kpool *pool);

#endif
