/* sample — helpers for the data stages that rewrite or hold records: copy a record's fields
 * except the ones a stage replaces, read a `sample` record's image, and keep a record past
 * the next kreader_next (shuffle and reorder buffers). */
#ifndef KILN_SAMPLE_H
#define KILN_SAMPLE_H

#include <stdbool.h>

#include "data/image.h"
#include "stream/stream.h"

/* Copy every field of r except t, seq and the NULL-terminated list `skip` into the record
 * being built (after kwriter_begin). */
void kw_copy_fields(kwriter *w, const krec *r, const char *const *skip);

/* The `image` tensor of a sample (U8 [H,W,C], C in 1..4) copied into im.  Returns false
 * when the record has no image field; exits 65 naming the record when it is malformed. */
bool krec_image(const krec *r, kimage *im);

/* The record's u64 field, or def when absent. */
uint64_t krec_u64_or(const krec *r, const char *key, uint64_t def);

/* A record copied out of the reader: its bytes and their decoded map, valid until freed. */
typedef struct kstored {
    krec rec; /* rec.map and rec.raw point into this struct's own memory */
    uint8_t *raw;
    msgpack_unpacked up;
} kstored;

kstored *kstored_copy(const krec *r);
void kstored_free(kstored *s);

#endif
