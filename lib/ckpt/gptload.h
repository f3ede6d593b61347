/* gptload — a trained model ready to run, from wherever it comes: a `ckpt` record passing
 * in the stream (kiln eval) or a checkpoint file (kiln sample, kiln eval --ckpt), with its
 * tokenizer.  Every tensor is checked against the shape the config implies, so a file whose
 * shapes do not match its config is refused (65) instead of being read wrongly. */
#ifndef KILN_GPTLOAD_H
#define KILN_GPTLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "model/gpt.h"
#include "model/pool.h"
#include "stream/stream.h"
#include "data/tokenizer.h"

typedef struct kmodel {
    gpt *m;
    ktokenizer tok;
    bool has_tok;  /* the checkpoint carried a tokenizer */
    uint64_t step; /* of the checkpoint */
} kmodel;

/* From a ckpt record (config, tokenizer, step, tensors).  Exits 65 on anything malformed. */
void kmodel_from_record(kmodel *km, const krec *r, kpool *pool);
/* From a checkpoint file (lib/ckpt/store.h); exits 65/74 naming the file. */
void kmodel_from_file(kmodel *km, const char *path, kpool *pool);
void kmodel_free(kmodel *km);
/* Fold a LoRA adapter file (lib/ckpt/adapter.h) into km's model: its base hash must be km's;
 * the adapter's tokenizer (it may add classes) and step replace km's.  Exits 65/74. */
void kmodel_apply_adapter(kmodel *km, const char *path);
/* A ckpt record of LoRA adapters (kadapter_is_record) folded into the base model file;
 * tokenizer and step from the record.  base NULL: exits 65 asking for it. */
void kmodel_from_adapter_record(kmodel *km, const krec *r, const char *base, kpool *pool);

/* Whether two tokenizers map tokens the same way (kind, levels/palette, specials, classes,
 * vocabulary); image shape is not compared. */
bool ktok_same(const ktokenizer *a, const ktokenizer *b);
/* "bytes, vocab 259" / "levels 16, 10 classes, vocab 29" into buf. */
void ktok_describe(const ktokenizer *t, char *buf, size_t n);

#endif
