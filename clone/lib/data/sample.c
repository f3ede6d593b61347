/* sample — field copying and image reading for the data stages. */
#include "data/sample.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

static bool listed(const msgpack_object *k, const char *const *skip) {
    if (kobj_str_eq(k, "t") || kobj_str_eq(k, "seq")) return true;
    for (; skip && *skip; skip++)
        if (kobj_str_eq(k, *skip)) return true;
    return false;
}

void kw_copy_fields(kwriter *w, const krec *r, const char *const *skip) {
    const msgpack_object *m = r->map;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        char key[256];
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size >= sizeof key || listed(k, skip))
            continue;
        memcpy(key, k->via.str.ptr, k->via.str.size);
        key[k->via.str.size] = 0;
        kw_obj(w, key, &m->via.map.ptr[i].val);
    }
}

bool krec_image(const krec *r, kimage *im) {
    if (!krec_get(r, "image")) return false;
    ktensor t;
    if (!krec_tensor(r, "image", &t) || t.dtype != KT_U8 || t.ndim != 3 || t.shape[2] < 1 ||
        t.shape[2] > 4 || t.shape[0] < 1 || t.shape[1] < 1 || t.shape[0] > 65535 ||
        t.shape[1] > 65535)
        kiln_die(EX_KILN_DATA, "record %llu: image is not a U8 [H,W,C] tensor with C in 1..4",
                 (unsigned long long)r->seq);
    kimage_reshape(im, (int)t.shape[0], (int)t.shape[1], (int)t.shape[2]);
    memcpy(im->data, t.data, kimage_bytes(im));
    return true;
}

uint64_t krec_u64_or(const krec *r, const char *key, uint64_t def) {
    uint64_t v;
    return krec_u64(r, key, &v) ? v : def;
}

kstored *kstored_copy(const krec *r) {
    kstored *s = xcalloc(1, sizeof *s);
    s->raw = xmalloc(r->raw_len ? r->raw_len : 1);
    memcpy(s->raw, r->raw, r->raw_len);
    msgpack_unpacked_init(&s->up);
    /* The bytes were bounded and decoded once by the reader: decoding the copy cannot fail
     * but for lack of memory. */
    if (msgpack_unpack_next(&s->up, (const char *)s->raw, r->raw_len, NULL) !=
        MSGPACK_UNPACK_SUCCESS)
        kiln_die(EX_KILN_SOFTWARE, "cannot re-decode record %llu", (unsigned long long)r->seq);
    s->rec = *r;
    s->rec.raw = s->raw;
    s->rec.map = &s->up.data;
    return s;
}

void kstored_free(kstored *s) {
    if (!s) return;
    msgpack_unpacked_destroy(&s->up);
    free(s->raw);
    free(s);
}
