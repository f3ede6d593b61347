/* tensor — dtype names and sizes, overflow-safe sizes, element access. */
#include "core/tensor.h"

#include <string.h>

static const struct {
    kdtype d;
    const char *name;
    size_t size;
} dtypes[] = {
    {KT_F64, "F64", 8},   {KT_F32, "F32", 4}, {KT_F16, "F16", 2}, {KT_BF16, "BF16", 2},
    {KT_I64, "I64", 8},   {KT_I32, "I32", 4}, {KT_I16, "I16", 2}, {KT_I8, "I8", 1},
    {KT_U64, "U64", 8},   {KT_U32, "U32", 4}, {KT_U16, "U16", 2}, {KT_U8, "U8", 1},
    {KT_BOOL, "BOOL", 1},
};

const char *kdtype_name(kdtype d) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].d == d) return dtypes[i].name;
    return "?";
}

kdtype kdtype_from_name(const char *s, size_t n) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (strlen(dtypes[i].name) == n && memcmp(dtypes[i].name, s, n) == 0) return dtypes[i].d;
    return KT_INVALID;
}

size_t kdtype_size(kdtype d) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].d == d) return dtypes[i].size;
    return 0;
}

bool ktensor_numel(const ktensor *t, uint64_t *numel) {
    uint64_t n = 1;
    if (t->ndim < 0 || t->ndim > KT_MAX_DIMS) return false;
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(n, t->shape[i], &n)) return false;
    *numel = n;
    return true;
}

bool ktensor_expected_bytes(const ktensor *t, uint64_t *bytes) {
    uint64_t n;
    size_t sz = kdtype_size(t->dtype);
    if (!sz || !ktensor_numel(t, &n)) return false;
    return !__builtin_mul_overflow(n, (uint64_t)sz, bytes);
}

ktensor ktensor_make(kdtype d, const void *data, int ndim, const uint64_t *shape) {
    ktensor t;
    memset(&t, 0, sizeof t);
    t.dtype = d;
    t.ndim = ndim;
    for (int i = 0; i < ndim && i < KT_MAX_DIMS; i++) t.shape[i] = shape[i];
    t.data = data;
    uint64_t b = 0;
    t.nbytes = ktensor_expected_bytes(&t, &b) ? (size_t)b : 0;
    return t;
}

void ktensor_copy(const ktensor *t, void *dst) {
    if (t->nbytes) memcpy(dst, t->data, t->nbytes);
}

float kf16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t kf32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* round to nearest even */
    return (uint16_t)h;
}

float kbf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t kf32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* NaN stays NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

double ktensor_get(const ktensor *t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)t->data + i * kdtype_size(t->dtype);
    union {
        double f64;
        float f32;
        int64_t i64;
        int32_t i32;
        int16_t i16;
        int8_t i8;
        uint64_t u64;
        uint32_t u32;
        uint16_t u16;
        uint8_t u8;
    } v;
    memcpy(&v, p, kdtype_size(t->dtype));
    switch (t->dtype) {
    case KT_F64:
        return v.f64;
    case KT_F32:
        return v.f32;
    case KT_F16:
        return kf16_to_f32(v.u16);
    case KT_BF16:
        return kbf16_to_f32(v.u16);
    case KT_I64:
        return (double)v.i64;
    case KT_I32:
        return v.i32;
    case KT_I16:
        return v.i16;
    case KT_I8:
        return v.i8;
    case KT_U64:
        return (double)v.u64;
    case KT_U32:
        return v.u32;
    case KT_U16:
        return v.u16;
    case KT_U8:
    case KT_BOOL:
        return v.u8;
    default:
        return 0;
    }
}
