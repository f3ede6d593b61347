/* stream: what the writer writes the reader reads back, fields, tensors and hdr chain. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "stream/stream.h"
#include "core/util.h"

int main(void) {
    char path[] = "/tmp/kiln-test-stream-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    kiln_set_prog("test-stream");

    float big[70000]; /* 280 KB: goes out by reference, not copied */
    for (int i = 0; i < 70000; i++) big[i] = (float)i * 0.5f;
    int32_t small[6] = {1, -2, 3, -4, 5, -6};

    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, "test", 42);
    kw_str(w, "note", "hello");
    kwriter_end(w);
    for (int k = 0; k < 3; k++) {
        kwriter_begin(w, "sample");
        kw_u64(w, "id", (uint64_t)k);
        kw_i64(w, "neg", -k - 1);
        kw_f64(w, "x", 0.25 * k);
        kw_str(w, "text", "héllo");
        ktensor t = ktensor_2d(KT_I32, small, 2, 3);
        kw_tensor(w, "small", &t);
        ktensor b = ktensor_1d(KT_F32, big, 70000);
        kw_tensor(w, "big", &b);
        kwriter_end(w);
    }
    CHECK(kwriter_count(w) == 3);
    kwriter_close(w, "ok");

    kreader *r = kreader_open(path, 1);
    const krec *h = kreader_hdr(r);
    const char *s;
    size_t n;
    uint64_t u;
    CHECK(krec_is(h, "hdr") && h->seq == 0);
    CHECK(krec_str(h, "note", &s, &n) && n == 5 && memcmp(s, "hello", 5) == 0);
    CHECK(krec_u64(h, "seed", &u) && u == 42);
    const msgpack_object *chain = krec_get(h, "chain");
    CHECK(chain && chain->type == MSGPACK_OBJECT_ARRAY && chain->via.array.size == 1);

    krec rec;
    int k = 0;
    while (kreader_next(r, &rec)) {
        int64_t i;
        double x;
        ktensor t;
        CHECK(krec_is(&rec, "sample") && rec.seq == (uint64_t)k + 1);
        CHECK(krec_u64(&rec, "id", &u) && u == (uint64_t)k);
        CHECK(krec_i64(&rec, "neg", &i) && i == -k - 1);
        CHECK(krec_f64(&rec, "x", &x) && x == 0.25 * k);
        CHECK(krec_str(&rec, "text", &s, &n) && n == 6);
        CHECK(krec_tensor(&rec, "small", &t) && t.dtype == KT_I32 && t.ndim == 2 &&
              t.shape[1] == 3);
        int32_t got[6];
        ktensor_copy(&t, got);
        CHECK(memcmp(got, small, sizeof got) == 0);
        CHECK(krec_tensor(&rec, "big", &t) && t.nbytes == sizeof big);
        CHECK(ktensor_get(&t, 69999) == 69999 * 0.5);
        CHECK(!krec_tensor(&rec, "text", &t));
        k++;
    }
    CHECK(k == 3);
    CHECK(kreader_status(r) && strcmp(kreader_status(r), "ok") == 0);

    /* a second stage: pass-through renumbers seq, the hdr chain grows, hdr fields carry on */
    char path2[] = "/tmp/kiln-test-stream2-XXXXXX";
    fd = mkstemp(path2);
    close(fd);
    kreader_close(r);
    r = kreader_open(path, 1);
    w = kwriter_open(path2, 1);
    kiln_set_prog("stage-two");
    kwriter_hdr_begin(w, kreader_hdr(r), NULL, 7);
    kwriter_end(w);
    kwriter_begin(w, "metrics");
    kw_u64(w, "step", 1);
    kwriter_end(w);
    while (kreader_next(r, &rec)) kwriter_pass(w, &rec);
    kwriter_close(w, "ok");
    kreader_close(r);

    r = kreader_open(path2, 1);
    h = kreader_hdr(r);
    chain = krec_get(h, "chain");
    CHECK(chain && chain->via.array.size == 2 &&
          kobj_str_eq(&chain->via.array.ptr[1], "stage-two"));
    CHECK(krec_str(h, "note", &s, &n) && n == 5);   /* copied forward */
    CHECK(krec_str(h, "schema", &s, &n) && n == 4); /* inherited: "test" */
    CHECK(krec_u64(h, "seed", &u) && u == 7);       /* replaced, not duplicated */
    CHECK(h->map->via.map.size == 8);               /* t seq v stage seed chain schema note */
    uint64_t seqs = 0;
    while (kreader_next(r, &rec)) CHECK(rec.seq == ++seqs);
    CHECK(seqs == 4);
    kreader_close(r);
    unlink(path);
    unlink(path2);
    return check_report("stream");
}
