/* test_png — every PNG colour type and bit depth decodes to the right 8-bit pixels; corrupt,
 * truncated and oversized files fail with a clear reason; write/read round-trips; resizing
 * averages areas when shrinking and interpolates when growing. */
#include "check.h"
#include "data/png.h"
#include "core/rng.h"
#include "core/util.h"

#include <libpng16/png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
} membuf;

static void mem_write(png_structp png, png_bytep d, size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) m->data = xrealloc(m->data, m->cap = (m->len + n) * 2);
    memcpy(m->data + m->len, d, n);
    m->len += n;
}
static void mem_flush(png_structp png) {
    (void)png;
}

/* Encode rows of raw samples (already packed at `depth` bits) with libpng directly, so the
 * test covers what other encoders produce: palettes, 16 bits, interlacing, tRNS. */
static membuf encode(int w, int h, int color, int depth, int interlace, const uint8_t *raw,
                     size_t rowbytes, const png_color *pal, int npal, const uint8_t *trns,
                     int ntrns) {
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, w, h, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    png_bytep *rows = xmalloc(sizeof(png_bytep) * h);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)raw + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return m;
}

static char err[256];

static void gray8(void) {
    uint8_t px[6] = {0, 50, 100, 150, 200, 255};
    membuf m = encode(3, 2, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, px, 3, NULL, 0, NULL, 0);
    kimage im = {0};
    CHECK(kpng_decode(m.data, m.len, 1, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(im.h == 2 && im.w == 3 && im.c == 1 && memcmp(im.data, px, 6) == 0);
    CHECK(kpng_decode(m.data, m.len, 3, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(im.c == 3 && im.data[3 * 4] == 200 && im.data[3 * 4 + 2] == 200);
    CHECK(kpng_decode(m.data, m.len, 4, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(im.c == 4 && im.data[4 * 1] == 50 && im.data[4 * 1 + 3] == 255);
    kimage_free(&im);
    free(m.data);
}

static void rgb16_and_interlaced(void) {
    /* 16-bit samples v*257 scale exactly to v. */
    enum { W = 13, H = 7 };
    uint8_t raw16[H][W * 6], raw8[H][W * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W * 3; x++) {
            uint8_t v = (uint8_t)(y * 37 + x * 11);
            raw8[y][x] = v;
            raw16[y][2 * x] = raw16[y][2 * x + 1] = v; /* big-endian v*257 */
        }
    membuf m16 = encode(W, H, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, &raw16[0][0], W * 6, NULL,
                        0, NULL, 0);
    membuf mi = encode(W, H, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, &raw8[0][0], W * 3, NULL,
                       0, NULL, 0);
    kimage a = {0}, b = {0};
    CHECK(kpng_decode(m16.data, m16.len, 0, KPNG_MAX_PIXELS_DEFAULT, &a, err, sizeof err));
    CHECK(a.c == 3 && a.h == H && a.w == W && memcmp(a.data, raw8, sizeof raw8) == 0);
    CHECK(kpng_decode(mi.data, mi.len, 3, KPNG_MAX_PIXELS_DEFAULT, &b, err, sizeof err));
    CHECK(b.c == 3 && memcmp(b.data, raw8, sizeof raw8) == 0);
    /* RGB to gray uses BT.601 luma. */
    CHECK(kpng_decode(mi.data, mi.len, 1, KPNG_MAX_PIXELS_DEFAULT, &b, err, sizeof err));
    const uint8_t *p = raw8[3] + 3 * 5;
    CHECK(abs(b.data[3 * W + 5] - (int)(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] + 0.5)) <= 1);
    kimage_free(&a), kimage_free(&b);
    free(m16.data), free(mi.data);
}

static void palette_alpha_lowbits(void) {
    /* 4-bit palette, 4x1 pixels: indices 0 1 2 3, entry 1 half transparent. */
    png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
    uint8_t trns[2] = {255, 128};
    uint8_t raw[2] = {0x01, 0x23};
    membuf m = encode(4, 1, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, raw, 2, pal, 4, trns, 2);
    kimage im = {0};
    CHECK(kpng_decode(m.data, m.len, 0, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    uint8_t want[16] = {255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 255, 10, 20, 30, 255};
    CHECK(im.c == 4 && memcmp(im.data, want, 16) == 0);
    CHECK(kpng_decode(m.data, m.len, 3, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(im.c == 3 && im.data[4] == 255 && im.data[9] == 10);
    free(m.data);

    /* 1-bit gray: 0 and 1 become 0 and 255. */
    uint8_t bits[1] = {0xA0}; /* 1 0 1 0 */
    m = encode(4, 1, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, bits, 1, NULL, 0, NULL, 0);
    CHECK(kpng_decode(m.data, m.len, 1, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(im.data[0] == 255 && im.data[1] == 0 && im.data[2] == 255 && im.data[3] == 0);
    free(m.data);

    /* Gray+alpha keeps its alpha as RGBA by default, drops it for gray. */
    uint8_t ga[4] = {90, 10, 200, 255};
    m = encode(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, ga, 4, NULL, 0, NULL, 0);
    CHECK(kpng_decode(m.data, m.len, 0, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(im.c == 4 && im.data[0] == 90 && im.data[2] == 90 && im.data[3] == 10);
    CHECK(kpng_decode(m.data, m.len, 1, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(im.c == 1 && im.data[0] == 90 && im.data[1] == 200);
    free(m.data);
    kimage_free(&im);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = (uint8_t)v;
}

static void bad_files(void) {
    uint8_t px[64] = {0};
    membuf m = encode(8, 8, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, px, 8, NULL, 0, NULL, 0);
    kimage im = {0};
    CHECK(!kpng_decode(m.data, m.len / 2, 1, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(strstr(err, "truncated") != NULL);
    CHECK(!kpng_decode(m.data, 5, 1, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(strstr(err, "truncated") != NULL);
    uint8_t text[] = "hello, this is not a png at all";
    CHECK(!kpng_decode(text, sizeof text, 1, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(strcmp(err, "not a PNG file") == 0);
    /* Corrupt the IDAT payload (after signature 8 + IHDR 25 + IDAT length/type 8). */
    for (size_t i = 41; i < m.len - 12; i++) m.data[i] ^= 0x5a;
    CHECK(!kpng_decode(m.data, m.len, 1, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(strstr(err, "bad PNG data") != NULL);
    free(m.data);

    /* A header declaring 100000x100000 pixels and nothing else: refused on the header. */
    uint8_t huge[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                        0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    put_be32(huge + 16, 100000), put_be32(huge + 20, 100000);
    huge[24] = 8, huge[25] = 0;
    put_be32(huge + 29, (uint32_t)crc32(0, huge + 12, 17));
    CHECK(!kpng_decode(huge, sizeof huge, 1, KPNG_MAX_PIXELS_DEFAULT, &im, err, sizeof err));
    CHECK(strstr(err, "100000x100000") != NULL && strstr(err, "limit") != NULL);
    /* The limit is the caller's: a tiny one refuses an 8x8 image too. */
    m = encode(8, 8, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, px, 8, NULL, 0, NULL, 0);
    CHECK(!kpng_decode(m.data, m.len, 1, 63, &im, err, sizeof err));
    CHECK(kpng_decode(m.data, m.len, 1, 64, &im, err, sizeof err));
    free(m.data);
    CHECK(!kpng_read_file("/nonexistent/x.png", 1, 64, &im, err, sizeof err));
    CHECK(strstr(err, "cannot open") != NULL);
    kimage_free(&im);
}

/* Recompute every complete chunk's CRC, so mutations reach the parser and inflate instead
 * of stopping at the CRC check. */
static void fix_crcs(uint8_t *b, size_t len) {
    size_t i = 8;
    while (i + 12 <= len) {
        uint32_t n =
            (uint32_t)b[i] << 24 | (uint32_t)b[i + 1] << 16 | (uint32_t)b[i + 2] << 8 | b[i + 3];
        if (n > len - i - 12) break;
        put_be32(b + i + 8 + n, (uint32_t)crc32(0, b + i + 4, n + 4));
        i += 12 + (size_t)n;
    }
}

/* Hostile bytes: random mutations and cuts of valid files of every colour type must decode
 * or fail with a reason, never crash or leak (the sanitizer build runs this too). */
static void mutations(void) {
    enum { W = 9, H = 5 };
    uint8_t raw[H * W * 8];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 29);
    png_color pal[4] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}};
    membuf files[4] = {
        encode(W, H, PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_ADAM7, raw, W * 8, NULL, 0, NULL,
               0),
        encode(W, H, PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_NONE, raw, (W * 2 + 7) / 8, pal, 4,
               NULL, 0),
        encode(W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, raw, W * 2, NULL, 0, NULL,
               0),
        encode(W, H, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_ADAM7, raw, W, NULL, 0, NULL, 0),
    };
    krng r;
    krng_init(&r, 1, 0, 0, 99);
    kimage im = {0};
    int decoded = 0, refused = 0, explained = 1;
    for (int trial = 0; trial < 4000; trial++) {
        const membuf *f = &files[trial % 4];
        uint8_t *buf = xmalloc(f->len);
        memcpy(buf, f->data, f->len);
        size_t len = f->len;
        int flips = 1 + (int)krng_below(&r, 4);
        for (int k = 0; k < flips; k++)
            buf[krng_below(&r, len)] ^= (uint8_t)(1 + krng_below(&r, 255));
        if (krng_below(&r, 4) == 0) len = (size_t)krng_below(&r, len);
        if (krng_below(&r, 4) != 0) fix_crcs(buf, len);
        err[0] = 0;
        if (kpng_decode(buf, len, (int)krng_below(&r, 5) % 5, KPNG_MAX_PIXELS_DEFAULT, &im, err,
                        sizeof err))
            decoded++;
        else
            refused++, explained &= err[0] != 0;
        free(buf);
    }
    CHECK(refused > 0 && decoded > 0 && explained);
    CHECK(decoded + refused == 4000);
    for (int i = 0; i < 4; i++) free(files[i].data);
    kimage_free(&im);
}

static void write_read(void) {
    char path[] = "/tmp/kiln-test-png-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    for (int c = 1; c <= 4; c++) {
        kimage im = kimage_new(5, 9, c), back = {0};
        for (size_t i = 0; i < kimage_bytes(&im); i++) im.data[i] = (uint8_t)(i * 7 + c);
        CHECK(kpng_write_file(path, &im, err, sizeof err));
        CHECK(kpng_read_file(path, c == 2 ? 0 : c, 1000, &back, err, sizeof err));
        if (c != 2)
            CHECK(back.c == c && memcmp(back.data, im.data, kimage_bytes(&im)) == 0);
        else
            CHECK(back.c == 4 && back.data[3] == im.data[1]);
        kimage_free(&im), kimage_free(&back);
    }
    unlink(path);
}

static void resize(void) {
    kimage src = kimage_new(4, 4, 1), dst = {0};
    for (int i = 0; i < 16; i++) src.data[i] = (uint8_t)(i * 10);
    kimage_resize(&src, 2, 2, &dst);
    /* Area averaging: top-left block {0,10,40,50} -> 25. */
    CHECK(dst.h == 2 && dst.w == 2 && dst.data[0] == 25 && dst.data[3] == 125);
    /* 4 -> 3 mixes partial pixels: first output covers 1 + 1/3 source pixels per axis. */
    kimage_resize(&src, 4, 3, &dst);
    CHECK(dst.w == 3 && abs(dst.data[0] - (int)((0 + 10 * 1.0 / 3) * 3 / 4 + 0.5)) <= 1);
    /* Bilinear growth: 1x2 [0, 100] -> 1x4 [0, 25, 75, 100]. */
    kimage two = kimage_new(1, 2, 1);
    two.data[1] = 100;
    kimage_resize(&two, 1, 4, &dst);
    CHECK(dst.data[0] == 0 && dst.data[1] == 25 && dst.data[2] == 75 && dst.data[3] == 100);
    /* A constant image stays constant whatever the sizes. */
    kimage flat = kimage_new(7, 5, 3);
    memset(flat.data, 77, kimage_bytes(&flat));
    kimage_resize(&flat, 3, 11, &dst);
    int same = 1;
    for (size_t i = 0; i < kimage_bytes(&dst); i++) same &= dst.data[i] == 77;
    CHECK(same && dst.c == 3);
    int h, w;
    CHECK(kimage_parse_size("64x32", &h, &w) && h == 64 && w == 32);
    CHECK(!kimage_parse_size("64", &h, &w) && !kimage_parse_size("0x3", &h, &w));
    kimage_free(&src), kimage_free(&dst), kimage_free(&two), kimage_free(&flat);
}

/* kimage_grid: cells of the largest image, 2 white pixels between, nearest-pixel scaling,
 * a smaller image top-left in its cell, an RGB image turned gray for a gray grid. */
static void grid(void) {
    kimage im[3] = {kimage_new(2, 2, 1), kimage_new(1, 1, 1), kimage_new(2, 1, 3)};
    for (int i = 0; i < 4; i++) im[0].data[i] = (uint8_t)(10 * (i + 1));
    im[1].data[0] = 7;
    memset(im[2].data, 90, 6);           /* gray 90 as RGB */
    kimage g = kimage_grid(im, 3, 2, 2); /* 2 rows of 2 cells of 4x4 */
    CHECK(g.h == 2 + 2 * (4 + 2) && g.w == 2 + 2 * (4 + 2) && g.c == 1);
    const uint8_t *d = g.data;
    int W = g.w;
    CHECK(d[0] == 255 && d[2 * W + 2] == 10 && d[3 * W + 3] == 10 && d[2 * W + 4] == 20);
    CHECK(d[5 * W + 5] == 40 && d[6 * W + 6] == 255);   /* the cell's last pixel, then the gap */
    CHECK(d[2 * W + 8] == 7 && d[3 * W + 9] == 7);      /* the 1x1 image, scaled */
    CHECK(d[2 * W + 10] == 255 && d[4 * W + 8] == 255); /* the rest of its cell stays white */
    CHECK(d[8 * W + 2] == 90 && d[11 * W + 3] == 90 && d[8 * W + 4] == 255); /* RGB to gray */
    CHECK(d[8 * W + 8] == 255); /* the empty fourth cell */
    for (int i = 0; i < 3; i++) kimage_free(&im[i]);
    kimage_free(&g);
}

int main(void) {
    grid();
    gray8();
    rgb16_and_interlaced();
    palette_alpha_lowbits();
    bad_files();
    mutations();
    write_read();
    resize();
    return check_report("png");
}
