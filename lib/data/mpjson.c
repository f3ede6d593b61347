/* mpjson — MessagePack values as JSON text (lib/data/mpjson.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/b64.h"
#include "data/json.h"
#include "data/mpjson.h"

/* The shortest decimal that reads back as the same float ("3e-05", not 2.99999992e-05). */
static void put_float(FILE *out, float f) {
    char buf[48];
    if (!isfinite(f)) {
        fputs("null", out);
        return;
    }
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    fputs(buf, out);
    if (!strpbrk(buf, ".e")) fputs(".0", out); /* a real stays a real */
}

static void put_elem(FILE *f, const ktensor *t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)t->data + i * kdtype_size(t->dtype);
    if (t->dtype == KT_I64) {
        int64_t v;
        memcpy(&v, p, 8);
        fprintf(f, "%lld", (long long)v);
    } else if (t->dtype == KT_U64) {
        uint64_t v;
        memcpy(&v, p, 8);
        fprintf(f, "%llu", (unsigned long long)v);
    } else if (t->dtype == KT_F64) {
        json_put_real(f, ktensor_get(t, i));
    } else if (t->dtype == KT_F32 || t->dtype == KT_F16 || t->dtype == KT_BF16) {
        put_float(f, (float)ktensor_get(t, i));
    } else {
        fprintf(f, "%lld", (long long)ktensor_get(t, i));
    }
}

/* Values of dimension d onwards, starting at element *i, as nested arrays. */
static void put_nested(FILE *f, const ktensor *t, int d, uint64_t *i) {
    if (d == t->ndim) {
        put_elem(f, t, (*i)++);
        return;
    }
    fputc('[', f);
    for (uint64_t k = 0; k < t->shape[d]; k++) {
        if (k) fputc(',', f);
        put_nested(f, t, d + 1, i);
    }
    fputc(']', f);
}

static void put_tensor(FILE *f, const ktensor *t, bool full) {
    fprintf(f, "{\"dtype\":\"%s\",\"shape\":[", kdtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
        fprintf(f, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
    fputc(']', f);
    uint64_t n = 0;
    ktensor_numel(t, &n);
    if (full) {
        uint64_t i = 0;
        fputs(",\"data\":", f);
        put_nested(f, t, 0, &i);
    } else if (n > 0) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        for (uint64_t i = 0; i < n; i++) {
            double v = ktensor_get(t, i);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        fputs(",\"min\":", f);
        json_put_real(f, lo);
        fputs(",\"max\":", f);
        json_put_real(f, hi);
        fputs(",\"mean\":", f);
        json_put_real(f, sum / (double)n);
    }
    fputc('}', f);
}

void mpjson_put(FILE *f, const msgpack_object *o, bool full) {
    ktensor t;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", f);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        json_put_real(f, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        json_put_str(f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT: {
        const char *p = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : o->via.ext.ptr;
        size_t n = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.ext.size;
        char *enc = b64_encode(p, n);
        fprintf(f, "{\"$bin\":\"%s\"}", enc);
        free(enc);
        break;
    }
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) fputc(',', f);
            mpjson_put(f, &o->via.array.ptr[i], full);
        }
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        if (kobj_tensor(o, &t)) {
            put_tensor(f, &t, full);
            break;
        }
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i) fputc(',', f);
            if (k->type == MSGPACK_OBJECT_STR)
                mpjson_put(f, k, full);
            else { /* JSON keys are strings: show other keys as their JSON text, quoted */
                fputc('"', f);
                mpjson_put(f, k, full);
                fputc('"', f);
            }
            fputc(':', f);
            mpjson_put(f, &o->via.map.ptr[i].val, full);
        }
        fputc('}', f);
        break;
    }
}

/* {"prompt","chosen","rejected"} when the record has the three as text; false otherwise. */
bool mpjson_put_trl(FILE *f, const krec *r) {
    static const char *const keys[3] = {"prompt", "chosen", "rejected"};
    const char *s[3];
    size_t n[3];
    for (int i = 0; i < 3; i++)
        if (!krec_str(r, keys[i], &s[i], &n[i])) return false;
    for (int i = 0; i < 3; i++) {
        fprintf(f, i ? ",\"%s\":" : "{\"%s\":", keys[i]);
        json_put_str(f, s[i], n[i]);
    }
    fputs("}\n", f);
    return true;
}