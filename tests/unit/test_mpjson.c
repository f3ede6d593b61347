/* test_mpjson — records as JSON text (lib/data/mpjson.h): floats in their shortest form,
 * tensors summarised or in full, binaries as base64, keys that are not strings quoted, and
 * TRL's preference lines only for records with the three texts. */
#include "check.h"
#include "data/mpjson.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* v as JSON text, in a buffer the caller frees. */
static char *as_json(const msgpack_object *v, bool full) {
    char *buf;
    size_t n;
    FILE *f = open_memstream(&buf, &n);
    mpjson_put(f, v, full);
    fclose(f);
    return buf;
}

static char *trl_line(const krec *r, bool *pair) {
    char *buf;
    size_t n;
    FILE *f = open_memstream(&buf, &n);
    *pair = mpjson_put_trl(f, r);
    fclose(f);
    return buf;
}

int main(void) {
    char path[] = "/tmp/kiln-test-mpjson-XXXXXX";
    close(mkstemp(path));
    float x[4] = {3e-5f, 1.0f, -2.5f, 0.1f};
    uint64_t shape[2] = {2, 2};
    ktensor t = ktensor_make(KT_F32, x, 2, shape);
    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, "sample", 0);
    kwriter_end(w);
    kwriter_begin(w, "sample");
    kw_tensor(w, "x", &t);
    kw_f64(w, "lr", 0.5);
    kw_bool(w, "ok", true);
    kw_i64(w, "n", -3);
    kw_key(w, "raw");
    msgpack_pack_bin(kw_packer(w), 3);
    msgpack_pack_bin_body(kw_packer(w), "abc", 3);
    kw_key(w, "m");
    msgpack_pack_map(kw_packer(w), 1);
    msgpack_pack_int(kw_packer(w), 7);
    msgpack_pack_nil(kw_packer(w));
    kwriter_end(w);
    kwriter_begin(w, "pref");
    kw_str(w, "prompt", "p");
    kw_str(w, "chosen", "a\"b");
    kw_str(w, "rejected", "r");
    kwriter_end(w);
    kwriter_close(w, "ok");

    kreader *r = kreader_open(path, 1);
    krec rec;
    CHECK(kreader_next(r, &rec));
    char *s = as_json(rec.map, false);
    CHECK(
        strstr(s, "\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"min\":-2.5,\"max\":1.0,\"mean\":") !=
        NULL);
    CHECK(strstr(s, "\"lr\":0.5,\"ok\":true,\"n\":-3,\"raw\":{\"$bin\":\"YWJj\"}") != NULL);
    CHECK(strstr(s, "\"m\":{\"7\":null}}") != NULL);
    free(s);
    s = as_json(rec.map, true); /* the shortest float that reads back: 3e-05, 0.1 */
    CHECK(strstr(s, "\"data\":[[3e-05,1.0],[-2.5,0.1]]}") != NULL);
    free(s);
    bool pair;
    s = trl_line(&rec, &pair);
    CHECK(!pair && s[0] == 0);
    free(s);
    CHECK(kreader_next(r, &rec));
    s = trl_line(&rec, &pair);
    CHECK(pair && !strcmp(s, "{\"prompt\":\"p\",\"chosen\":\"a\\\"b\",\"rejected\":\"r\"}\n"));
    free(s);
    kreader_close(r);
    unlink(path);
    return check_report("mpjson");
}
