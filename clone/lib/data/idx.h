/* idx — the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
 * magic 00 00 TYPE NDIM, NDIM big-endian u32 sizes, then the data.  Plain or gzipped
 * files (zlib detects which).  kiln reads type 0x08 (unsigned bytes): images [N,H,W] and
 * labels [N]. */
#ifndef KILN_IDX_H
#define KILN_IDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KIDX_MAX_DIMS 4

typedef struct kidx {
    uint8_t *data; /* owned */
    int ndim;
    uint32_t dims[KIDX_MAX_DIMS];
    size_t count;      /* dims[0]: number of items */
    size_t item_bytes; /* product of the other dims */
} kidx;

/* Read a whole IDX file.  max_bytes bounds the declared data size (checked before
 * allocating).  On failure: false and a one-line reason in err ("wrong magic 0x...",
 * "short data: header promises N bytes, file has M", "bytes after the N the header
 * promises", "size 2 of 3 is 0", "bad gzip data"). */
bool kidx_read(const char *path, uint64_t max_bytes, kidx *out, char *err, size_t errlen);
void kidx_free(kidx *x);

#endif
