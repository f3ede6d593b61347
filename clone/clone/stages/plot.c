/* kiln-plot — draw train and eval loss (or another metric) against step into a PNG. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/afile.h"
#include "stream/options.h"
#include "plot/plot.h"
#include "data/png.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "draw train and eval loss against step into a PNG",
    .usage = "kiln plot (--png FILE [--field NAME] | --dir DIR) [--log-y] [--every SECONDS] [--in "
             "URL] [--out URL]",
    .text =
        "Every metrics record with `step` and the field (default loss) adds a point to the series\n"
        "of its stage (\"train\", \"eval\", or \"eval (val)\" when it names a split).  Every "
        "record\n"
        "passes through unchanged.  The PNG is written at the end of the stream (and on Ctrl-C),\n"
        "and every --every seconds while records flow, each time atomically.\n"
        "--dir DIR draws every metric into DIR, one PNG per family: names with a '/' group by\n"
        "what comes before it (objective/kl, objective/rlhf_reward -> objective.png), names\n"
        "ending in @N by what comes before the @ (accuracy@1, accuracy@10 -> accuracy@k.png),\n"
        "any other name is its own (loss.png, lr.png, grad_norm.png).\n",
    .notes = "example:\n"
             "  kiln train ... | kiln eval --data val.rec | kiln plot --png loss.png | kiln ckpt "
             "--dir runs/a\n"
             "  kiln plot --png loss.png --in metrics.rec --out /dev/null\n"
             "  kiln plot --dir plots --in runs/a/log.rec --out /dev/null    # every metric\n",
};

typedef struct {
    const char *png, *field, *dir;
    kplot_style style;
    int width, height;
    double every;
} options;

/* --dir: one chart per metric family (kplot_family), drawn into DIR/FAMILY.png. */
#define MAX_FAMILIES 64
typedef struct {
    char name[64];
    kplot *p;
} family;

typedef struct {
    family f[MAX_FAMILIES];
    int n;
    bool full_warned;
} families;

/* The series a metrics record belongs to: its stage, and its split when it has one. */
static void series_name(const krec *r, char *buf, size_t n) {
    char stage[64] = "?", split[64];
    kobj_cstr(krec_get(r, "stage"), stage, sizeof stage);
    if (kobj_cstr(krec_get(r, "split"), split, sizeof split))
        snprintf(buf, n, "%s (%s)", stage, split);
    else
        snprintf(buf, n, "%s", stage);
}

static void draw_to(const kplot *p, const options *o, const kplot_style *style, const char *png) {
    kimage im = kimage_new(o->height, o->width, 3);
    kplot_render(p, style, &im);
    char err[600], perr[300];
    afile *a = afile_open(png, err, sizeof err);
    if (!a) kiln_die(EX_KILN_IO, "%s", err);
    if (!kpng_write_file(afile_temp_path(a), &im, perr, sizeof perr)) {
        afile_abort(a);
        kiln_die(EX_KILN_IO, "%s: %s", png, perr);
    }
    int rc = afile_commit(a, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    kimage_free(&im);
}

static void draw(const kplot *p, const options *o) {
    if (o->png) draw_to(p, o, &o->style, o->png);
}

/* Every numeric field of a metrics record into the chart of its family. */
static void add_families(families *fs, const krec *r, uint64_t step) {
    const msgpack_object *m = r->map;
    char stage[160];
    series_name(r, stage, sizeof stage);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        char field[64], fam[64], name[240];
        const char *member;
        double y;
        if (!kobj_cstr(k, field, sizeof field) || k->via.str.size >= sizeof field) continue;
        if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
            y = v->via.f64;
        else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            y = (double)v->via.u64;
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            y = (double)v->via.i64;
        else
            continue;
        if (!kplot_family(field, fam, sizeof fam, &member)) continue;
        int j = 0;
        while (j < fs->n && strcmp(fs->f[j].name, fam) != 0) j++;
        if (j == fs->n) {
            if (fs->n == MAX_FAMILIES) {
                if (!fs->full_warned)
                    kiln_warn("more than %d metric families: '%s' and later ones are not drawn",
                              MAX_FAMILIES, fam);
                fs->full_warned = true;
                continue;
            }
            snprintf(fs->f[j].name, sizeof fs->f[j].name, "%s", fam);
            fs->f[j].p = kplot_new();
            fs->n++;
        }
        if (*member)
            snprintf(name, sizeof name, "%s %s", stage, member);
        else
            snprintf(name, sizeof name, "%s", stage);
        kplot_add(fs->f[j].p, name, (double)step, y);
    }
}

/* DIR/FAMILY.png; a family name keeps letters, digits and ._-@, the rest becomes '_'. */
static void draw_families(const families *fs, const options *o) {
    for (int i = 0; i < fs->n; i++) {
        char file[64], path[4200], title[96];
        snprintf(file, sizeof file, "%s", fs->f[i].name);
        for (char *c = file; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@", *c))
                *c = '_';
        if (file[0] == '.') file[0] = '_';
        snprintf(path, sizeof path, "%s/%s.png", o->dir, file);
        snprintf(title, sizeof title, "%s vs step", fs->f[i].name);
        kplot_style st = o->style;
        st.title = title, st.ylabel = fs->f[i].name;
        draw_to(fs->f[i].p, o, &st, path);
    }
}

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){.field = "loss", .width = 960, .height = 600, .every = 30};
    o->style = (kplot_style){.xlabel = "step", .scale = 2};
    kopt rows[] = {
        KOPT_STRING('p', "png", &o->png, "FILE", "the image of --field to write"),
        KOPT_STRING('d', "dir", &o->dir, "DIR",
                    "also draw every metric, one DIR/FAMILY.png per metric family (created)"),
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
    if (!o->png && !o->dir) kiln_usage_error("give --png FILE, --dir DIR or both");
    if (o->png && !*o->png) kiln_usage_error("--png wants a file name, not ''");
    if (o->dir && !*o->dir) kiln_usage_error("--dir wants a directory name, not ''");
    if (o->dir && mkdir(o->dir, 0777) != 0 && errno != EEXIST)
        kiln_die(EX_KILN_IO, "--dir %s: cannot create: %s", o->dir, strerror(errno));
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
    families fs = {.n = 0};
    double last_draw = kiln_now();
    size_t drawn_points = 0;
    krec rec;
    while (kreader_next(r, &rec)) {
        uint64_t step;
        double v;
        if (krec_is(&rec, "metrics") && krec_u64(&rec, "step", &step)) {
            if (krec_f64(&rec, o.field, &v)) {
                char name[160];
                series_name(&rec, name, sizeof name);
                kplot_add(p, name, (double)step, v);
            }
            if (o.dir) add_families(&fs, &rec, step);
        }
        kwriter_pass(w, &rec);
        size_t points = kplot_points(p);
        for (int i = 0; i < fs.n; i++) points += kplot_points(fs.f[i].p);
        if (o.every > 0 && kiln_now() - last_draw >= o.every && points != drawn_points) {
            draw(p, &o);
            if (o.dir) draw_families(&fs, &o);
            drawn_points = points;
            last_draw = kiln_now();
        }
        if (kiln_stop_now()) break;
    }
    draw(p, &o);
    if (o.dir) draw_families(&fs, &o);
    for (int i = 0; i < fs.n; i++) kplot_free(fs.f[i].p);
    kplot_free(p);
    kiln_finish(r, w);
}
