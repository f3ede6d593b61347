/* index — a set of embeddings as one safetensors file, for `kiln search` and for numpy or
 * PyTorch (a few lines read it: an 8-byte header length, the JSON header, the raw arrays):
 *
 *   vectors   F32 [N, C]   L2-normalised rows
 *   ids       I64 [N]      the embedded records' ids
 *   __metadata__ (strings):
 *     format "pt", kiln "index"
 *     texts   JSON array of N strings: each row's text, or its source path ("" if neither)
 *     labels  JSON array of N strings: each row's label ("" if none)
 *     model   the weights hash of the model that embedded them (lib/model/weights.h)
 *     pool    "mean", "last" or "weightedmean"
 *     tokenizer  the tokenizer JSON, when known
 *
 * Rows arrive one at a time (kindex_add) from a stream of any length; the arrays grow. */
#ifndef KILN_INDEX_H
#define KILN_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct kindex {
    int64_t n, cap;
    int dim;
    float *vectors; /* [cap, dim] */
    int64_t *ids;
    char **texts, **labels; /* owned; never NULL ("" when absent) */
    char model[32], pool[16];
    char *tokenizer; /* JSON, or NULL */
} kindex;

kindex *kindex_new(int dim);
void kindex_free(kindex *ix);
/* Append a row (text and label may be NULL; lengths in bytes). */
void kindex_add(kindex *ix, int64_t id, const float *v, const char *text, size_t text_len,
                const char *label, size_t label_len);
/* Write atomically; 0, or 65/74 with "PATH: why" in err. */
int kindex_write(const kindex *ix, const char *path, char *err, size_t errsz);
/* Read a whole index into memory; 0, or 65 (not an index, shapes or metadata wrong) / 74
 * with "PATH: why" in err. */
int kindex_read(const char *path, kindex **out, char *err, size_t errsz);

#endif
