/* kiln-plot — draw train and eval loss (or another metric) against step into a PNG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/afile.h"
#include "stream/options.h"
#include "plot/plot.h"
#include "data/png.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "draw train and eval loss against step into a PNG",
    .usage = "kiln plot --png FILE [--field NAME] [--log-y] [--every SECONDS] [--in URL] [--out "
             "URL]",
    .text =
        "Every metrics record with `step` and the field (default loss) adds a point to the series\n"
        "of its stage (\"train\", \"eval\", or \"eval (val)\" when it names a split).  Every "
        "record\n"
        "passes through unchanged.  The PNG is written at the end of the stream (and on Ctrl-C),\n"
        "and every --every seconds while records flow, each time atomically.\n",
    .notes = "example:\n"
             "  kiln train ... | kiln eval --data val.rec | kiln plot --png loss.png | kiln ckpt "
             "--dir runs/a\n"
             "  kiln plot --png loss.png --in metrics.rec --out /dev/null\n",
};

typedef struct {
    const char *png, *field;
    kplot_style style;
    int width, height;
    double every;
} options;

/* The series a metrics record belongs to: its stage, and its split when it has one. */
static void series_name(const krec *r, char *buf, size_t n) {
    char stage[64] = "?", split[64];
    kobj_cstr(krec_get(r, "stage"), stage, sizeof stage);
    if (kobj_cstr(krec_get(r, "split"), split, sizeof split))
        snprintf(buf, n, "%s (%s)", stage, split);
    else
        snprintf(buf, n, "%s", stage);
}

static void draw(const kplot *p, const options *o) {
    kimage im = kimage_new(o->height, o->width, 3);
    kplot_render(p, &o->style, &im);
    char err[600], perr[300];
    afile *a = afile_open(o->png, err, sizeof err);
    if (!a) kiln_die(EX_KILN_IO, "%s", err);
    if (!kpng_write_file(afile_temp_path(a), &im, perr, sizeof perr)) {
        afile_abort(a);
        kiln_die(EX_KILN_IO, "%s: %s", o->png, perr);
    }
    int rc = afile_commit(a, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    kimage_free(&im);
}

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){.field = "loss", .width = 960, .height = 600, .every = 30};
    o->style = (kplot_style){.xlabel = "step", .scale = 2};
    kopt rows[] = {
        KOPT_STRING('p', "png", &o->png, "FILE", "the image to write (required)",
                    .flags = KOPT_REQUIRED),
        KOPT_STRING('f', "field", &o->field, "NAME",
                    "the metric to plot (default loss): lr, grad_norm, ..."),
        KOPT_BOOL(0, "log-y", &o->style.log_y, "logarithmic y axis"),
        KOPT_DOUBLE('e', "every", &o->every, "SEC", 0, INFINITY,
                    "also redraw every SEC seconds while running (default 30; 0: at the end)"),
        KOPT_INT(0, "width", &o->width, "N", 200, 16384, "image width in pixels (default 960)"),
        KOPT_INT(0, "height", &o->height, "N", 120, 16384, "image height in pixels (default 600)"),
        KOPT_INT(0, "scale", &o->style.scale, "N", 1, 8, "size of text and lines (default 2)"),
        KOPT_STRING(0, "title", &o->style.title, "TEXT", "title (default \"FIELD vs step\")"),
        KOPT_STREAM(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
    if (!*o->png) kiln_usage_error("--png wants a file name, not ''");
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    options o;
    parse_options(argc, argv, &cli, &o);
    char title[128];
    snprintf(title, sizeof title, "%s vs step", o.field);
    if (!o.style.title) o.style.title = title;
    o.style.ylabel = o.field;

    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kwriter_hdr_begin(w, kreader_hdr(r), NULL, 0);
    kwriter_end(w);
    kplot *p = kplot_new();
    double last_draw = kiln_now();
    size_t drawn_points = 0;
    krec rec;
    while (kreader_next(r, &rec)) {
        uint64_t step;
        double v;
        if (krec_is(&rec, "metrics") && krec_u64(&rec, "step", &step) &&
            krec_f64(&rec, o.field, &v)) {
            char name[160];
            series_name(&rec, name, sizeof name);
            kplot_add(p, name, (double)step, v);
        }
        kwriter_pass(w, &rec);
        if (o.every > 0 && kiln_now() - last_draw >= o.every && kplot_points(p) != drawn_points) {
            draw(p, &o);
            drawn_points = kplot_points(p);
            last_draw = kiln_now();
        }
        if (kiln_stop_now()) break;
    }
    draw(p, &o);
    kplot_free(p);
    kiln_finish(r, w);
}
