/* progress — a training run at a glance (lib/plot/progress.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "plot/plot.h"
#include "plot/progress.h"

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

static void draw(kprogress *p, bool final) {
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

static void note_others(kprogress *p, const krec *r, const char *stage, uint64_t step) {
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
        if (j == KPROGRESS_MAX_OTHER) continue;
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
static void others_summary(const kprogress *p) {
    bool done[KPROGRESS_MAX_OTHER] = {false};
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

void kprogress_record(kprogress *p, const krec *r) {
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
            draw(p, false);
        } else if (!strcmp(stage, "eval") && krec_f64(r, "loss", &v)) {
            p->have_eval = true, p->eval_loss = v, p->eval_step = step;
            if (!p->have_loss) p->step = step; /* no train metrics (yet): the eval's step */
            if (!(v >= p->best_eval)) p->best_eval = v, p->best_step = step;
            p->bits_name = krec_f64(r, "bits_per_byte", &p->bits)  ? "bits/byte"
                           : krec_f64(r, "bits_per_dim", &p->bits) ? "bits/dim"
                                                                   : NULL;
            draw(p, !p->tty);
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

void kprogress_summary(kprogress *p) {
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
void kprogress_start(kprogress *p, uint64_t total, bool tty) {
    *p = (kprogress){.tty = tty, .t0 = kiln_now(), .best_eval = INFINITY, .total = total};
}
