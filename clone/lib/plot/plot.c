/* plot — series, axis ranges and ticks, and rasterising them (see plot.h). */
#include "plot/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/font.h"
#include "core/util.h"

typedef struct {
    double x, y;
    size_t order; /* arrival, so equal x keep their order after sorting */
} point;

typedef struct {
    char *name;
    point *pts;
    size_t n, cap;
} series;

struct kplot {
    series *s;
    size_t n;
};

/* matplotlib's tab10: distinct and readable on white. */
static const uint8_t palette[10][3] = {
    {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};
static const uint8_t white[3] = {255, 255, 255}, ink[3] = {40, 40, 40}, grid[3] = {225, 225, 225};

kplot *kplot_new(void) {
    return xcalloc(1, sizeof(kplot));
}

void kplot_free(kplot *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) free(p->s[i].name), free(p->s[i].pts);
    free(p->s);
    free(p);
}

void kplot_add(kplot *p, const char *name, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return;
    size_t i = 0;
    while (i < p->n && strcmp(p->s[i].name, name) != 0) i++;
    if (i == p->n) {
        p->s = xrealloc(p->s, xmul(p->n + 1, sizeof *p->s));
        p->s[p->n++] = (series){xstrdup(name), NULL, 0, 0};
    }
    series *s = &p->s[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->pts = xrealloc(s->pts, xmul(s->cap, sizeof *s->pts));
    }
    s->pts[s->n] = (point){x, y, s->n};
    s->n++;
}

bool kplot_family(const char *field, char *family, size_t n, const char **member) {
    static const char *not_metrics[] = {"step",   "tokens", "elapsed_s",   "epoch",
                                        "cursor", "seq",    "optim_bytes", "t"};
    for (size_t i = 0; i < sizeof not_metrics / sizeof *not_metrics; i++)
        if (!strcmp(field, not_metrics[i])) return false;
    const char *slash = strchr(field, '/'), *at = strrchr(field, '@');
    bool at_k = at && at > field && at[1] && strspn(at + 1, "0123456789") == strlen(at + 1);
    if (slash && slash > field && slash[1]) {
        snprintf(family, n, "%.*s", (int)(slash - field), field);
        *member = slash + 1;
    } else if (at_k) {
        snprintf(family, n, "%.*s@k", (int)(at - field), field);
        *member = at;
    } else {
        snprintf(family, n, "%s", field);
        *member = "";
    }
    return true;
}

size_t kplot_points(const kplot *p) {
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) n += p->s[i].n;
    return n;
}

/* ---- axes -------------------------------------------------------------------------------- */

/* One axis: data range [lo, hi] (log10 of y on a log scale) and its ticks. */
typedef struct {
    double lo, hi;
    double ticks[32]; /* in axis units */
    char labels[32][24];
    int nticks;
} axis;

/* 1, 2 or 5 times a power of ten, near raw. */
static double nice_step(double raw) {
    double p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void format_tick(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0; /* -0.0 and 1e-17 from accumulated steps */
    double a = fabs(v);
    if (a >= 1e6 || (a > 0 && a < 1e-3))
        snprintf(buf, n, "%.3g", v);
    else {
        int decimals = (int)fmax(0, fmin(6, -floor(log10(step) + 1e-9)));
        snprintf(buf, n, "%.*f", decimals, v);
    }
}

static void linear_ticks(axis *a, double lo, double hi, int want, bool log_units) {
    double step = nice_step((hi - lo) / want);
    a->nticks = 0;
    double first = ceil(lo / step - 1e-9);
    for (int i = 0; a->nticks < 32; i++) {
        double t = (first + i) * step; /* not a running sum: no drift */
        if (t > hi + step * 1e-9) break;
        if (log_units && t <= 0) continue;
        a->ticks[a->nticks] = log_units ? log10(t) : t;
        format_tick(a->labels[a->nticks], sizeof a->labels[0], t, step);
        a->nticks++;
    }
}

/* Ticks of an axis whose range [lo, hi] is in log10 units: decades when it spans one or
 * more, else linear ticks on the values themselves. */
static void log_ticks(axis *a, int want) {
    if (a->hi - a->lo < 1) {
        linear_ticks(a, pow(10, a->lo), pow(10, a->hi), want, true);
        return;
    }
    int every = (int)fmax(1, ceil((a->hi - a->lo) / want));
    a->nticks = 0;
    for (int k = (int)ceil(a->lo); k <= (int)floor(a->hi) && a->nticks < 32; k++) {
        if (k % every) continue;
        a->ticks[a->nticks] = k;
        snprintf(a->labels[a->nticks], sizeof a->labels[0], "%g", pow(10, k));
        a->nticks++;
    }
}

/* Widen an empty range; pad by frac of the span on both sides. */
static void settle(axis *a, double frac) {
    if (a->hi - a->lo < 1e-12 * fmax(1, fabs(a->hi))) {
        double d = a->hi != 0 ? fabs(a->hi) * 0.1 : 1;
        a->lo -= d, a->hi += d;
    }
    double pad = (a->hi - a->lo) * frac;
    a->lo -= pad, a->hi += pad;
}

static double y_of(double y, bool log_y) {
    return log_y ? log10(y) : y;
}

static bool usable(double y, bool log_y) {
    return !log_y || y > 0;
}

static void data_range(const kplot *p, bool log_y, axis *x, axis *y) {
    bool any = false;
    for (size_t i = 0; i < p->n; i++)
        for (size_t k = 0; k < p->s[i].n; k++) {
            const point *q = &p->s[i].pts[k];
            if (!usable(q->y, log_y)) continue;
            double ty = y_of(q->y, log_y);
            if (!any) x->lo = x->hi = q->x, y->lo = y->hi = ty, any = true;
            x->lo = fmin(x->lo, q->x), x->hi = fmax(x->hi, q->x);
            y->lo = fmin(y->lo, ty), y->hi = fmax(y->hi, ty);
        }
    if (!any) x->lo = 0, x->hi = 1, y->lo = log_y ? -1 : 0, y->hi = 1;
    /* Steps start near 0: show the origin rather than a first step of 1 or 10. */
    if (x->lo > 0 && x->lo <= 0.25 * (x->hi - x->lo)) x->lo = 0;
    settle(x, 0);
    settle(y, 0.05);
}

/* ---- raster ------------------------------------------------------------------------------ */

typedef struct {
    kimage *im;
    int left, right, top, bottom; /* plot area, inclusive */
    axis x, y;
} canvas;

static void pixel(kimage *im, int x, int y, const uint8_t rgb[3]) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    memcpy(im->data + ((size_t)y * im->w + x) * 3, rgb, 3);
}

static void fill(kimage *im, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) pixel(im, x, y, rgb);
}

/* Bresenham with a square brush of side `thick`. */
static void line(kimage *im, int x0, int y0, int x1, int y1, int thick, const uint8_t rgb[3]) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy, lo = -(thick - 1) / 2, hi = thick / 2;
    for (;;) {
        fill(im, x0 + lo, y0 + lo, x0 + hi, y0 + hi, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

static double px(const canvas *c, double x) {
    return c->left + (x - c->x.lo) / (c->x.hi - c->x.lo) * (c->right - c->left);
}

static double py(const canvas *c, double ty) {
    return c->bottom - (ty - c->y.lo) / (c->y.hi - c->y.lo) * (c->bottom - c->top);
}

/* Liang-Barsky: clip the segment to the plot area; false when nothing is left. */
static bool clip(const canvas *c, double *x0, double *y0, double *x1, double *y1) {
    double t0 = 0, t1 = 1, dx = *x1 - *x0, dy = *y1 - *y0;
    double p[4] = {-dx, dx, -dy, dy};
    double q[4] = {*x0 - c->left, c->right - *x0, *y0 - c->top, c->bottom - *y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return false;
            continue;
        }
        double r = q[i] / p[i];
        if (p[i] < 0)
            t0 = fmax(t0, r);
        else
            t1 = fmin(t1, r);
    }
    if (t0 > t1) return false;
    double ax = *x0 + t0 * dx, ay = *y0 + t0 * dy;
    *x1 = *x0 + t1 * dx, *y1 = *y0 + t1 * dy;
    *x0 = ax, *y0 = ay;
    return true;
}

static int by_x(const void *a, const void *b) {
    const point *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return (p->order > q->order) - (p->order < q->order);
}

static void draw_series(const canvas *c, const series *s, bool log_y, int scale,
                        const uint8_t rgb[3]) {
    point *pts = xmalloc(xmul(s->n ? s->n : 1, sizeof *pts));
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (usable(s->pts[i].y, log_y)) pts[n++] = s->pts[i];
    qsort(pts, n, sizeof *pts, by_x);
    for (size_t i = 0; i + 1 < n; i++) {
        double x0 = px(c, pts[i].x), y0 = py(c, y_of(pts[i].y, log_y));
        double x1 = px(c, pts[i + 1].x), y1 = py(c, y_of(pts[i + 1].y, log_y));
        if (clip(c, &x0, &y0, &x1, &y1))
            line(c->im, (int)lround(x0), (int)lround(y0), (int)lround(x1), (int)lround(y1), scale,
                 rgb);
    }
    /* Sparse series (eval every few hundred steps) get a marker on each point. */
    if (n <= 200)
        for (size_t i = 0; i < n; i++) {
            int x = (int)lround(px(c, pts[i].x)), y = (int)lround(py(c, y_of(pts[i].y, log_y)));
            int r = 2 * scale;
            if (x >= c->left && x <= c->right && y >= c->top && y <= c->bottom)
                fill(c->im, x - r, y - r, x + r, y + r, rgb);
        }
    free(pts);
}

static void draw_axes(const canvas *c, int scale) {
    kimage *im = c->im;
    int ch = KFONT_H * scale, tick = 3 * scale;
    for (int i = 0; i < c->y.nticks; i++) {
        int y = (int)lround(py(c, c->y.ticks[i]));
        line(im, c->left, y, c->right, y, 1, grid);
        line(im, c->left - tick, y, c->left, y, 1, ink);
        const char *l = c->y.labels[i];
        kfont_draw(im, c->left - tick - 4 - kfont_width(l, scale), y - ch / 2, l, scale, ink);
    }
    for (int i = 0; i < c->x.nticks; i++) {
        int x = (int)lround(px(c, c->x.ticks[i]));
        line(im, x, c->top, x, c->bottom, 1, grid);
        line(im, x, c->bottom, x, c->bottom + tick, 1, ink);
        const char *l = c->x.labels[i];
        kfont_draw(im, x - kfont_width(l, scale) / 2, c->bottom + tick + 4, l, scale, ink);
    }
    line(im, c->left, c->top, c->right, c->top, 1, ink);
    line(im, c->left, c->bottom, c->right, c->bottom, 1, ink);
    line(im, c->left, c->top, c->left, c->bottom, 1, ink);
    line(im, c->right, c->top, c->right, c->bottom, 1, ink);
}

static void draw_legend(const canvas *c, const kplot *p, int scale) {
    if (p->n == 0) return;
    int ch = KFONT_H * scale, row = ch + 4 * scale, sample = 8 * scale, pad = 4 * scale;
    int wmax = 0;
    for (size_t i = 0; i < p->n; i++) wmax = (int)fmax(wmax, kfont_width(p->s[i].name, scale));
    int w = pad + sample + pad + wmax + pad, h = pad + (int)p->n * row - 4 * scale + pad;
    int x0 = c->right - 2 * pad - w, y0 = c->top + 2 * pad;
    fill(c->im, x0, y0, x0 + w, y0 + h, white);
    line(c->im, x0, y0, x0 + w, y0, 1, ink);
    line(c->im, x0, y0 + h, x0 + w, y0 + h, 1, ink);
    line(c->im, x0, y0, x0, y0 + h, 1, ink);
    line(c->im, x0 + w, y0, x0 + w, y0 + h, 1, ink);
    for (size_t i = 0; i < p->n; i++) {
        int y = y0 + pad + (int)i * row;
        line(c->im, x0 + pad, y + ch / 2, x0 + pad + sample, y + ch / 2, scale, palette[i % 10]);
        kfont_draw(c->im, x0 + 2 * pad + sample, y, p->s[i].name, scale, ink);
    }
}

void kplot_render(const kplot *p, const kplot_style *st, kimage *im) {
    if (im->c != 3 || im->w < 200 || im->h < 120)
        kiln_die(EX_KILN_SOFTWARE, "kplot_render: wants an RGB image of at least 200x120");
    int scale = st->scale > 0 ? st->scale : 1, ch = KFONT_H * scale, gap = 4 * scale;
    canvas c = {.im = im};
    data_range(p, st->log_y, &c.x, &c.y);
    fill(im, 0, 0, im->w - 1, im->h - 1, white);

    /* Ticks first: the widest y label sets the left margin. */
    int want_y = (int)fmax(2, im->h / (ch * 4)), want_x = (int)fmax(2, im->w / (ch * 9));
    if (st->log_y)
        log_ticks(&c.y, want_y);
    else
        linear_ticks(&c.y, c.y.lo, c.y.hi, want_y, false);
    linear_ticks(&c.x, c.x.lo, c.x.hi, want_x, false);
    int ylabel_w = 0;
    for (int i = 0; i < c.y.nticks; i++)
        ylabel_w = (int)fmax(ylabel_w, kfont_width(c.y.labels[i], scale));

    c.left = 2 * gap + ylabel_w + 3 * scale + gap;
    c.right = im->w - 1 - 4 * gap;
    c.top = 2 * gap + (st->title ? ch + 2 * gap : 0) + (st->ylabel ? ch + gap : 0);
    c.bottom = im->h - 1 - (2 * gap + (st->xlabel ? ch + gap : 0) + ch + 3 * scale + gap);
    if (st->title)
        kfont_draw(im, (im->w - kfont_width(st->title, scale)) / 2, 2 * gap, st->title, scale, ink);
    if (st->ylabel) kfont_draw(im, c.left, c.top - gap - ch, st->ylabel, scale, ink);
    if (st->xlabel)
        kfont_draw(im, c.left + (c.right - c.left - kfont_width(st->xlabel, scale)) / 2,
                   im->h - 2 * gap - ch, st->xlabel, scale, ink);

    draw_axes(&c, scale);
    for (size_t i = 0; i < p->n; i++) draw_series(&c, &p->s[i], st->log_y, scale, palette[i % 10]);
    if (kplot_points(p) == 0) {
        const char *msg = "no data";
        kfont_draw(im, (c.left + c.right - kfont_width(msg, scale)) / 2,
                   (c.top + c.bottom - ch) / 2, msg, scale, ink);
    }
    draw_legend(&c, p, scale);
}
