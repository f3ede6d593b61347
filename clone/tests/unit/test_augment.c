/* test_augment — op parsing, identities (flip twice, zero-size ops), what each op changes,
 * and determinism: the result depends on the rng key only. */
#include "data/augment.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static char err[256];

static kaug_op op(const char *spec) {
    kaug_op o;
    bool ok = kaug_parse(spec, &o, err, sizeof err);
    if (!ok) fprintf(stderr, "parse %s: %s\n", spec, err);
    CHECK(ok);
    return o;
}

static kimage pattern(int h, int w, int c) {
    kimage im = kimage_new(h, w, c);
    for (size_t i = 0; i < kimage_bytes(&im); i++) im.data[i] = (uint8_t)(i * 31 % 251);
    return im;
}

static bool same(const kimage *a, const kimage *b) {
    return a->h == b->h && a->w == b->w && a->c == b->c &&
           memcmp(a->data, b->data, kimage_bytes(a)) == 0;
}

/* Apply one op spec to a copy of src with the rng keyed by id. */
static kimage run(const char *spec, const kimage *src, uint64_t id) {
    kaug_op o = op(spec);
    kimage im = kimage_new(src->h, src->w, src->c), scratch = {0};
    memcpy(im.data, src->data, kimage_bytes(src));
    krng r;
    krng_init(&r, 5, id, 0, KRNG_AUGMENT);
    kaug_apply(&o, 1, &r, &im, &scratch);
    kimage_free(&scratch);
    return im;
}

static void parsing(void) {
    kaug_op o;
    CHECK(kaug_parse("hflip", &o, err, sizeof err) && o.kind == KAUG_HFLIP && o.p == 0.5);
    CHECK(kaug_parse("crop:4,reflect@0.8", &o, err, sizeof err) && o.kind == KAUG_CROP &&
          o.arg[0] == 4 && o.reflect && o.p == 0.8);
    CHECK(kaug_parse("scale:0.9-1.2", &o, err, sizeof err) && o.arg[0] == 0.9 && o.arg[1] == 1.2);
    CHECK(kaug_parse("jitter:0.4,0.3", &o, err, sizeof err) && o.arg[1] == 0.3 && o.arg[2] == 0);
    CHECK(kaug_parse("cutout:2,8", &o, err, sizeof err) && o.p == 1);
    const char *bad[] = {"blur",      "hflip@2",          "crop",     "crop:1.5",
                         "scale:2-1", "jitter:0,0,0,0.7", "noise:-1", "rotate:x",
                         "cutout:1",  "gray:3",           "hflip@",   "crop:2,mirror"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bool ok = kaug_parse(bad[i], &o, err, sizeof err);
        if (ok) fprintf(stderr, "accepted bad op %s\n", bad[i]);
        CHECK(!ok && err[0]);
    }
}

static void identities(void) {
    kimage src = pattern(9, 11, 3);
    const char *noop[] = {"crop:0",  "shift:0",    "rotate:0", "scale:1-1", "jitter:0",
                          "noise:0", "cutout:0,4", "hflip@0",  "gray@0"};
    for (size_t i = 0; i < sizeof noop / sizeof *noop; i++) {
        kimage a = run(noop[i], &src, 1);
        if (!same(&a, &src)) fprintf(stderr, "%s changed the image\n", noop[i]);
        CHECK(same(&a, &src));
        kimage_free(&a);
    }
    /* hflip@1 mirrors each row. */
    kimage f = run("hflip@1", &src, 1);
    CHECK(memcmp(f.data, src.data + 10 * 3, 3) == 0);
    kimage g = run("vflip@1", &src, 1);
    CHECK(memcmp(g.data, src.data + 8 * 11 * 3, 11 * 3) == 0);
    kimage_free(&g);
    /* Flipping twice gives the original back. */
    kaug_op flips[2] = {op("hflip@1"), op("hflip@1")};
    kimage scratch = {0};
    krng r;
    krng_init(&r, 1, 1, 1, 1);
    kaug_apply(flips, 1, &r, &f, &scratch);
    CHECK(same(&f, &src));
    kaug_apply(flips, 2, &r, &f, &scratch);
    CHECK(same(&f, &src));
    kimage_free(&f), kimage_free(&scratch), kimage_free(&src);
}

static void effects(void) {
    kimage src = pattern(16, 16, 3);
    /* gray: r = g = b everywhere. */
    kimage g = run("gray", &src, 1);
    int gray = 1;
    for (int i = 0; i < 256; i++)
        gray &= g.data[3 * i] == g.data[3 * i + 1] && g.data[3 * i] == g.data[3 * i + 2];
    CHECK(gray);
    kimage_free(&g);
    /* cutout of one 4x4 square zeroes at most 16 pixels and at least 4 (a corner). */
    kimage flat = kimage_new(16, 16, 1);
    memset(flat.data, 9, 256);
    for (uint64_t id = 0; id < 20; id++) {
        kimage c = run("cutout:1,4", &flat, id);
        int zeros = 0;
        for (int i = 0; i < 256; i++) zeros += c.data[i] == 0;
        CHECK(zeros >= 4 && zeros <= 16);
        kimage_free(&c);
    }
    /* crop:2 shifts by at most 2: pixel sums over a flat image lose at most the border. */
    for (uint64_t id = 0; id < 20; id++) {
        kimage c = run("crop:2", &flat, id);
        int nines = 0;
        for (int i = 0; i < 256; i++) nines += c.data[i] == 9;
        CHECK(nines >= 14 * 14);
        kimage_free(&c);
        kimage m = run("crop:3,reflect", &flat, id);
        CHECK(same(&m, &flat)); /* mirrored padding of a flat image is the same image */
        kimage_free(&m);
    }
    /* rotate:180 about the centre of an odd square keeps the centre pixel. */
    kimage odd = pattern(7, 7, 1);
    kimage rot = run("rotate:180", &odd, 3);
    CHECK(rot.data[3 * 7 + 3] == odd.data[3 * 7 + 3]);
    kimage_free(&rot), kimage_free(&odd);
    /* jitter with brightness only scales values. */
    kimage j = run("jitter:0.5", &flat, 4);
    CHECK(j.data[0] == j.data[255] && j.data[0] >= 4 && j.data[0] <= 14);
    kimage_free(&j);
    kimage_free(&flat), kimage_free(&src);
}

static void determinism(void) {
    kimage src = pattern(28, 28, 3);
    const char *specs[] = {
        "hflip",   "crop:2",     "rotate:15", "scale:0.8-1.2", "jitter:0.4,0.4,0.4,0.1",
        "noise:8", "cutout:2,5", "shift:3"};
    kaug_op ops[8];
    for (int i = 0; i < 8; i++) ops[i] = op(specs[i]);
    kimage out[3], scratch = {0};
    uint64_t ids[3] = {17, 17, 18};
    for (int k = 0; k < 3; k++) {
        out[k] = kimage_new(28, 28, 3);
        memcpy(out[k].data, src.data, kimage_bytes(&src));
        krng r;
        krng_init(&r, 99, ids[k], 2, KRNG_AUGMENT);
        kaug_apply(ops, 8, &r, &out[k], &scratch);
    }
    CHECK(same(&out[0], &out[1]));
    CHECK(!same(&out[0], &out[2]));
    CHECK(!same(&out[0], &src));
    for (int k = 0; k < 3; k++) kimage_free(&out[k]);
    kimage_free(&scratch), kimage_free(&src);
}

int main(void) {
    parsing();
    identities();
    effects();
    determinism();
    return check_report("augment");
}
