/* png — libpng behind a small interface.  libpng reports errors by longjmp; every object
 * whose value changes between setjmp and a possible longjmp is volatile or lives in the
 * context struct, and nothing allocated inside the protected region leaks on error. */
#include "data/png.h"

#include "core/util.h"

#include <errno.h>
#include <libpng16/png.h> /* not <png.h>: -Ilib would find our own png.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the error and read callbacks share with the caller. */
typedef struct png_ctx {
    const uint8_t *buf;
    size_t len, pos;
    char *err;
    size_t errlen;
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->err, ctx->errlen, "bad PNG data (%s)", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png, (void)msg; /* warnings (bad CRC in ancillary chunks, ...) are not fatal */
}

static void read_from_memory(png_structp png, png_bytep data, size_t n) {
    png_ctx *ctx = png_get_io_ptr(png);
    if (n > ctx->len - ctx->pos) {
        snprintf(ctx->err, ctx->errlen, "truncated file (%zu bytes)", ctx->len);
        png_longjmp(png, 1);
    }
    memcpy(data, ctx->buf + ctx->pos, n);
    ctx->pos += n;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The size check reads IHDR straight from the bytes (the PNG spec puts it first), because
 * png_read_info already reads on to the following chunks before it returns. */
static bool declared_size_ok(const uint8_t *buf, size_t len, uint64_t max_pixels, char *err,
                             size_t errlen) {
    if (len < 24 || memcmp(buf + 12, "IHDR", 4) != 0) return true; /* libpng will complain */
    uint64_t w = be32(buf + 16), h = be32(buf + 20);
    if (w * h <= max_pixels) return true;
    snprintf(err, errlen, "declares %llux%llu pixels, over the limit of %llu (see --max-pixels)",
             (unsigned long long)w, (unsigned long long)h, (unsigned long long)max_pixels);
    return false;
}

bool kpng_decode(const uint8_t *buf, size_t len, int want, uint64_t max_pixels, kimage *out,
                 char *err, size_t errlen) {
    if (len < 8 || png_sig_cmp(buf, 0, 8)) {
        snprintf(err, errlen, len < 8 ? "truncated file (%zu bytes)" : "not a PNG file", len);
        return false;
    }
    if (!declared_size_ok(buf, len, max_pixels, err, errlen)) return false;
    png_ctx ctx = {buf, len, 0, err, errlen};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    if (!png) kiln_die(EX_KILN_SOFTWARE, "out of memory (libpng)");
    png_infop info = png_create_info_struct(png);
    if (!info) kiln_die(EX_KILN_SOFTWARE, "out of memory (libpng)");
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return false;
    }
    png_set_read_fn(png, &ctx, read_from_memory);
    /* libpng's own guards: no dimension over 1M and no ancillary chunk over 8 MB. */
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, info);

    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    /* Everything to 8 bits per channel: palette -> RGB(A), low-bit gray -> 8 bits,
     * tRNS -> alpha, 16 bits -> 8 bits (rounded), interlace undone. */
    png_set_expand(png);
    png_set_scale_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)w * c) {
        snprintf(err, errlen, "unexpected row size %zu", rowbytes);
        png_longjmp(png, 1);
    }
    pixels = xmalloc(xmul(rowbytes, h));
    rows = xmalloc(xmul(h, sizeof *rows));
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    kimage_convert(pixels, (int)h, (int)w, c, want ? want : c == 2 ? 4 : c, out);
    free(pixels);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return true;
}

bool kread_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open (%s)", strerror(errno));
        return false;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) b = xrealloc(b, cap = xmul(cap, 2));
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "read error");
        free(b);
        return false;
    }
    b[n] = 0;
    *buf = b, *len = n;
    return true;
}

bool kpng_read_file(const char *path, int want, uint64_t max_pixels, kimage *out, char *err,
                    size_t errlen) {
    uint8_t *buf;
    size_t len;
    if (!kread_file(path, &buf, &len, err, errlen)) return false;
    bool ok = kpng_decode(buf, len, want, max_pixels, out, err, errlen);
    free(buf);
    return ok;
}

bool kpng_write_file(const char *path, const kimage *im, char *err, size_t errlen) {
    static const int color_type[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                      PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    if (im->c < 1 || im->c > 4) {
        snprintf(err, errlen, "cannot write %d channels", im->c);
        return false;
    }
    FILE *volatile f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot create (%s)", strerror(errno));
        return false;
    }
    png_ctx ctx = {NULL, 0, 0, err, errlen};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    if (!png) kiln_die(EX_KILN_SOFTWARE, "out of memory (libpng)");
    png_infop info = png_create_info_struct(png);
    if (!info) kiln_die(EX_KILN_SOFTWARE, "out of memory (libpng)");
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return false;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, color_type[im->c],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < im->h; y++) png_write_row(png, im->data + (size_t)y * im->w * im->c);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "write error (%s)", strerror(errno));
        return false;
    }
    return true;
}
