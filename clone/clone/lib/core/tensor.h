/* tensor — a typed view of C-order little-endian bytes, as a record or a safetensors file
 * carries it.  A ktensor owns nothing: `data` points into a record or a caller's buffer and
 * may be unaligned, so read it with ktensor_copy() (memcpy) rather than by casting. */
#ifndef KILN_TENSOR_H
#define KILN_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KT_MAX_DIMS 8

typedef enum {
    KT_INVALID = 0,
    KT_F64,
    KT_F32,
    KT_F16,
    KT_BF16,
    KT_I64,
    KT_I32,
    KT_I16,
    KT_I8,
    KT_U64,
    KT_U32,
    KT_U16,
    KT_U8,
    KT_BOOL,
} kdtype;

typedef struct ktensor {
    kdtype dtype;
    int ndim;
    uint64_t shape[KT_MAX_DIMS];
    const void *data; /* possibly unaligned */
    size_t nbytes;
} ktensor;

/* safetensors names: "F32", "I32", "U8", ... */
const char *kdtype_name(kdtype d);
kdtype kdtype_from_name(const char *s, size_t n);
size_t kdtype_size(kdtype d);

/* prod(shape) and prod(shape)*itemsize, false on overflow. */
bool ktensor_numel(const ktensor *t, uint64_t *numel);
bool ktensor_expected_bytes(const ktensor *t, uint64_t *bytes);

/* Build a view over caller memory. */
ktensor ktensor_make(kdtype d, const void *data, int ndim, const uint64_t *shape);
static inline ktensor ktensor_1d(kdtype d, const void *data, uint64_t n) {
    uint64_t s[1] = {n};
    return ktensor_make(d, data, 1, s);
}
static inline ktensor ktensor_2d(kdtype d, const void *data, uint64_t a, uint64_t b) {
    uint64_t s[2] = {a, b};
    return ktensor_make(d, data, 2, s);
}

/* Copy the data into aligned memory of at least t->nbytes. */
void ktensor_copy(const ktensor *t, void *dst);
/* Element i converted to double (any numeric dtype; F16/BF16 included). */
double ktensor_get(const ktensor *t, uint64_t i);

/* Half-precision conversions. */
float kf16_to_f32(uint16_t h);
uint16_t kf32_to_f16(float f);
float kbf16_to_f32(uint16_t h);
uint16_t kf32_to_bf16(float f);

#endif
