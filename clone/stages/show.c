/* kiln-show — print a record stream as JSON lines, one record a line. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/b64.h"
#include "stream/options.h"
#include "data/json.h"
#include "plot/plot.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "print a record stream as JSON lines (tensors summarised)",
    .usage = "kiln show [--all] [--full] [--progress [--total N]] [--trl] [--in URL]",
    .notes =
        "Tensors print as {dtype, shape, min, max, mean}; with --full as {dtype, shape, data}.\n"
        "Binary values that are not tensors print as {\"$bin\": BASE64}.  `kiln import` reads\n"
        "this output back (use --full for tensors).\n"
        "--trl writes preference pairs as TRL's dataset lines "
        "{\"prompt\",\"chosen\",\"rejected\"}:\n"
        "one line for each record with those three text fields (pref records, or `kiln load\n"
        "jsonl:` of such lines), nothing else; `kiln load jsonl:FILE` reads them back.\n"
        "example:\n"
        "  printf '{\"t\":\"sample\",\"text\":\"hi\"}\\n' | kiln import | kiln show\n"
        "  kiln train ... | kiln ckpt --dir runs/a | kiln show --progress\n"
        "  kiln label --labels l.jsonl < roll.rec | kiln show --trl > prefs.jsonl\n",
};

static bool full;

static void put_value(const msgpack_object *o);

/* The shortest decimal that reads back as the same float ("3e-05", not 2.99999992e-05). */
static void put_float(float f) {
    char buf[48];
    if (!isfinite(f)) {
        fputs("null", stdout);
        return;
    }
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    fputs(buf, stdout);
    if (!strpbrk(buf, ".e")) fputs(".0", stdout); /* a real stays a real */
}

static void put_elem(const ktensor *t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)t->data + i * kdtype_size(t->dtype);
    if (t->dtype == KT_I64) {
        int64_t v;
        memcpy(&v, p, 8);
        printf("%lld", (long long)v);
    } else if (t->dtype == KT_U64) {
        uint64_t v;
        memcpy(&v, p, 8);
        printf("%llu", (unsigned long long)v);
    } else if (t->dtype == KT_F64) {
        json_put_real(stdout, ktensor_get(t, i));
    } else if (t->dtype == KT_F32 || t->dtype == KT_F16 || t->dtype == KT_BF16) {
        put_float((float)ktensor_get(t, i));
    } else {
        printf("%lld", (long long)ktensor_get(t, i));
    }
}

/* Values of dimension d onwards, starting at element *i, as nested arrays. */
static void put_nested(const ktensor *t, int d, uint64_t *i) {
    if (d == t->ndim) {
        put_elem(t, (*i)++);
        return;
    }
    putchar('[');
    for (uint64_t k = 0; k < t->shape[d]; k++) {
        if (k) putchar(',');
        put_nested(t, d + 1, i);
    }
    putchar(']');
}

static void put_tensor(const ktensor *t) {
    printf("{\"dtype\":\"%s\",\"shape\":[", kdtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) printf(d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
    putchar(']');
    uint64_t n = 0;
    ktensor_numel(t, &n);
    if (full) {
        uint64_t i = 0;
        fputs(",\"data\":", stdout);
        put_nested(t, 0, &i);
    } else if (n > 0) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        for (uint64_t i = 0; i < n; i++) {
            double v = ktensor_get(t, i);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        fputs(",\"min\":", stdout);
        json_put_real(stdout, lo);
        fputs(",\"max\":", stdout);
        json_put_real(stdout, hi);
        fputs(",\"mean\":", stdout);
        json_put_real(stdout, sum / (double)n);
    }
    putchar('}');
}

static void put_value(const msgpack_object *o) {
    ktensor t;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", stdout);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", stdout);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        printf("%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        printf("%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        json_put_real(stdout, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        json_put_str(stdout, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT: {
        const char *p = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : o->via.ext.ptr;
        size_t n = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.ext.size;
        char *enc = b64_encode(p, n);
        printf("{\"$bin\":\"%s\"}", enc);
        free(enc);
        break;
    }
    case MSGPACK_OBJECT_ARRAY:
        putchar('[');
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) putchar(',');
            put_value(&o->via.array.ptr[i]);
        }
        putchar(']');
        break;
    case MSGPACK_OBJECT_MAP:
        if (kobj_tensor(o, &t)) {
            put_tensor(&t);
            break;
        }
        putchar('{');
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i) putchar(',');
            if (k->type == MSGPACK_OBJECT_STR)
                put_value(k);
            else { /* JSON keys are strings: show other keys as their JSON text, quoted */
                putchar('"');
                put_value(k);
                putchar('"');
            }
            putchar(':');
            put_value(&o->via.map.ptr[i].val);
        }
        putchar('}');
        break;
    }
}

static void put_record(const krec *r) {
    put_value(r->map);
    putchar('\n');
    if (ferror(stdout) || (isatty(1) && fflush(stdout) != 0)) {
        if (errno == EPIPE) exit(EX_KILN_OK); /* `kiln show | head`: fine */
        kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(errno));
    }
}

/* ---- --trl: preference pairs as TRL's JSON lines ---------------------------------------- */

/* {"prompt","chosen","rejected"} when the record has the three as text; false otherwise. */
static bool put_trl(const krec *r) {
    static const char *const keys[3] = {"prompt", "chosen", "rejected"};
    const char *s[3];
    size_t n[3];
    for (int i = 0; i < 3; i++)
        if (!krec_str(r, keys[i], &s[i], &n[i])) return false;
    for (int i = 0; i < 3; i++) {
        printf(i ? ",\"%s\":" : "{\"%s\":", keys[i]);
        json_put_str(stdout, s[i], n[i]);
    }
    fputs("}\n", stdout);
    if (ferror(stdout)) {
        if (errno == EPIPE) exit(EX_KILN_OK);
        kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(errno));
    }
    return true;
}

/* ---- --progress: a training run at a glance --------------------------------------------- */

/* Metrics beyond the ones the live line shows (an objective's, retrieval's, ...): the last
 * value of each, by stage, summarised by family (kplot_family). */
#define MAX_OTHER 64
typedef struct {
    char stage[16], field[64];
    double v;
    uint64_t step;
} other_metric;

typedef struct progress {
    bool tty, drawn;
    uint64_t total, step, first_step, eval_step, best_step, saved;
    double t0, t_first, t_line, loss, first_loss, eval_loss, best_eval, bits, tok_s, tok_s_sum;
    uint64_t tok_s_n;
    /* A resumed run's log holds several segments (pipelines/pretrain.sh puts the history in
     * front with kiln cat --prepend): train's elapsed_s starts again at each.  The ETA
     * counts from the current segment; the time sums them. */
    double seg_elapsed, done_elapsed, anchor_t;
    uint64_t anchor_step, segments;
    bool have_loss, have_eval;
    other_metric other[MAX_OTHER];
    int nother;
    const char *bits_name;
    char last_path[256], best_path[256];
} progress;

static void fmt_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%.0fs", s);
}

static void progress_draw(progress *p, bool final) {
    double now = kiln_now();
    if (!p->tty && !final && now - p->t_line < 10.0) return;
    p->t_line = now;
    char bar[48] = "", eta[32] = "", eval[48] = "";
    if (p->total) {
        int fill =
            (int)(20.0 * (double)(p->step < p->total ? p->step : p->total) / (double)p->total);
        snprintf(bar, sizeof bar, "[%.*s%.*s] ", fill, "####################", 20 - fill,
                 "--------------------");
        double rate = (double)(p->step - p->anchor_step) / (now - p->anchor_t);
        if (p->step > p->anchor_step && p->step < p->total) {
            fmt_duration((double)(p->total - p->step) / rate, eta + 6, sizeof eta - 6);
            memcpy(eta, "  ETA ", 6);
        }
    }
    if (p->have_eval) snprintf(eval, sizeof eval, "  eval %.4f", p->eval_loss);
    char total[32] = "";
    if (p->total) snprintf(total, sizeof total, "/%llu", (unsigned long long)p->total);
    char loss[32] = "";
    if (p->have_loss) snprintf(loss, sizeof loss, "loss %.4f", p->loss);
    fprintf(stderr, "%sstep %llu%s %s%s%s  %.1fk tok/s%s%s", p->tty ? "\r" : "",
            (unsigned long long)p->step, total, bar, loss, eval, p->tok_s / 1000, eta,
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
    p->drawn = true;
}

static void note_others(progress *p, const krec *r, const char *stage, uint64_t step) {
    static const char *shown[] = {
        "loss", "lr", "grad_norm", "tokens_per_s", "ppl", "bits_per_byte", "bits_per_dim"};
    const msgpack_object *m = r->map;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        char field[64], fam[64];
        const char *member;
        if (!kobj_cstr(k, field, sizeof field) || k->via.str.size >= sizeof field) continue;
        if (v->type != MSGPACK_OBJECT_FLOAT32 && v->type != MSGPACK_OBJECT_FLOAT64 &&
            v->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
            v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
            continue;
        if (!kplot_family(field, fam, sizeof fam, &member)) continue;
        bool skip = false;
        for (size_t j = 0; j < sizeof shown / sizeof *shown; j++) skip |= !strcmp(field, shown[j]);
        if (skip) continue;
        int j = 0;
        while (j < p->nother &&
               (strcmp(p->other[j].stage, stage) || strcmp(p->other[j].field, field)))
            j++;
        if (j == MAX_OTHER) continue;
        if (j == p->nother) {
            snprintf(p->other[j].stage, sizeof p->other[j].stage, "%s", stage);
            snprintf(p->other[j].field, sizeof p->other[j].field, "%s", field);
            p->nother++;
        }
        p->other[j].v = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER   ? (double)v->via.u64
                        : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)v->via.i64
                                                                     : v->via.f64;
        p->other[j].step = step;
    }
}

/* "eval accuracy@k  @1 0.5200  @10 0.9000  (step 300)", a line per stage and family. */
static void others_summary(const progress *p) {
    bool done[MAX_OTHER] = {false};
    for (int i = 0; i < p->nother; i++) {
        if (done[i]) continue;
        char fam[64], label[96];
        const char *member;
        kplot_family(p->other[i].field, fam, sizeof fam, &member);
        snprintf(label, sizeof label, "%s %s", p->other[i].stage, fam);
        fprintf(stderr, "%-14s", label);
        uint64_t step = 0;
        for (int j = i; j < p->nother; j++) {
            char fj[64];
            const char *mj;
            kplot_family(p->other[j].field, fj, sizeof fj, &mj);
            if (strcmp(p->other[j].stage, p->other[i].stage) || strcmp(fj, fam)) continue;
            done[j] = true;
            fprintf(stderr, " %s%s%.4f", *mj ? mj : "", *mj ? " " : "", p->other[j].v);
            if (p->other[j].step > step) step = p->other[j].step;
        }
        fprintf(stderr, "  (step %llu)\n", (unsigned long long)step);
    }
}

static void progress_record(progress *p, const krec *r) {
    char stage[16] = "";
    double v;
    if (krec_is(r, "metrics") && kobj_cstr(krec_get(r, "stage"), stage, sizeof stage)) {
        uint64_t step = 0;
        krec_u64(r, "step", &step);
        note_others(p, r, stage, step);
        if (!strcmp(stage, "train") && krec_f64(r, "loss", &v)) {
            if (!p->have_loss) p->first_loss = v, p->first_step = step, p->t_first = kiln_now();
            double el;
            if (krec_f64(r, "elapsed_s", &el)) {
                if (!p->segments || el < p->seg_elapsed) { /* a new segment starts */
                    p->done_elapsed += p->segments ? p->seg_elapsed : 0;
                    p->segments++;
                    p->anchor_step = step, p->anchor_t = kiln_now();
                }
                p->seg_elapsed = el;
            } else if (!p->have_loss) {
                p->anchor_step = step, p->anchor_t = kiln_now();
            }
            p->have_loss = true, p->loss = v, p->step = step;
            if (krec_f64(r, "tokens_per_s", &p->tok_s)) p->tok_s_sum += p->tok_s, p->tok_s_n++;
            progress_draw(p, false);
        } else if (!strcmp(stage, "eval") && krec_f64(r, "loss", &v)) {
            p->have_eval = true, p->eval_loss = v, p->eval_step = step;
            if (!p->have_loss) p->step = step; /* no train metrics (yet): the eval's step */
            if (!(v >= p->best_eval)) p->best_eval = v, p->best_step = step;
            p->bits_name = krec_f64(r, "bits_per_byte", &p->bits)  ? "bits/byte"
                           : krec_f64(r, "bits_per_dim", &p->bits) ? "bits/dim"
                                                                   : NULL;
            progress_draw(p, !p->tty);
        }
    } else if (krec_is(r, "saved")) {
        bool best = false;
        const msgpack_object *b = krec_get(r, "best");
        if (b && b->type == MSGPACK_OBJECT_BOOLEAN) best = b->via.boolean;
        p->saved++;
        kobj_cstr(krec_get(r, "path"), p->last_path, sizeof p->last_path);
        if (best) memcpy(p->best_path, p->last_path, sizeof p->best_path);
    }
}

static void progress_summary(progress *p) {
    if (p->tty && p->drawn) fputc('\n', stderr);
    char took[32];
    fmt_duration(kiln_now() - p->t0, took, sizeof took);
    fprintf(stderr, "%-14s %llu", "steps", (unsigned long long)p->step);
    if (p->total) fprintf(stderr, " of %llu", (unsigned long long)p->total);
    fprintf(stderr, "\n%-14s %s", "time", took);
    if (p->segments > 1) {
        char whole[32];
        fmt_duration(p->done_elapsed + p->seg_elapsed, whole, sizeof whole);
        fprintf(stderr, " (the whole run: %s of training in %llu segments)", whole,
                (unsigned long long)p->segments);
    }
    fputc('\n', stderr);
    if (p->have_loss)
        fprintf(stderr, "%-14s %.4f at step %llu -> %.4f at step %llu\n", "train loss",
                p->first_loss, (unsigned long long)p->first_step, p->loss,
                (unsigned long long)p->step);
    if (p->have_eval) {
        fprintf(stderr, "%-14s %.4f at step %llu (best %.4f at step %llu)", "eval loss",
                p->eval_loss, (unsigned long long)p->eval_step, p->best_eval,
                (unsigned long long)p->best_step);
        if (p->bits_name) fprintf(stderr, ", %.4f %s", p->bits, p->bits_name);
        fputc('\n', stderr);
    }
    if (p->tok_s_n) fprintf(stderr, "%-14s %.0f\n", "tokens/s", p->tok_s_sum / (double)p->tok_s_n);
    others_summary(p);
    if (p->saved) {
        /* An old log names files that --keep has deleted since: say so. */
        fprintf(stderr, "%-14s %llu written, last %s%s\n", "checkpoints",
                (unsigned long long)p->saved, p->last_path,
                access(p->last_path, F_OK) == 0 ? "" : " (no longer on disk)");
        if (p->best_path[0])
            fprintf(stderr, "%-14s %s%s\n", "best", p->best_path,
                    access(p->best_path, F_OK) == 0 ? "" : " (no longer on disk)");
    }
}

typedef struct options {
    bool all, progress, trl;
    uint64_t total;
} options;

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){0};
    kopt rows[] = {
        KOPT_BOOL('a', "all", &o->all, "include the hdr and eos records"),
        KOPT_BOOL('f', "full", &full, "print tensor values as nested arrays instead of a summary"),
        KOPT_BOOL('p', "progress", &o->progress,
                  "a training run at a glance on stderr instead of the records: one live line "
                  "(step/total, a bar, train and eval loss, tokens/s, ETA; off a terminal every "
                  "10 s and at every eval), then a summary: steps, time, train and eval loss, "
                  "tokens/s, checkpoints written, the best one"),
        KOPT_BOOL(0, "trl", &o->trl,
                  "preference pairs as TRL's JSON lines {\"prompt\",\"chosen\",\"rejected\"}, "
                  "from every record with those three text fields; other records are left out",
                  .conflicts = "progress"),
        KOPT_U64(0, "total", &o->total, "N", 0, UINT64_MAX,
                 "with --progress: the steps of the whole run, for the bar and the ETA (default: "
                 "the hdr's `steps`, which kiln train --steps writes)"),
        KOPT_GROUP("record streams"),
        KOPT_STREAM_IN(cli),
        KOPT_STRING(0, "out", &cli->out, "URL",
                    "ignored: the JSON lines go to stdout (scripts pass --out /dev/null)"),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    options o;
    parse_options(argc, argv, &cli, &o);
    progress prog = {.tty = isatty(2), .t0 = kiln_now(), .best_eval = INFINITY, .total = o.total};
    kreader *r = kiln_cli_reader(&cli);
    if (!prog.total) krec_u64(kreader_hdr(r), "steps", &prog.total);
    bool all = o.all && !o.progress && !o.trl; /* the records themselves */
    uint64_t not_pairs = 0;
    if (all) put_record(kreader_hdr(r));
    krec rec;
    while (kreader_next(r, &rec)) {
        if (o.progress)
            progress_record(&prog, &rec);
        else if (o.trl)
            not_pairs += !put_trl(&rec);
        else
            put_record(&rec);
    }
    if (o.progress) progress_summary(&prog);
    if (not_pairs)
        kiln_warn("--trl: %llu records without prompt, chosen and rejected texts left out",
                  (unsigned long long)not_pairs);
    if (all && kreader_status(r)) put_record(&rec); /* the eos */
    if (fflush(stdout) != 0) {
        if (errno == EPIPE) exit(EX_KILN_OK);
        kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(errno));
    }
    int sig = kiln_stop_signal();
    const char *status = kreader_status(r);
    bool up_failed = status && strcmp(status, "error") == 0;
    if (!sig && up_failed)
        kiln_warn("%s: the upstream failed (its end of stream says error)", kreader_name(r));
    kreader_close(r);
    return sig ? kiln_stop_status(sig) : up_failed ? EX_KILN_IO : EX_KILN_OK;
}
