/* augment — the image ops.  Geometry works by inverse mapping (each output pixel asks where
 * it comes from), colour by per-pixel arithmetic clamped to 0..255 after each op. */
#include "data/augment.h"

#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    kaug_kind kind;
    int min_args, max_args;
    double default_p;
} op_table[] = {
    {"hflip", KAUG_HFLIP, 0, 0, 0.5}, {"vflip", KAUG_VFLIP, 0, 0, 0.5},
    {"crop", KAUG_CROP, 1, 1, 1},     {"shift", KAUG_SHIFT, 1, 1, 1},
    {"rotate", KAUG_ROTATE, 1, 1, 1}, {"scale", KAUG_SCALE, 2, 2, 1},
    {"jitter", KAUG_JITTER, 1, 4, 1}, {"noise", KAUG_NOISE, 1, 1, 1},
    {"cutout", KAUG_CUTOUT, 2, 2, 1}, {"gray", KAUG_GRAY, 0, 0, 1},
};

/* Split "a,b,c" (or "lo-hi" for scale) into numbers; returns the count or -1. */
static int parse_numbers(char *s, char sep, double *out, int max, bool *reflect) {
    int n = 0;
    for (char *tok = s; tok; n++) {
        char *next = strchr(tok, sep);
        if (next) *next++ = 0;
        if (reflect && strcmp(tok, "reflect") == 0) {
            *reflect = true;
            n--;
        } else if (n >= max || !parse_f64(tok, &out[n]) || !isfinite(out[n])) {
            return -1;
        }
        tok = next;
    }
    return n;
}

bool kaug_parse(const char *spec, kaug_op *op, char *err, size_t errlen) {
    char buf[128];
    if (strlen(spec) >= sizeof buf) {
        snprintf(err, errlen, "op '%.40s...' is too long", spec);
        return false;
    }
    strcpy(buf, spec);
    memset(op, 0, sizeof *op);
    char *at = strchr(buf, '@'), *colon = strchr(buf, ':');
    if (at) *at++ = 0;
    if (colon && (!at || colon < at))
        *colon++ = 0;
    else
        colon = NULL;
    size_t i, nops = sizeof op_table / sizeof op_table[0];
    for (i = 0; i < nops && strcmp(op_table[i].name, buf) != 0; i++) {
    }
    if (i == nops) {
        snprintf(err, errlen, "unknown op '%s' (see --help)", buf);
        return false;
    }
    op->kind = op_table[i].kind;
    op->p = op_table[i].default_p;
    if (at && (!parse_f64(at, &op->p) || !(op->p >= 0 && op->p <= 1))) {
        snprintf(err, errlen, "op '%s': probability after '@' must be in [0, 1]", spec);
        return false;
    }
    int n = 0;
    if (colon) {
        char sep = op->kind == KAUG_SCALE ? '-' : ',';
        n = parse_numbers(colon, sep, op->arg, 4, op->kind == KAUG_CROP ? &op->reflect : NULL);
    }
    if (n < op_table[i].min_args || n > op_table[i].max_args) {
        snprintf(err, errlen, "op '%s': wrong arguments (see --help)", spec);
        return false;
    }
    bool ok = true;
    switch (op->kind) {
    case KAUG_CROP:
    case KAUG_SHIFT:
        ok = op->arg[0] >= 0 && op->arg[0] <= 4096 && op->arg[0] == floor(op->arg[0]);
        break;
    case KAUG_SCALE:
        ok = op->arg[0] > 0 && op->arg[1] >= op->arg[0] && op->arg[1] <= 100;
        break;
    case KAUG_JITTER:
        ok = op->arg[0] >= 0 && op->arg[1] >= 0 && op->arg[2] >= 0 && op->arg[3] >= 0 &&
             op->arg[3] <= 0.5;
        break;
    case KAUG_NOISE:
        ok = op->arg[0] >= 0;
        break;
    case KAUG_CUTOUT:
        ok = op->arg[0] >= 0 && op->arg[0] <= 1000 && op->arg[1] >= 1 && op->arg[1] <= 65535;
        break;
    default:
        break;
    }
    if (!ok) {
        snprintf(err, errlen, "op '%s': argument out of range (see --help)", spec);
        return false;
    }
    return true;
}

/* ---- geometry --------------------------------------------------------------------------- */

static void flip(kimage *im, bool horizontal) {
    int h = im->h, w = im->w, c = im->c;
    size_t row = (size_t)w * c;
    if (horizontal) {
        for (int y = 0; y < h; y++) {
            uint8_t *r = im->data + y * row;
            for (int a = 0, b = w - 1; a < b; a++, b--)
                for (int k = 0; k < c; k++) {
                    uint8_t t = r[a * c + k];
                    r[a * c + k] = r[b * c + k];
                    r[b * c + k] = t;
                }
        }
        return;
    }
    uint8_t tmp[4096];
    for (int a = 0, b = h - 1; a < b; a++, b--)
        for (size_t off = 0; off < row; off += sizeof tmp) {
            size_t n = row - off < sizeof tmp ? row - off : sizeof tmp;
            memcpy(tmp, im->data + a * row + off, n);
            memcpy(im->data + a * row + off, im->data + b * row + off, n);
            memcpy(im->data + b * row + off, tmp, n);
        }
}

/* Mirror an index into [0, n) without repeating the edge (numpy/torch "reflect"). */
static int reflect_index(int i, int n) {
    if (n == 1) return 0;
    int period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

/* out(y, x) = in(y + dy, x + dx), outside filled with zeros or mirrored. */
static void translate(kimage *im, kimage *scratch, int dy, int dx, bool reflect) {
    if (!dy && !dx) return;
    int h = im->h, w = im->w, c = im->c;
    size_t row = (size_t)w * c;
    kimage_reshape(scratch, h, w, c);
    /* With zeros, each row is one contiguous run of source pixels: x in [x0, x1). */
    int x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? w - dx : w;
    if (x1 < x0) x1 = x0;
    for (int y = 0; y < h; y++) {
        uint8_t *out = scratch->data + (size_t)y * row;
        int sy = reflect ? reflect_index(y + dy, h) : y + dy;
        if (sy < 0 || sy >= h) {
            memset(out, 0, row);
            continue;
        }
        const uint8_t *in = im->data + (size_t)sy * row;
        if (reflect) {
            for (int x = 0; x < w; x++) memcpy(out + x * c, in + reflect_index(x + dx, w) * c, c);
            continue;
        }
        memset(out, 0, (size_t)x0 * c);
        memcpy(out + (size_t)x0 * c, in + (size_t)(x0 + dx) * c, (size_t)(x1 - x0) * c);
        memset(out + (size_t)x1 * c, 0, (size_t)(w - x1) * c);
    }
    kimage t = *im;
    *im = *scratch;
    *scratch = t;
}

/* Inverse affine warp about the centre: source = M * (out - centre) + centre, bilinear,
 * zeros outside the source. */
static void warp(kimage *im, kimage *scratch, const double m[4]) {
    int h = im->h, w = im->w, c = im->c;
    double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
    kimage_reshape(scratch, h, w, c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double sx = m[0] * (x - cx) + m[1] * (y - cy) + cx;
            double sy = m[2] * (x - cx) + m[3] * (y - cy) + cy;
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            float fx = (float)(sx - x0), fy = (float)(sy - y0);
            uint8_t *out = scratch->data + ((size_t)y * w + x) * c;
            for (int k = 0; k < c; k++) {
                float acc = 0;
                for (int j = 0; j < 4; j++) {
                    int yy = y0 + (j >> 1), xx = x0 + (j & 1);
                    if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                    float wgt = ((j >> 1) ? fy : 1 - fy) * ((j & 1) ? fx : 1 - fx);
                    acc += wgt * im->data[((size_t)yy * w + xx) * c + k];
                }
                out[k] = (uint8_t)(acc >= 255 ? 255 : acc <= 0 ? 0 : acc + 0.5f);
            }
        }
    kimage t = *im;
    *im = *scratch;
    *scratch = t;
}

/* ---- colour ----------------------------------------------------------------------------- */

static inline uint8_t clamp255(float v) {
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5f);
}

static inline float luma_f(const uint8_t *p) {
    return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
}

static int color_channels(const kimage *im) {
    return im->c >= 3 ? 3 : 1; /* alpha left alone */
}

/* v -> LUT[v] on the colour channels. */
static void apply_lut(kimage *im, const uint8_t lut[256]) {
    size_t n = (size_t)im->h * im->w;
    int c = im->c, cc = color_channels(im);
    if (c == cc) { /* no alpha: one flat pass */
        for (size_t i = 0; i < n * c; i++) im->data[i] = lut[im->data[i]];
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < cc; k++) im->data[i * c + k] = lut[im->data[i * c + k]];
}

/* Brightness then contrast as one lookup table: both map each value on its own, and the
 * contrast mean (of the brightened image's luma) follows from per-channel histograms. */
static void brightness_contrast(kimage *im, float fb, float fc, bool do_b, bool do_c) {
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) lut[v] = do_b ? clamp255(v * fb) : (uint8_t)v;
    if (do_c) {
        size_t n = (size_t)im->h * im->w, hist[3][256] = {{0}};
        int c = im->c, cc = color_channels(im);
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < cc; k++) hist[k][im->data[i * c + k]]++;
        static const double luma_w[3] = {0.299, 0.587, 0.114};
        double sum = 0;
        for (int k = 0; k < cc; k++) {
            double wk = cc == 1 ? 1.0 : luma_w[k], s = 0;
            for (int v = 0; v < 256; v++) s += (double)hist[k][v] * lut[v];
            sum += wk * s;
        }
        float mean = (float)(sum / (double)n);
        for (int v = 0; v < 256; v++) lut[v] = clamp255((lut[v] - mean) * fc + mean);
    }
    apply_lut(im, lut);
}

/* Blend every pixel with its own luma: f = 0 gives gray, 1 the original. */
static void saturation(kimage *im, float f) {
    if (im->c < 3) return;
    size_t n = (size_t)im->h * im->w;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = im->data + i * im->c;
        float g = luma_f(p);
        for (int k = 0; k < 3; k++) p[k] = clamp255((p[k] - g) * f + g);
    }
}

/* Rotate hue by `turns` (fraction of the colour wheel) through HSV. */
static void hue(kimage *im, float turns) {
    if (im->c < 3 || turns == 0) return;
    size_t n = (size_t)im->h * im->w;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = im->data + i * im->c;
        float r = p[0] / 255.f, g = p[1] / 255.f, b = p[2] / 255.f;
        float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
        if (d <= 0) continue; /* gray: no hue */
        float hh;
        if (mx == r)
            hh = (g - b) / d;
        else if (mx == g)
            hh = 2 + (b - r) / d;
        else
            hh = 4 + (r - g) / d;
        hh = hh / 6 + turns;
        hh -= floorf(hh);
        float s = d / mx, v = mx, h6 = hh * 6;
        int sector = (int)h6 % 6;
        float f = h6 - floorf(h6);
        float pp = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
        float rgb[6][3] = {{v, t, pp}, {q, v, pp}, {pp, v, t}, {pp, q, v}, {t, pp, v}, {v, pp, q}};
        for (int k = 0; k < 3; k++) p[k] = clamp255(rgb[sector][k] * 255);
    }
}

static void jitter(kimage *im, const double *a, krng *r) {
    /* Draw every factor first so the draws do not depend on the image. */
    float fb = (float)krng_range(r, fmax(0, 1 - a[0]), 1 + a[0]);
    float fc = (float)krng_range(r, fmax(0, 1 - a[1]), 1 + a[1]);
    float fs = (float)krng_range(r, fmax(0, 1 - a[2]), 1 + a[2]);
    float fh = (float)krng_range(r, -a[3], a[3]);
    if (a[0] > 0 || a[1] > 0) brightness_contrast(im, fb, fc, a[0] > 0, a[1] > 0);
    if (a[2] > 0) saturation(im, fs);
    if (a[3] > 0) hue(im, fh);
}

static void noise(kimage *im, double sigma, krng *r) {
    size_t n = (size_t)im->h * im->w;
    int c = im->c, cc = color_channels(im);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < cc; k++) {
            uint8_t *p = im->data + i * c + k;
            *p = clamp255(*p + (float)(sigma * krng_normal(r)));
        }
}

static void cutout(kimage *im, int count, int size, krng *r) {
    for (int i = 0; i < count; i++) {
        int cy = (int)krng_below(r, (uint64_t)im->h), cx = (int)krng_below(r, (uint64_t)im->w);
        int y0 = cy - size / 2, x0 = cx - size / 2;
        int y1 = y0 + size, x1 = x0 + size;
        if (y0 < 0) y0 = 0;
        if (x0 < 0) x0 = 0;
        if (y1 > im->h) y1 = im->h;
        if (x1 > im->w) x1 = im->w;
        for (int y = y0; y < y1; y++)
            memset(im->data + ((size_t)y * im->w + x0) * im->c, 0, (size_t)(x1 - x0) * im->c);
    }
}

static void to_gray(kimage *im) {
    if (im->c < 3) return;
    size_t n = (size_t)im->h * im->w;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = im->data + i * im->c;
        p[0] = p[1] = p[2] = clamp255(luma_f(p));
    }
}

/* ---- the pipeline ----------------------------------------------------------------------- */

static int uniform_int(krng *r, int lo, int hi) { /* inclusive */
    return lo + (int)krng_below(r, (uint64_t)(hi - lo + 1));
}

void kaug_apply(const kaug_op *ops, int nops, krng *r, kimage *im, kimage *scratch) {
    for (int i = 0; i < nops; i++) {
        const kaug_op *op = &ops[i];
        if (krng_uniform(r) >= op->p) continue; /* p = 1 always fires: uniform < 1 */
        switch (op->kind) {
        case KAUG_HFLIP:
            flip(im, true);
            break;
        case KAUG_VFLIP:
            flip(im, false);
            break;
        case KAUG_CROP:
        case KAUG_SHIFT: {
            int pad = (int)op->arg[0];
            int dy = uniform_int(r, -pad, pad), dx = uniform_int(r, -pad, pad);
            translate(im, scratch, dy, dx, op->reflect);
            break;
        }
        case KAUG_ROTATE: {
            double a = krng_range(r, -op->arg[0], op->arg[0]) * M_PI / 180;
            double m[4] = {cos(a), sin(a), -sin(a), cos(a)};
            warp(im, scratch, m);
            break;
        }
        case KAUG_SCALE: {
            double s = krng_range(r, op->arg[0], op->arg[1]);
            double m[4] = {1 / s, 0, 0, 1 / s};
            warp(im, scratch, m);
            break;
        }
        case KAUG_JITTER:
            jitter(im, op->arg, r);
            break;
        case KAUG_NOISE:
            noise(im, op->arg[0], r);
            break;
        case KAUG_CUTOUT:
            cutout(im, (int)op->arg[0], (int)op->arg[1], r);
            break;
        case KAUG_GRAY:
            to_gray(im);
            break;
        }
    }
}
