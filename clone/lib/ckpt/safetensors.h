/* safetensors — read and write safetensors files (the format PyTorch / Hugging Face load).
 *
 * Layout: 8 bytes little-endian u64 N, then N bytes of JSON header, then the data buffer.
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
 * (offsets relative to the data buffer) plus an optional "__metadata__" string->string map.
 *
 * Reading validates the whole header before any tensor is exposed: N within the file and
 * <= 100 MB, strict JSON, known dtypes, shapes whose byte size (overflow-checked) equals
 * end - begin, offsets inside the file, and tensors that tile the data buffer exactly (no
 * overlap, no gap, nothing after the last one).  The file is mmap'ed read-only; tensors
 * point into the mapping (possibly unaligned: copy with ktensor_copy).
 *
 * Writing is atomic (lib/core/afile.h): a hidden temp file in the same directory, write, fsync,
 * rename over the target, fsync the directory.  On any failure (disk full included) the
 * temp file is removed and an existing file at the target path is left as it was.  The header is
 * padded with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
 *
 * Errors are returned, not fatal: functions take char *err (may be NULL) and return an
 * exit code from util.h (0 ok, 65 bad file contents, 74 I/O), so a stage can say which
 * file is wrong and exit with the right code.  Messages start with the path. */
#ifndef KILN_SAFETENSORS_H
#define KILN_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

#define ST_MAX_HEADER (100u * 1000 * 1000) /* as the reference implementation */

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct stfile stfile;

/* Map and validate a file.  Returns 0 and *out, or 65 (bad contents) / 74 (cannot read)
 * with a message "PATH: what is wrong" in err. */
int st_open(const char *path, stfile **out, char *err, size_t errsz);
/* The same over bytes in memory (not copied: they must outlive the stfile).  name is used
 * in messages. */
int st_parse(const void *bytes, size_t n, const char *name, stfile **out, char *err, size_t errsz);
/* st_open, or exit with the message and code. */
stfile *st_open_or_die(const char *path);
void st_close(stfile *f);

/* Tensors in header order. */
size_t st_count(const stfile *f);
const char *st_name(const stfile *f, size_t i);
const ktensor *st_tensor(const stfile *f, size_t i);
/* By name; NULL when absent. */
const ktensor *st_find(const stfile *f, const char *name);
/* The data buffer (all tensor bytes, as in the file) and its size. */
const void *st_data(const stfile *f, size_t *n);

/* __metadata__ entries, in header order; values are NUL-terminated (no embedded NUL:
 * the reader rejects them). */
size_t st_meta_count(const stfile *f);
const char *st_meta_key(const stfile *f, size_t i);
const char *st_meta_value(const stfile *f, size_t i);
/* By key; NULL when absent. */
const char *st_meta(const stfile *f, const char *key);

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    ktensor t; /* data, dtype, ndim, shape, nbytes as ktensor_make sets them */
} st_entry;

typedef struct {
    const char *key, *value;
} st_meta_entry;

/* Write tensors (in this order, names unique and not "__metadata__") and metadata to
 * path atomically.  Returns 0, 65 for bad arguments (duplicate name, tensor whose nbytes
 * does not match its shape) or 74 for an I/O error ("PATH: disk full" etc.). */
int st_write(const char *path, const st_entry *tensors, size_t n, const st_meta_entry *meta,
             size_t nmeta, char *err, size_t errsz);

#endif
