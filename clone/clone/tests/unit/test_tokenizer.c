/* test_tokenizer — vocab layout, text and image round trips, the hdr description, class and
 * palette files, and k-means finding obvious clusters. */
#include "check.h"
#include "data/tokenizer.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[256];

static char **names(int n, const char **src) {
    char **v = xmalloc(sizeof(char *) * n);
    for (int i = 0; i < n; i++) v[i] = xstrdup(src[i]);
    return v;
}

static void text(void) {
    ktokenizer t;
    ktok_init_bytes(&t);
    CHECK(t.bos == 256 && t.eos == 257 && t.pad == 258 && t.class_base == 259 && t.vocab == 259);
    const char *cls[] = {"poem", "prose"};
    ktok_set_classes(&t, names(2, cls), 2);
    CHECK(t.vocab == 261 && ktok_class_token(&t, "prose", 5) == 260);
    CHECK(ktok_class_token(&t, "pro", 3) == -1 && strcmp(ktok_class_name(&t, 259), "poem") == 0);
    int32_t tok[16];
    const char *s = "h\xc3\xa9!";
    size_t n = ktok_encode_text(&t, (const uint8_t *)s, 4, 260, true, tok);
    CHECK(n == 7 && tok[0] == 256 && tok[1] == 260 && tok[2] == 'h' && tok[3] == 0xc3 &&
          tok[6] == 257);
    uint8_t back[16];
    CHECK(ktok_decode_text(&t, tok, n, back) == 4 && memcmp(back, s, 4) == 0);
    ktok_free(&t);
}

static kimage gradient(int h, int w, int c) {
    kimage im = kimage_new(h, w, c);
    for (size_t i = 0; i < kimage_bytes(&im); i++) im.data[i] = (uint8_t)(i * 13);
    return im;
}

static void levels(void) {
    ktokenizer t;
    ktok_init_levels(&t, 256);
    t.height = 5, t.width = 7, t.channels = 3;
    kimage im = gradient(5, 7, 3), back = {0};
    int32_t tok[5 * 7 * 3 + 1];
    CHECK(ktok_encode_image(&t, &im, -1, tok) == 106 && tok[0] == (int32_t)t.bos);
    int64_t cls;
    CHECK(ktok_decode_image(&t, tok, 106, &back, &cls) && cls == -1);
    CHECK(back.h == 5 && back.w == 7 && back.c == 3 && memcmp(back.data, im.data, 105) == 0);
    ktok_free(&t);
    /* 16 levels: bins of 16, decoded to the bin's spread value; within half a bin-ish. */
    ktok_init_levels(&t, 16);
    t.height = 5, t.width = 7, t.channels = 3;
    ktok_encode_image(&t, &im, -1, tok);
    int ok = 1;
    for (int i = 1; i < 106; i++) ok &= tok[i] == im.data[i - 1] / 16;
    CHECK(ok);
    CHECK(ktok_decode_image(&t, tok, 106, &back, &cls));
    ok = 1;
    for (int i = 0; i < 105; i++) ok &= abs(back.data[i] - im.data[i]) <= 16;
    CHECK(ok && back.data[0] == 0);
    kimage_free(&im), kimage_free(&back);
    ktok_free(&t);
}

static void palette_and_hdr(void) {
    uint8_t pal[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {255, 255, 255}};
    ktokenizer t, u;
    ktok_init_palette(&t, (const uint8_t(*)[3])pal, 4);
    const char *cls[] = {"a", "b", "c"};
    ktok_set_classes(&t, names(3, cls), 3);
    t.height = 2, t.width = 2, t.channels = 3;
    CHECK(t.bos == 4 && t.class_base == 7 && t.vocab == 10);
    kimage im = kimage_new(2, 2, 3), back = {0};
    uint8_t px[12] = {250, 5, 5, 0, 240, 10, 10, 10, 10, 200, 220, 240};
    memcpy(im.data, px, 12);
    int32_t tok[5];
    CHECK(ktok_encode_image(&t, &im, 8, tok) == 5);
    CHECK(tok[0] == 8 && tok[1] == 1 && tok[2] == 2 && tok[3] == 0 && tok[4] == 3);
    int64_t cls_tok;
    CHECK(ktok_decode_image(&t, tok, 5, &back, &cls_tok) && cls_tok == 8);
    CHECK(back.data[0] == 255 && back.data[1] == 0 && back.data[11] == 255);

    /* The hdr description round-trips through msgpack. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ktok_pack(&t, &pk);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    CHECK(msgpack_unpack_next(&up, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    CHECK(ktok_from_obj(&up.data, &u, err, sizeof err));
    CHECK(u.kind == KTOK_PALETTE && u.npalette == 4 && u.vocab == 10 && u.nclasses == 3 &&
          strcmp(u.classes[2], "c") == 0 && u.height == 2 && u.channels == 3 &&
          memcmp(u.palette, pal, 12) == 0);
    ktok_free(&u);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    /* A description whose ids disagree with its layout is refused. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    t.vocab++;
    ktok_pack(&t, &pk);
    msgpack_unpacked_init(&up);
    msgpack_unpack_next(&up, sb.data, sb.size, NULL);
    CHECK(!ktok_from_obj(&up.data, &u, err, sizeof err) && strstr(err, "inconsistent"));
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    kimage_free(&im), kimage_free(&back);
    ktok_free(&t);
}

static void files(void) {
    char path[] = "/tmp/kiln-test-tok-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char classes[] = "T-shirt/top\r\nTrouser\n\nPullover\n";
    CHECK(write(fd, classes, sizeof classes - 1) == (ssize_t)(sizeof classes - 1));
    close(fd);
    char **cls;
    uint32_t n;
    CHECK(kclasses_load(path, &cls, &n, err, sizeof err) && n == 3 &&
          strcmp(cls[0], "T-shirt/top") == 0 && strcmp(cls[2], "Pullover") == 0);
    kclasses_free(cls, n);
    FILE *f = fopen(path, "w");
    fputs("a\nb\na\n", f);
    fclose(f);
    CHECK(!kclasses_load(path, &cls, &n, err, sizeof err) && strstr(err, ":3: class 'a'"));
    CHECK(!kclasses_load("/nonexistent", &cls, &n, err, sizeof err));

    uint8_t pal[2][3] = {{1, 2, 3}, {250, 251, 252}};
    CHECK(kpalette_save(path, (const uint8_t(*)[3])pal, 2, err, sizeof err));
    uint8_t(*back)[3];
    CHECK(kpalette_load(path, &back, &n, err, sizeof err) && n == 2 && memcmp(back, pal, 6) == 0);
    free(back);
    f = fopen(path, "w");
    fputs("1 2 3\n4 5 256\n", f);
    fclose(f);
    CHECK(!kpalette_load(path, &back, &n, err, sizeof err) && strstr(err, ":2:"));
    unlink(path);
}

static void kmeans(void) {
    /* Three tight clusters: k-means with k = 3 finds their centres. */
    enum { N = 300 };
    uint8_t rgb[N * 3];
    const uint8_t centre[3][3] = {{20, 30, 40}, {200, 10, 10}, {240, 240, 240}};
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 3; c++) rgb[i * 3 + c] = (uint8_t)(centre[i % 3][c] + (i / 3) % 3 - 1);
    uint8_t out[3][3], again[3][3];
    kpalette_kmeans(rgb, N, 3, 10, 7, out);
    kpalette_kmeans(rgb, N, 3, 10, 7, again);
    CHECK(memcmp(out, again, 9) == 0);
    int found = 0;
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++)
            found += abs(out[i][0] - centre[j][0]) <= 1 && abs(out[i][1] - centre[j][1]) <= 1 &&
                     abs(out[i][2] - centre[j][2]) <= 1;
    CHECK(found == 3);
    /* Sorted dark to light. */
    CHECK(out[0][0] == 20 && out[2][0] == 240);
}

int main(void) {
    text();
    levels();
    palette_and_hdr();
    files();
    kmeans();
    return check_report("tokenizer");
}
