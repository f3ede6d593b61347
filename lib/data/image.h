/* image — 8-bit images in memory ([H,W,C] raster order, C = 1 gray, 3 RGB, 4 RGBA, as a
 * `sample` record's `image` tensor carries them), channel conversion and resizing. */
#ifndef KILN_IMAGE_H
#define KILN_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kimage {
    uint8_t *data; /* h*w*c bytes, owned */
    int h, w, c;
} kimage;

/* A new image of the given size, zeroed.  Sizes must be positive and c in 1..4. */
kimage kimage_new(int h, int w, int c);
void kimage_free(kimage *im);
size_t kimage_bytes(const kimage *im);
/* Make im hold h*w*c bytes (reusing its buffer when large enough); contents undefined. */
void kimage_reshape(kimage *im, int h, int w, int c);

/* Convert between 1 (gray), 2 (gray+alpha), 3 (RGB) and 4 (RGBA) channels: color to gray by
 * ITU-R BT.601 luma, alpha dropped or set opaque.  `dst` is resized to (h, w, want). */
void kimage_convert(const uint8_t *src, int h, int w, int c, int want, kimage *dst);

/* Resize to oh x ow: area averaging along an axis that shrinks, bilinear along one that
 * grows, so every source pixel counts when shrinking and enlarging stays smooth. */
void kimage_resize(const kimage *src, int oh, int ow, kimage *dst);

/* n images laid out `cols` to a row, each scaled up `scale` times (nearest pixel), 2 white
 * pixels between and around: what kiln sample --png and kiln rollout --png write.  Every cell
 * is the size of the largest image (a smaller one sits in its top-left corner); the grid has
 * im[0]'s channels, the others converted.  n >= 1, cols >= 1, scale >= 1. */
kimage kimage_grid(const kimage *im, int n, int cols, int scale);

/* Parse "HxW" (e.g. "64x64"); false if malformed or out of 1..65535. */
bool kimage_parse_size(const char *s, int *h, int *w);

#endif
