/* ckptdir — kiln ckpt's directory of checkpoints: each ckpt record written as
 * DIR/step-NNNNNN.safetensors (lib/ckpt/store.h), latest.safetensors and best.safetensors
 * as relative links (best: the lowest eval loss, from the eval metrics record of the same
 * step seen before the ckpt), PEFT's names beside LoRA adapters, and all but the newest
 * --keep pruned (the best and the one just written stay).  Checkpoints an earlier run left
 * count towards --keep; what a killed writer left (temporary files, an optimizer file
 * without its model) is removed on open.
 *
 * These functions exit as kiln ckpt does: 74 when the directory cannot be made or read, a
 * file or link not written; 65 for a ckpt record without a step or whose tensors contradict
 * its config (checked before the directory is touched). */
#ifndef KILN_CKPTDIR_H
#define KILN_CKPTDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/stream.h"

typedef struct kckptdir_file {
    uint64_t step;
    double eval_loss; /* NAN when unknown */
} kckptdir_file;

typedef struct kckptdir {
    const char *dir; /* borrowed */
    uint64_t keep;   /* 0: keep all */
    kckptdir_file *files;
    size_t n;
    bool have_eval; /* the last eval metrics record: its step and loss */
    uint64_t eval_step;
    double eval_loss;
} kckptdir;

/* Create dir (and its parents), clean it, and take stock of the checkpoints in it. */
void kckptdir_open(kckptdir *s, const char *dir, uint64_t keep);
void kckptdir_close(kckptdir *s);
/* A metrics record: an eval's loss is remembered for the ckpt of its step. */
void kckptdir_metrics(kckptdir *s, const krec *r);
/* Write the ckpt record r (read from input, named in messages), move the links, prune, and
 * write a `saved` record {step, path, eval_loss, best} to w. */
void kckptdir_save(kckptdir *s, const krec *r, const char *input, kwriter *w);

#endif
