/* test_sample — the record helpers of the data stages: a kstored record outlives the
 * reader's next record, kw_copy_fields copies all but the replaced fields, krec_image reads
 * an image tensor. */
#include "check.h"
#include "data/sample.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    char in[] = "/tmp/kiln-test-sample-XXXXXX", out[] = "/tmp/kiln-test-sample2-XXXXXX";
    close(mkstemp(in)), close(mkstemp(out));
    uint8_t px[2 * 3 * 1] = {1, 2, 3, 4, 5, 6};
    uint64_t shape[3] = {2, 3, 1};
    ktensor img = ktensor_make(KT_U8, px, 3, shape);
    kwriter *w = kwriter_open(in, 1);
    kwriter_hdr_begin(w, NULL, "sample", 9);
    kwriter_end(w);
    for (int i = 0; i < 3; i++) {
        kwriter_begin(w, "sample");
        kw_u64(w, "id", 10 + i);
        kw_str(w, "label", i == 0 ? "cat" : "dog");
        kw_tensor(w, "image", &img);
        kwriter_end(w);
    }
    kwriter_close(w, "ok");

    kreader *r = kreader_open(in, 1);
    krec rec;
    CHECK(kreader_next(r, &rec));
    kstored *first = kstored_copy(&rec);
    CHECK(kreader_next(r, &rec) && kreader_next(r, &rec)); /* the reader moved on twice */
    CHECK(krec_u64_or(&first->rec, "id", 0) == 10 && krec_u64_or(&first->rec, "nope", 7) == 7);
    const char *s;
    size_t n;
    CHECK(krec_str(&first->rec, "label", &s, &n) && n == 3 && memcmp(s, "cat", 3) == 0);
    kimage im = {0};
    CHECK(krec_image(&first->rec, &im) && im.h == 2 && im.w == 3 && im.c == 1 &&
          memcmp(im.data, px, 6) == 0);
    CHECK(!kreader_next(r, &rec));
    kreader_close(r);

    /* Copy all fields but the image, add a new one. */
    w = kwriter_open(out, 1);
    kwriter_hdr_begin(w, NULL, "tokens", 9);
    kwriter_end(w);
    const char *skip[] = {"image", NULL};
    kwriter_begin(w, "tokens");
    kw_copy_fields(w, &first->rec, skip);
    kw_u64(w, "extra", 5);
    kwriter_end(w);
    kwriter_close(w, "ok");
    kstored_free(first);
    r = kreader_open(out, 1);
    CHECK(kreader_next(r, &rec) && krec_is(&rec, "tokens"));
    CHECK(krec_u64_or(&rec, "id", 0) == 10 && krec_u64_or(&rec, "extra", 0) == 5);
    CHECK(!krec_get(&rec, "image") && krec_str(&rec, "label", &s, &n));
    CHECK(!krec_image(&rec, &im));
    kreader_close(r);
    kimage_free(&im);
    unlink(in), unlink(out);
    return check_report("sample");
}
