/* Unit tests of lib/plot/font and lib/plot/plot: glyph placement, and that a rendered chart has its
 * background, both series' colours, axis ink, the legend and the "no data" message. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "plot/font.h"
#include "plot/plot.h"

static const uint8_t blue[3] = {31, 119, 180}, orange[3] = {255, 127, 14};

static size_t count(const kimage *im, const uint8_t rgb[3], int x0, int y0, int x1, int y1) {
    size_t n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            n += memcmp(im->data + ((size_t)y * im->w + x) * 3, rgb, 3) == 0;
    return n;
}

static bool is(const kimage *im, int x, int y, int r, int g, int b) {
    const uint8_t *p = im->data + ((size_t)y * im->w + x) * 3;
    return p[0] == r && p[1] == g && p[2] == b;
}

static void test_font(void) {
    CHECK(kfont_width("", 1) == 0);
    CHECK(kfont_width("ab", 1) == 11);
    CHECK(kfont_width("ab", 3) == 33);
    kimage im = kimage_new(10, 20, 3);
    const uint8_t ink[3] = {1, 2, 3};
    kfont_draw(&im, 0, 0, "A", 1, ink); /* row 0 of 'A' is .###. */
    CHECK(is(&im, 1, 0, 1, 2, 3) && is(&im, 3, 0, 1, 2, 3) && is(&im, 0, 0, 0, 0, 0));
    CHECK(is(&im, 0, 3, 1, 2, 3) && is(&im, 4, 3, 1, 2, 3)); /* the bar: ##### */
    kfont_draw(&im, 15, 5, "\x01", 2, ink);                  /* clipped, unknown byte: '?' */
    CHECK(is(&im, 17, 5, 1, 2, 3));
    kimage_free(&im);
}

static void test_chart(void) {
    kplot *p = kplot_new();
    for (int i = 1; i <= 300; i++) kplot_add(p, "train", i, 4.0 * exp(-i / 80.0) + 1);
    for (int i = 50; i <= 300; i += 50) kplot_add(p, "eval (val)", i, 4.0 * exp(-i / 80.0) + 1.3);
    kplot_add(p, "train", NAN, 1);
    kplot_add(p, "train", 5, INFINITY);
    CHECK(kplot_points(p) == 306);
    kimage im = kimage_new(300, 480, 3);
    kplot_style st = {.title = "loss vs step", .xlabel = "step", .ylabel = "loss", .scale = 1};
    kplot_render(p, &st, &im);
    CHECK(is(&im, 0, 0, 255, 255, 255) && is(&im, 479, 299, 255, 255, 255));
    size_t b = count(&im, blue, 0, 0, im.w, im.h), o = count(&im, orange, 0, 0, im.w, im.h);
    CHECK(b > 300 && o > 100);
    /* The first train point (high loss) is at the top left of the plot area, the last one
     * (low) at the bottom right. */
    CHECK(count(&im, blue, 0, 0, im.w / 3, im.h / 3) > 0);
    CHECK(count(&im, blue, 2 * im.w / 3, 2 * im.h / 3, im.w, im.h) > 0);
    /* Legend in the top right: both colours there. */
    CHECK(count(&im, orange, im.w / 2, 0, im.w, im.h / 4) > 5);

    /* Log scale drops non-positive values without failing. */
    kplot_add(p, "lr", 10, 0);
    kplot_add(p, "lr", 20, 1e-3);
    kplot_add(p, "lr", 30, 1e-4);
    st.log_y = true;
    st.scale = 2;
    kplot_render(p, &st, &im);
    CHECK(count(&im, (const uint8_t[3]){44, 160, 44}, 0, 0, im.w, im.h) > 10);
    kplot_free(p);

    /* No data: axes and the message, no series colours. */
    p = kplot_new();
    st.log_y = false;
    kplot_render(p, &st, &im);
    CHECK(count(&im, blue, 0, 0, im.w, im.h) == 0);
    CHECK(count(&im, (const uint8_t[3]){40, 40, 40}, im.w / 3, im.h / 3, 2 * im.w / 3,
                2 * im.h / 3) > 20);
    /* A single point still gives a usable range. */
    kplot_add(p, "train", 7, 2.5);
    kplot_render(p, &st, &im);
    CHECK(count(&im, blue, 0, 0, im.w, im.h) > 4);
    kplot_free(p);
    kimage_free(&im);
}

static void test_family(void) {
    char f[64];
    const char *m;
    CHECK(kplot_family("objective/kl", f, sizeof f, &m) && !strcmp(f, "objective") &&
          !strcmp(m, "kl"));
    CHECK(kplot_family("rewards/margins", f, sizeof f, &m) && !strcmp(f, "rewards") &&
          !strcmp(m, "margins"));
    CHECK(kplot_family("accuracy@10", f, sizeof f, &m) && !strcmp(f, "accuracy@k") &&
          !strcmp(m, "@10"));
    CHECK(kplot_family("map@100", f, sizeof f, &m) && !strcmp(f, "map@k") && !strcmp(m, "@100"));
    CHECK(kplot_family("accuracy", f, sizeof f, &m) && !strcmp(f, "accuracy") && !*m);
    CHECK(kplot_family("loss", f, sizeof f, &m) && !strcmp(f, "loss") && !*m);
    /* Not a family pattern: a trailing '/' or '@', '@' with letters after it. */
    CHECK(kplot_family("odd/", f, sizeof f, &m) && !strcmp(f, "odd/") && !*m);
    CHECK(kplot_family("a@b", f, sizeof f, &m) && !strcmp(f, "a@b"));
    CHECK(kplot_family("x@", f, sizeof f, &m) && !strcmp(f, "x@"));
    CHECK(!kplot_family("step", f, sizeof f, &m) && !kplot_family("elapsed_s", f, sizeof f, &m));
    CHECK(kplot_family("a_very_long_family_name/x", f, 8, &m) && !strcmp(f, "a_very_"));
}

int main(void) {
    test_family();
    test_font();
    test_chart();
    return check_report("plot");
}
