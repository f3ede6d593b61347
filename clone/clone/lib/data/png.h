/* png — read any PNG (every colour type and bit depth: palette, gray+alpha, 16-bit,
 * interlaced) into an 8-bit image, and write 8-bit PNGs.  The declared size is checked
 * against a pixel limit before any pixel memory is allocated, so a hostile header cannot
 * make kiln allocate gigabytes. */
#ifndef KILN_PNG_H
#define KILN_PNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/image.h"

/* Default pixel limit (width * height): 64 megapixels. */
#define KPNG_MAX_PIXELS_DEFAULT (64ull << 20)

/* Decode a PNG held in memory.  want: 1, 3 or 4 channels, or 0 to keep the file's own
 * (gray 1, gray+alpha 4, RGB 3, RGBA 4).  On failure returns false with a one-line reason
 * in err ("not a PNG file", "truncated file", "declares 100000x100000 pixels, over the
 * limit of ...").  out is (re)used: pass a zeroed kimage the first time. */
bool kpng_decode(const uint8_t *buf, size_t len, int want, uint64_t max_pixels, kimage *out,
                 char *err, size_t errlen);
/* Read a file and decode it; I/O errors are reported in err like decode errors. */
bool kpng_read_file(const char *path, int want, uint64_t max_pixels, kimage *out, char *err,
                    size_t errlen);
/* Write an 8-bit PNG with 1, 2, 3 or 4 channels. */
bool kpng_write_file(const char *path, const kimage *im, char *err, size_t errlen);

/* Read a whole file into memory (NUL appended, not counted in *len). */
bool kread_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen);

#endif
