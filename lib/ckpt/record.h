/* record — the `ckpt` record a trainer sends down the stream for `kiln ckpt` to write
 * (lib/ckpt/store.h turns it into files; lib/ckpt/load.h reads those back):
 *
 *   {t: "ckpt", step, config (lib/ckpt/config.h), tokenizer (the hdr's), cursor, seed,
 *    cursors: [each rank's cursor]   (a data-parallel run only: lib/run/dist.h),
 *    state: {name: f64}   (a trainer's own state beyond weights and moments, for an exact
 *                          resume: kiln ppo's adaptive kl_coef),
 *    tensors: {HF name: F32 tensor}, optim: {step, lr, m: {name: F32}, v: {name: F32}},
 *    adapter: {kind "lora", r, alpha, dropout, targets, base_hash}   (LoRA runs only)}
 *
 * A LoRA run's record is an adapter checkpoint: `tensors` holds only what trained
 * (lib/ckpt/adapter.h); so is a run that trains new class rows alone (kind "rows").  The optimizer
 * moments cover the trainable tensors only. */
#ifndef KILN_RECORD_H
#define KILN_RECORD_H

#include <stdint.h>

#include "model/gpt.h"
#include "model/lora.h"
#include "model/optim.h"
#include "stream/stream.h"

typedef struct kckpt_state {
    const gpt *m;                    /* config; its tensors unless this is an adapter */
    const msgpack_object *tokenizer; /* copied as it is; NULL: none */
    uint64_t step, cursor, seed;
    const kparam *ps; /* the trainable tensors and their slices of the moments */
    int n_ps;
    const adamw *opt;
    double lr;
    const lora *lora;        /* non-NULL: an adapter checkpoint of these adapters */
    const gpt_tensor *rows;  /* non-NULL: a rows adapter (new vocabulary rows; ps holds them) */
    int first_row;           /* with rows: the first new token */
    const char *base_hash;   /* with lora or rows: lib/model/weights.h's hash of the base */
    const uint64_t *cursors; /* a data-parallel run: each rank's cursor (NULL: one process) */
    int n_cursors;
    const char *const *state_names; /* `state`: n_state named numbers (none when 0) */
    const double *state;
    int n_state;
} kckpt_state;

void kckpt_record_write(kwriter *w, const kckpt_state *s);

/* Whether a ckpt record's tensors agree with its config, before anything is written: a
 * model record needs every tensor of the config (score.weight only for a scalar head) as
 * F32 of its shape (lib/ckpt/config.h kcfg_check_tensor), and no other; optim's m and v
 * may only name those tensors, with the same shapes.  An adapter record (LoRA) is checked
 * by its reader (lib/ckpt/adapter.h).  0, or 65 with "WHERE: why" in err. */
int kckpt_record_check(const krec *r, const char *where, char *err, size_t errsz);

#endif
