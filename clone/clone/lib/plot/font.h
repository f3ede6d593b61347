/* font — a 5x7 bitmap font for printable ASCII, drawn into 8-bit images: the labels of
 * `kiln plot`.  Glyphs sit in a 6x9 cell (one column and two rows of spacing); `scale`
 * draws each font pixel as scale x scale image pixels.  Other bytes draw as '?'. */
#ifndef KILN_FONT_H
#define KILN_FONT_H

#include <stdint.h>

#include "data/image.h"

#define KFONT_W       5
#define KFONT_H       7
#define KFONT_ADVANCE 6 /* horizontal distance between characters, in font pixels */
#define KFONT_LINE    9 /* vertical distance between lines, in font pixels */

/* Draw s with its top-left corner at (x, y), clipped to the image.  rgb is used as is on
 * 3/4-channel images, its green on 1/2-channel ones. */
void kfont_draw(kimage *im, int x, int y, const char *s, int scale, const uint8_t rgb[3]);
/* Width in pixels of s drawn at this scale (no trailing spacing). */
int kfont_width(const char *s, int scale);

#endif
