/* ckptfile — a checkpoint on disk: the `ckpt` record as safetensors files, and back.
 *
 * LOADING (kiln train --init, kiln eval --ckpt) — one call:
 *
 *     kckpt *ck = kckpt_load("runs/moby/latest.safetensors", true);  // exits 65/74 on error
 *     uint64_t n_layer;  kckpt_config_u64(ck, "n_layer", &n_layer);  // config values
 *     const ktensor *wte = kckpt_tensor(ck, "transformer.wte.weight");  // NULL if absent
 *     ktensor_copy(wte, my_buffer);                 // data is mmap'ed, maybe unaligned
 *     if (ck->optim) { kckpt_m(ck, name); kckpt_v(ck, name); ck->optim_step; ck->lr; }
 *     resume data at ck->cursor (kiln load --skip), rng from ck->seed, count from ck->step
 *     kckpt_free(ck);
 *
 * FILES, for a ckpt record of step 500 written to DIR:
 *
 *   DIR/step-000500.safetensors        the model, loadable by plain PyTorch / HF:
 *       tensors   the record's `tensors` map, Hugging Face GPT-2 names, as given (F32)
 *       __metadata__ (strings):
 *         format     "pt"           (what transformers expects)
 *         config     JSON object    the record's `config` map ({"n_layer":2,...})
 *         tokenizer  JSON object    the record's `tokenizer` map (absent if the record had none)
 *         step, cursor, seed        decimal u64 (cursor/seed absent if the record had none)
 *         cursors    "C0,C1,..."    a data-parallel run's cursor of each rank (lib/run/dist.h):
 *                                   rank R resumes with kiln load --skip C<R>
 *         optim      file name      of the optimizer sibling in the same directory, if saved
 *         eval_loss  real           eval loss at this step, when kiln ckpt knew it
 *         adapter    JSON object    the record's `adapter` map: a LoRA adapter file, whose
 *                                   tensors are the adapters (lib/ckpt/adapter.h)
 *   DIR/step-000500.optim.safetensors  optimizer state (only when the record had `optim`):
 *       tensors   "m.NAME" and "v.NAME" for each NAME of optim.m / optim.v
 *       __metadata__: format "pt", step (decimal u64), lr (real, shortest round-trip form)
 *
 * The optimizer file is written first, so a model file that names one always has it.
 * Every file is written atomically (lib/core/afile.h).  A checkpoint file from elsewhere (a
 * plain HF safetensors file) loads too: what is missing reads as absent. */
#ifndef KILN_CKPTFILE_H
#define KILN_CKPTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/json.h"
#include "ckpt/safetensors.h"
#include "stream/stream.h"

typedef struct kckpt {
    char *path;
    stfile *file;    /* model tensors (st_count / st_name / st_tensor to list them) */
    jval *config;    /* __metadata__ "config" parsed (a JSON object), or NULL */
    jval *tokenizer; /* __metadata__ "tokenizer" parsed, or NULL */
    jval *state;     /* __metadata__ "state" parsed (a trainer's, lib/ckpt/record.h), or NULL */
    bool has_step, has_cursor, has_seed;
    uint64_t step, cursor, seed; /* 0 when absent */
    stfile *optim;               /* optimizer state, or NULL (not saved / not asked for) */
    uint64_t optim_step;
    double lr;
} kckpt;

/* Open a checkpoint (and, when with_optim and the file names one, its optimizer file).
 * Returns 0, or 65 (bad contents: truncated, corrupted header, offsets outside the file,
 * bad metadata JSON, missing optimizer file) / 74 (cannot read), with "PATH: why" in err. */
int kckpt_open(const char *path, bool with_optim, kckpt **out, char *err, size_t errsz);
/* kckpt_open or exit with its message and code. */
kckpt *kckpt_load(const char *path, bool with_optim);
void kckpt_free(kckpt *ck);

/* Tensors by HF name (GPT2Model's bare names, without "transformer.", too); NULL when
 * absent. */
const ktensor *kckpt_tensor(const kckpt *ck, const char *name);
/* Adam moments for a parameter name; NULL when absent or no optimizer state. */
const ktensor *kckpt_m(const kckpt *ck, const char *name);
const ktensor *kckpt_v(const kckpt *ck, const char *name);
/* A msgpack map of plain values (scalars, strings, arrays, maps) as JSON text (malloc'd);
 * NULL with *bad set for anything else, NULL alone for a NULL o. */
char *kckpt_map_json(const msgpack_object *o, bool *bad);
/* A non-negative integer from the config; false when absent or not one. */
bool kckpt_config_u64(const kckpt *ck, const char *key, uint64_t *out);
/* A number of the trainer's `state` (lib/ckpt/record.h); false when absent. */
bool kckpt_state_f64(const kckpt *ck, const char *key, double *out);

/* ---- writing (kiln ckpt) ---------------------------------------------------------------- */

/* "DIR/step-000500.safetensors" (at least 6 digits; malloc'd); dir NULL: no directory. */
char *ckpt_file_name(const char *dir, uint64_t step);
/* The optimizer sibling of a model file: ".../X.safetensors" -> ".../X.optim.safetensors". */
char *ckpt_optim_name(const char *path);

/* Write a `ckpt` record to path (and its optimizer sibling when it has `optim`).
 * eval_loss: written as metadata when finite (pass NAN when unknown).  Returns 0, 65 (the record
 * does not follow the ckpt schema) or 74 (I/O, disk full), with "PATH: why" in err. */
int ckpt_write_record(const krec *r, const char *path, double eval_loss, char *err, size_t errsz);

#endif
