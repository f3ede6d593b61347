/* image — channel conversion and separable resampling of 8-bit images. */
#include "data/image.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

kimage kimage_new(int h, int w, int c) {
    kimage im = {0};
    im.data = xcalloc(xmul(xmul((size_t)h, (size_t)w), (size_t)c), 1);
    im.h = h, im.w = w, im.c = c;
    return im;
}

void kimage_free(kimage *im) {
    free(im->data);
    memset(im, 0, sizeof *im);
}

size_t kimage_bytes(const kimage *im) {
    return (size_t)im->h * (size_t)im->w * (size_t)im->c;
}

void kimage_reshape(kimage *im, int h, int w, int c) {
    size_t want = xmul(xmul((size_t)h, (size_t)w), (size_t)c);
    if (want > kimage_bytes(im) || !im->data) im->data = xrealloc(im->data, want);
    im->h = h, im->w = w, im->c = c;
}

static inline uint8_t luma(const uint8_t *p) {
    /* BT.601 weights in 1/1024ths, rounded. */
    return (uint8_t)((306 * p[0] + 601 * p[1] + 117 * p[2] + 512) >> 10);
}

void kimage_convert(const uint8_t *src, int h, int w, int c, int want, kimage *dst) {
    kimage_reshape(dst, h, w, want);
    size_t n = (size_t)h * (size_t)w;
    uint8_t *d = dst->data;
    if (c == want) {
        memcpy(d, src, n * (size_t)c);
        return;
    }
    for (size_t i = 0; i < n; i++, src += c, d += want) {
        bool color = c >= 3;
        uint8_t gray = color ? luma(src) : src[0];
        uint8_t alpha = (c == 2 || c == 4) ? src[c - 1] : 255;
        if (want == 1)
            d[0] = gray;
        else if (want == 2)
            d[0] = gray, d[1] = alpha;
        else {
            d[0] = color ? src[0] : gray;
            d[1] = color ? src[1] : gray;
            d[2] = color ? src[2] : gray;
            if (want == 4) d[3] = alpha;
        }
    }
}

kimage kimage_grid(const kimage *im, int n, int cols, int scale) {
    int gap = 2, c = im[0].c, h = 0, w = 0;
    for (int i = 0; i < n; i++) {
        if (im[i].h > h) h = im[i].h;
        if (im[i].w > w) w = im[i].w;
    }
    h *= scale, w *= scale;
    int rows = (n + cols - 1) / cols;
    kimage grid = kimage_new(rows * (h + gap) + gap, cols * (w + gap) + gap, c), same = {0};
    memset(grid.data, 255, kimage_bytes(&grid));
    for (int i = 0; i < n; i++) {
        kimage_convert(im[i].data, im[i].h, im[i].w, im[i].c, c, &same);
        int y0 = gap + (i / cols) * (h + gap), x0 = gap + (i % cols) * (w + gap);
        for (int y = 0; y < same.h * scale; y++)
            for (int x = 0; x < same.w * scale; x++)
                memcpy(grid.data + ((size_t)(y0 + y) * grid.w + (size_t)(x0 + x)) * c,
                       same.data + ((size_t)(y / scale) * same.w + (size_t)(x / scale)) * c,
                       (size_t)c);
    }
    kimage_free(&same);
    return grid;
}

/* One axis of a separable resampling: output index o reads taps [first[o], first[o]+count[o])
 * with weights starting at weight[o * max_taps]. */
typedef struct axis_filter {
    int *first, *count;
    float *weight;
    int max_taps;
} axis_filter;

static axis_filter filter_area(int in, int out) {
    /* Output pixel o covers source interval [o*s, (o+1)*s), s = in/out; each source pixel
     * weighs by the length of its overlap. */
    axis_filter f;
    double s = (double)in / out;
    f.max_taps = (int)s + 2;
    f.first = xmalloc(xmul((size_t)out, sizeof(int)));
    f.count = xmalloc(xmul((size_t)out, sizeof(int)));
    f.weight = xcalloc(xmul((size_t)out, (size_t)f.max_taps), sizeof(float));
    for (int o = 0; o < out; o++) {
        double lo = o * s, hi = (o + 1) * s;
        int first = (int)lo, n = 0;
        for (int i = first; i < in && i < hi && n < f.max_taps; i++, n++) {
            double a = i > lo ? i : lo, b = i + 1 < hi ? i + 1 : hi;
            f.weight[(size_t)o * f.max_taps + n] = (float)((b - a) / s);
        }
        f.first[o] = first, f.count[o] = n;
    }
    return f;
}

static axis_filter filter_bilinear(int in, int out) {
    /* Pixel centres aligned (as PIL and OpenCV do): x = (o + 0.5) * in / out - 0.5. */
    axis_filter f;
    f.max_taps = 2;
    f.first = xmalloc(xmul((size_t)out, sizeof(int)));
    f.count = xmalloc(xmul((size_t)out, sizeof(int)));
    f.weight = xcalloc(xmul((size_t)out, 2), sizeof(float));
    for (int o = 0; o < out; o++) {
        double x = (o + 0.5) * in / out - 0.5;
        if (x < 0) x = 0;
        if (x > in - 1) x = in - 1;
        int i0 = (int)x;
        int i1 = i0 + 1 < in ? i0 + 1 : i0;
        float t = (float)(x - i0);
        f.first[o] = i0;
        f.count[o] = i1 > i0 ? 2 : 1;
        f.weight[(size_t)o * 2] = i1 > i0 ? 1 - t : 1;
        f.weight[(size_t)o * 2 + 1] = i1 > i0 ? t : 0;
    }
    return f;
}

static axis_filter filter_for(int in, int out) {
    return out < in ? filter_area(in, out) : filter_bilinear(in, out);
}

static void filter_free(axis_filter *f) {
    free(f->first), free(f->count), free(f->weight);
}

static inline uint8_t clamp_u8(float v) {
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5f);
}

void kimage_resize(const kimage *src, int oh, int ow, kimage *dst) {
    int h = src->h, w = src->w, c = src->c;
    if (oh == h && ow == w) {
        kimage_convert(src->data, h, w, c, c, dst);
        return;
    }
    axis_filter fx = filter_for(w, ow), fy = filter_for(h, oh);
    /* Horizontal pass into floats [h, ow, c], then vertical pass into dst. */
    float *tmp = xmalloc(xmul(xmul((size_t)h * (size_t)ow, (size_t)c), sizeof(float)));
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src->data + (size_t)y * w * c;
        for (int o = 0; o < ow; o++) {
            const float *wt = fx.weight + (size_t)o * fx.max_taps;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0;
                for (int k = 0; k < fx.count[o]; k++)
                    acc += wt[k] * row[(size_t)(fx.first[o] + k) * c + ch];
                tmp[((size_t)y * ow + o) * c + ch] = acc;
            }
        }
    }
    kimage_reshape(dst, oh, ow, c);
    size_t row_len = (size_t)ow * c;
    for (int o = 0; o < oh; o++) {
        const float *wt = fy.weight + (size_t)o * fy.max_taps;
        uint8_t *out = dst->data + (size_t)o * row_len;
        for (size_t i = 0; i < row_len; i++) {
            float acc = 0;
            for (int k = 0; k < fy.count[o]; k++)
                acc += wt[k] * tmp[(size_t)(fy.first[o] + k) * row_len + i];
            out[i] = clamp_u8(acc);
        }
    }
    free(tmp);
    filter_free(&fx), filter_free(&fy);
}

bool kimage_parse_size(const char *s, int *h, int *w) {
    char *x = strchr(s, 'x');
    if (!x) return false;
    char buf[32];
    size_t n = (size_t)(x - s);
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n), buf[n] = 0;
    uint64_t a, b;
    if (!parse_u64(buf, &a) || !parse_u64(x + 1, &b)) return false;
    if (a < 1 || b < 1 || a > 65535 || b > 65535) return false;
    *h = (int)a, *w = (int)b;
    return true;
}
