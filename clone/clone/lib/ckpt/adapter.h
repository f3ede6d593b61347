/* adapter — LoRA adapter checkpoints: what `kiln train --lora` writes instead of a whole
 * model, and folding one into its base (kiln ckpt merge, eval/sample --adapter).
 *
 * An adapter checkpoint is an ordinary ckpt record / checkpoint file whose `tensors` are
 * the adapters (lib/model/lora.h names, plus transformer.wte.weight when --add-class grew the
 * vocabulary), whose `config` and `tokenizer` are those of the fine-tuned model, and
 * which carries one more map, `adapter` (in __metadata__ as JSON):
 *     {"kind": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "targets": "qkv,proj",
 *      "base_hash": "fnv1a64:..."}       base_hash: lib/model/weights.h
 * Applying one to a base whose hash differs is refused (65): the adapters were trained
 * against other weights and would silently produce a different model.
 *
 * A second kind holds new vocabulary rows alone (textual inversion: kiln train --add-class
 * NAME --train-new-classes): adapter {"kind": "rows", "first_row": V, "base_hash": ...}
 * and one tensor, transformer.wte.weight.rows [n, C], the embeddings of tokens V..V+n-1.
 * Applying it grows the base's vocabulary by n and writes those rows. */
#ifndef KILN_ADAPTER_H
#define KILN_ADAPTER_H

#include <stdbool.h>
#include <stdint.h>

#include "ckpt/store.h"
#include "model/gpt.h"
#include "model/lora.h"
#include "stream/stream.h"

/* The tensor of a rows adapter. */
#define KADAPTER_ROWS_TENSOR "transformer.wte.weight.rows"

typedef struct kadapter {
    char where[256]; /* the file, or "ckpt record N", for messages */
    lora_config cfg;
    char base_hash[32];
    gpt_config model; /* the fine-tuned model's shape (vocab may exceed the base's) */
    int n;            /* tensors */
    char **names;
    ktensor *tensors; /* views into the record or the mapped file */
    kckpt *ck;        /* owned when opened from a file */
    uint64_t step;
    bool rows;     /* kind "rows": new embedding rows only (kiln train --train-new-classes) */
    int first_row; /* rows: the token the first new row is (the base's vocabulary size) */
} kadapter;

/* Whether a ckpt record carries adapters rather than a whole model. */
bool kadapter_is_record(const krec *r);
/* From a ckpt record (valid while the record is); exits 65 when malformed. */
void kadapter_from_record(kadapter *ad, const krec *r);
/* From a checkpoint file; exits 65 (not an adapter file, malformed) or 74. */
void kadapter_open(kadapter *ad, const char *path);
void kadapter_free(kadapter *ad);

/* The base model with the adapter folded in: checks the base hash (65 naming both hashes
 * on a mismatch), grows the vocabulary when the adapter carries a larger wte, merges
 * W += s A^T B^T.  base is consumed (freed or returned). */
gpt *kadapter_apply(const kadapter *ad, gpt *base);

/* Write a model to path as a checkpoint file (atomic), with config from m, the tokenizer
 * JSON given (may be NULL) and step; exits 65/74 naming path. */
void kadapter_write_model(const gpt *m, const char *tokenizer_json, uint64_t step,
                          const char *path);

#endif
