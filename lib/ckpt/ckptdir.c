/* ckptdir — kiln ckpt's directory of checkpoints (lib/ckpt/ckptdir.h). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/adapter.h"
#include "ckpt/ckptdir.h"
#include "ckpt/hf.h"
#include "ckpt/record.h"
#include "ckpt/store.h"
#include "core/afile.h"
#include "core/util.h"

/* ---- the directory ---------------------------------------------------------------------- */

static void make_dirs(const char *dir) {
    char *p = xstrdup(dir);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c != '\0') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            kiln_die(EX_KILN_IO, "%s: cannot create: %s", p, strerror(errno));
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) kiln_die(EX_KILN_IO, "%s: not a directory", p);
    free(p);
}

static bool step_file(const char *name, uint64_t *step) {
    char digits[32];
    const char *ext = ".safetensors";
    size_t n = strlen(name), e = strlen(ext);
    if (strncmp(name, "step-", 5) != 0 || n <= 5 + e || strcmp(name + n - e, ext) != 0)
        return false;
    size_t k = n - 5 - e;
    if (k >= sizeof digits) return false;
    memcpy(digits, name + 5, k);
    digits[k] = '\0';
    if (!parse_u64(digits, step)) return false;
    char *canonical = ckpt_file_name(NULL, *step); /* "step-500.safetensors" is not ours */
    bool ours = strcmp(canonical, name) == 0;
    free(canonical);
    return ours;
}

static void remember(kckptdir *s, uint64_t step, double loss) {
    for (size_t i = 0; i < s->n; i++)
        if (s->files[i].step == step) {
            s->files[i].eval_loss = loss;
            return;
        }
    s->files = xrealloc(s->files, xmul(s->n + 1, sizeof *s->files));
    s->files[s->n++] = (kckptdir_file){step, loss};
}

/* A temporary file an atomic write left when its writer was killed (lib/core/afile.h names
 * them ".NAME.tmp.PID.N"): one of ours (a step file or a link) whose process is gone. */
static bool stale_temp(const char *name) {
    const char *tmp = strstr(name, ".tmp.");
    if (name[0] != '.' || !tmp) return false;
    bool ours = !strncmp(name + 1, "step-", 5) || !strncmp(name + 1, "latest.", 7) ||
                !strncmp(name + 1, "best.", 5);
    char *end;
    long pid = strtol(tmp + 5, &end, 10);
    if (!ours || pid <= 0 || *end != '.') return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* An optimizer file whose model file is missing: its writer died between the two (the
 * optimizer file is written first, lib/ckpt/store.h). */
static bool orphan_optim(const char *dir, const char *name) {
    const char *ext = ".optim.safetensors";
    size_t n = strlen(name), e = strlen(ext);
    if (strncmp(name, "step-", 5) != 0 || n <= 5 + e || strcmp(name + n - e, ext) != 0)
        return false;
    char *model = xmalloc(strlen(dir) + n + 2);
    sprintf(model, "%s/%.*s.safetensors", dir, (int)(n - e), name);
    struct stat st;
    bool orphan = lstat(model, &st) != 0 && errno == ENOENT;
    free(model);
    return orphan;
}

/* What a killed writer left behind goes, before anything is written. */
static void clean_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) kiln_die(EX_KILN_IO, "%s: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (!stale_temp(e->d_name) && !orphan_optim(dir, e->d_name)) continue;
        char *path = xmalloc(strlen(dir) + strlen(e->d_name) + 2);
        sprintf(path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            kiln_warn("%s: removed (left by a writer that was stopped)", path);
        else if (errno != ENOENT)
            kiln_warn("%s: cannot remove: %s", path, strerror(errno));
        free(path);
    }
    closedir(d);
}

/* Checkpoints left by an earlier run count towards --keep; their eval loss is in their
 * metadata.  A file that does not read as a checkpoint is left alone (never deleted). */
static void scan_dir(kckptdir *s) {
    DIR *d = opendir(s->dir);
    if (!d) kiln_die(EX_KILN_IO, "%s: %s", s->dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        uint64_t step;
        if (!step_file(e->d_name, &step)) continue;
        char *path = ckpt_file_name(s->dir, step), err[600];
        stfile *f;
        double loss = NAN;
        if (st_open(path, &f, err, sizeof err) == 0) {
            const char *l = st_meta(f, "eval_loss");
            if (l && !parse_f64(l, &loss)) loss = NAN;
            st_close(f);
            remember(s, step, loss);
        } else
            kiln_warn("%s (left alone)", err);
        free(path);
    }
    closedir(d);
}

static int by_step(const void *a, const void *b) {
    const kckptdir_file *x = a, *y = b;
    return (x->step > y->step) - (x->step < y->step);
}

/* Index of the checkpoint with the lowest known eval loss, or -1. */
static long best_index(const kckptdir *s) {
    long best = -1;
    for (size_t i = 0; i < s->n; i++)
        if (isfinite(s->files[i].eval_loss) &&
            (best < 0 || s->files[i].eval_loss < s->files[best].eval_loss))
            best = (long)i;
    return best;
}

static void link_to(const kckptdir *s, const char *link, uint64_t step) {
    /* A relative target, so the directory can be moved or copied as a whole. */
    char *target = ckpt_file_name(NULL, step), *path = xmalloc(strlen(s->dir) + strlen(link) + 2),
         err[600];
    sprintf(path, "%s/%s", s->dir, link);
    int rc = afile_symlink(target, path, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    free(target);
    free(path);
}

/* Delete all but the newest K by step, the best and the one just written (a resumed run
 * may write a step below older ones).  Runs after the links moved, so they never dangle.
 * The model file goes first: a crash in between leaves a harmless optimizer file rather
 * than a model naming a missing one. */
static void prune(kckptdir *s, uint64_t just_written) {
    qsort(s->files, s->n, sizeof *s->files, by_step);
    long best = best_index(s);
    size_t out = 0;
    for (size_t i = 0; i < s->n; i++) {
        bool keep = s->keep == 0 || i + s->keep >= s->n || (long)i == best ||
                    s->files[i].step == just_written;
        if (keep) {
            s->files[out++] = s->files[i];
            continue;
        }
        char *path = ckpt_file_name(s->dir, s->files[i].step), *optim = ckpt_optim_name(path);
        if (remove(path) != 0 && errno != ENOENT)
            kiln_warn("%s: cannot remove: %s", path, strerror(errno));
        if (remove(optim) != 0 && errno != ENOENT)
            kiln_warn("%s: cannot remove: %s", optim, strerror(errno));
        free(path);
        free(optim);
    }
    s->n = out;
}

/* ---- records ---------------------------------------------------------------------------- */

/* An eval metrics record: remember its loss for the ckpt of the same step. */
void kckptdir_metrics(kckptdir *s, const krec *r) {
    const msgpack_object *stage = krec_get(r, "stage");
    uint64_t step;
    double loss;
    if (!kobj_str_eq(stage, "eval") || !krec_u64(r, "step", &step) || !krec_f64(r, "loss", &loss))
        return;
    s->have_eval = true;
    s->eval_step = step;
    s->eval_loss = loss;
}

void kckptdir_save(kckptdir *s, const krec *r, const char *input, kwriter *w) {
    uint64_t step;
    if (!krec_u64(r, "step", &step))
        kiln_die(EX_KILN_DATA, "%s: ckpt record without a u64 step (record %llu)", input,
                 (unsigned long long)r->index);
    double loss = s->have_eval && s->eval_step == step ? s->eval_loss : NAN;
    char *path = ckpt_file_name(s->dir, step), err[600], where[160];
    /* A record whose tensors contradict its config is refused before the directory is
     * touched: it must not rotate good checkpoints away. */
    snprintf(where, sizeof where, "%s: ckpt record %llu (step %llu)", input,
             (unsigned long long)r->index, (unsigned long long)step);
    int rc = kckpt_record_check(r, where, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    rc = ckpt_write_record(r, path, loss, err, sizeof err);
    if (rc) kiln_die(rc, "%s (record %llu)", err, (unsigned long long)r->index);
    remember(s, step, loss);
    long best = best_index(s);
    uint64_t best_step = best >= 0 ? s->files[best].step : 0;
    link_to(s, "latest.safetensors", step);
    if (best >= 0) link_to(s, "best.safetensors", best_step);
    if (kadapter_is_record(r)) { /* PEFT's names beside the adapters (lib/ckpt/hf.h) */
        kadapter ad;
        kadapter_from_record(&ad, r);
        rc = khf_peft_config(s->dir, &ad.cfg, err, sizeof err);
        kadapter_free(&ad);
        if (rc) kiln_die(rc, "%s", err);
        link_to(s, "adapter_model.safetensors", step);
    }
    prune(s, step);

    kwriter_begin(w, "saved");
    kw_u64(w, "step", step);
    kw_str(w, "path", path);
    if (isfinite(loss)) kw_f64(w, "eval_loss", loss);
    kw_bool(w, "best", best >= 0 && best_step == step);
    kwriter_end(w);
    free(path);
}

void kckptdir_open(kckptdir *s, const char *dir, uint64_t keep) {
    *s = (kckptdir){.dir = dir, .keep = keep};
    make_dirs(dir);
    clean_dir(dir);
    scan_dir(s);
}

void kckptdir_close(kckptdir *s) {
    free(s->files);
    s->files = NULL, s->n = 0;
}
