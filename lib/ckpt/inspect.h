/* inspect — a checkpoint as text (kiln ckpt inspect): its file, every __metadata__ entry
 * (config, tokenizer, step, ...), its tensors (name, dtype, shape, CRC-32 of the data) and
 * those of its optimizer file, with a CRC-32 of each file's data as a whole, so two
 * checkpoints compare with diff. */
#ifndef KILN_INSPECT_H
#define KILN_INSPECT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ckpt/store.h"

/* zlib's CRC-32 of n bytes, n beyond 32 bits too. */
uint32_t kckpt_crc32(const void *data, size_t n);

/* ck (loaded from path, optimizer state included when it has one) as text on out. */
void kckpt_inspect(FILE *out, const char *path, const kckpt *ck);

#endif
