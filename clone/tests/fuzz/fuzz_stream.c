/* fuzz_stream — libFuzzer target: a byte stream as the record reader sees it (tests/fuzz/run.sh).
 *
 * The path of lib/stream/fdio.c and lib/stream/stream.c without their exits: mpscan bounds
 * each record (lib/stream/mpscan.h), msgpack-c decodes it, every map shaped like a tensor is
 * validated (kobj_tensor), and the record types' own parsers run on what they would get:
 * a hdr's tokenizer (ktok_from_obj), a ckpt record's config and tensors (kckpt_record_check,
 * lib/ckpt/record.h), a rollout's and a preference's fields (krollout_read, kpref_read,
 * lib/data/rlhf.h). */
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/record.h"
#include "data/rlhf.h"
#include "data/tokenizer.h"
#include "stream/mpscan.h"
#include "stream/stream.h"

static void walk_tensors(const msgpack_object *o, int depth) {
    if (depth > KILN_MAX_DEPTH + 1) return;
    ktensor t;
    if (o->type == MSGPACK_OBJECT_MAP) {
        (void)kobj_tensor(o, &t);
        for (uint32_t i = 0; i < o->via.map.size; i++)
            walk_tensors(&o->via.map.ptr[i].val, depth + 1);
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            walk_tensors(&o->via.array.ptr[i], depth + 1);
    }
}

static void record(const uint8_t *p, size_t n) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)p, n, &off) == MSGPACK_UNPACK_SUCCESS && off == n &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        walk_tensors(&u.data, 0);
        krec r = {.map = &u.data, .raw = p, .raw_len = n};
        const msgpack_object *t = krec_get(&r, "t");
        char err[256];
        if (kobj_str_eq(t, "hdr")) {
            const msgpack_object *tok = krec_get(&r, "tokenizer");
            ktokenizer k;
            if (tok && ktok_from_obj(tok, &k, err, sizeof err)) ktok_free(&k);
        } else if (kobj_str_eq(t, "ckpt")) {
            (void)kckpt_record_check(&r, "fuzz", err, sizeof err);
        } else if (kobj_str_eq(t, "rollout")) {
            krollout ro = {0};
            if (krollout_read(&r, &ro, err, sizeof err)) krollout_free(&ro);
        }
        kpref pr = {0}; /* any record type may be a preference (kpref_is) */
        if (kpref_is(&r) && kpref_read(&r, &pr, err, sizeof err)) kpref_free(&pr);
    }
    msgpack_unpacked_destroy(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mpscan_limits lim;
    static int init;
    if (!init) lim = kiln_record_limits(), init = 1;
    char why[160];
    for (size_t at = 0; at < size;) {
        size_t len;
        mpscan_result res = mpscan(data + at, size - at, &lim, &len, why, sizeof why);
        if (res != MPSCAN_OK) break;
        record(data + at, len);
        at += len;
    }
    return 0;
}
