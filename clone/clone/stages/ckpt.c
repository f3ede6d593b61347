/* kiln-ckpt — save ckpt records as safetensors checkpoints; keep the last K and the best. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ckpt/adapter.h"
#include "ckpt/hf.h"
#include "core/afile.h"
#include "ckpt/store.h"
#include "stream/options.h"
#include "ckpt/load.h"
#include "ckpt/record.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "save checkpoints as safetensors files, keeping the last K and the best",
    .usage = "kiln ckpt --dir DIR [--keep K] [--in URL] [--out URL]\n"
             "       kiln ckpt inspect FILE\n"
             "       kiln ckpt merge BASE ADAPTER -o OUT\n"
             "       kiln ckpt export CKPT --hf DIR",
    .text =
        "Each ckpt record becomes DIR/step-NNNNNN.safetensors (model tensors under Hugging Face\n"
        "GPT-2 names; config, tokenizer, step, cursor, seed in __metadata__), plus\n"
        "DIR/step-NNNNNN.optim.safetensors when it carries optimizer state.  Writes are atomic.\n"
        "The eval loss of step S is the `loss` of the last metrics record of stage \"eval\" for\n"
        "step S seen before the ckpt of step S (kiln eval sends them in that order).\n"
        "DIR/latest.safetensors links to the newest checkpoint, DIR/best.safetensors to the one\n"
        "with the lowest eval loss.  LoRA adapters also get PEFT's DIR/adapter_config.json and\n"
        "DIR/adapter_model.safetensors (a link to the newest), for peft.PeftModel.  ckpt\n"
        "records are consumed; a `saved` record {step, path, eval_loss, best} takes their\n"
        "place; every other record passes through.\n",
    .notes =
        "inspect FILE prints a checkpoint's config, tokenizer, step and tensors (name, dtype,\n"
        "shape, CRC-32 of the data) on stdout.\n"
        "merge BASE ADAPTER -o OUT folds a LoRA adapter checkpoint (kiln train --lora) into\n"
        "the base model it was trained on and writes a standalone model; an adapter whose\n"
        "base hash differs from BASE's is refused (exit 65).\n"
        "export CKPT --hf DIR writes a Hugging Face GPT-2 directory (config.json,\n"
        "model.safetensors, and encoder.json + vocab.bpe for a BPE model) for transformers.\n"
        "Any command taking a checkpoint file also takes such a directory (lib/ckpt/hf.h).\n"
        "example:\n"
        "  kiln train --steps 2000 --every 250 < batches.rec | kiln eval --data val.rec \\\n"
        "    | kiln ckpt --dir runs/moby --keep 2 | kiln show\n"
        "  kiln ckpt inspect runs/moby/latest.safetensors\n"
        "  kiln ckpt merge runs/base/best.safetensors runs/lora/latest.safetensors -o "
        "merged.safetensors\n",
};

static const kopt_info INSPECT_HELP = {
    .command = "inspect",
    .about = "print a checkpoint's config, tokenizer, step and tensors",
    .usage = "kiln ckpt inspect FILE",
    .text = "Each tensor with its name, dtype, shape and the CRC-32 of its data, on stdout.\n",
    .notes = "example:\n"
             "  kiln ckpt inspect runs/moby/latest.safetensors\n",
    .max_args = 2,
};

static const kopt_info MERGE_HELP = {
    .command = "merge",
    .about = "fold a LoRA adapter checkpoint into its base model",
    .usage = "kiln ckpt merge BASE ADAPTER -o OUT",
    .text = "ADAPTER was trained with kiln train --lora on BASE; OUT is a standalone model.  An\n"
            "adapter whose base hash differs from BASE's is refused (exit 65).\n",
    .notes = "example:\n"
             "  kiln ckpt merge runs/base/best.safetensors runs/lora/latest.safetensors -o "
             "merged.safetensors\n",
    .max_args = 3,
};

static const kopt_info EXPORT_HELP = {
    .command = "export",
    .about = "write a checkpoint as a Hugging Face GPT-2 directory",
    .usage = "kiln ckpt export CKPT --hf DIR",
    .text = "DIR/config.json (GPT2LMHeadModel's config), DIR/model.safetensors (transformer.*\n"
            "names, Conv1D layouts, the head tied to wte; kiln's config and tokenizer in\n"
            "__metadata__ too) and, for a BPE model, DIR/encoder.json and DIR/vocab.bpe.\n"
            "transformers loads it with GPT2LMHeadModel.from_pretrained(DIR); kiln reads DIR\n"
            "wherever it reads a checkpoint.  CKPT may be a file or such a directory.\n",
    .notes = "example:\n"
             "  kiln ckpt export runs/moby/best.safetensors --hf runs/moby-hf\n"
             "  kiln sample --ckpt runs/moby-hf --prompt ' The whale'\n",
    .max_args = 2,
};

/* A checkpoint in DIR that this stage manages. */
typedef struct {
    uint64_t step;
    double eval_loss; /* NAN when unknown */
} saved;

typedef struct {
    const char *dir;
    uint64_t keep;
    saved *files;
    size_t n;
    bool have_eval;
    uint64_t eval_step;
    double eval_loss;
} state;

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

static void remember(state *s, uint64_t step, double loss) {
    for (size_t i = 0; i < s->n; i++)
        if (s->files[i].step == step) {
            s->files[i].eval_loss = loss;
            return;
        }
    s->files = xrealloc(s->files, xmul(s->n + 1, sizeof *s->files));
    s->files[s->n++] = (saved){step, loss};
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
static void scan_dir(state *s) {
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
    const saved *x = a, *y = b;
    return (x->step > y->step) - (x->step < y->step);
}

/* Index of the checkpoint with the lowest known eval loss, or -1. */
static long best_index(const state *s) {
    long best = -1;
    for (size_t i = 0; i < s->n; i++)
        if (isfinite(s->files[i].eval_loss) &&
            (best < 0 || s->files[i].eval_loss < s->files[best].eval_loss))
            best = (long)i;
    return best;
}

static void link_to(const state *s, const char *link, uint64_t step) {
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
static void prune(state *s, uint64_t just_written) {
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
static void note_metrics(state *s, const krec *r) {
    const msgpack_object *stage = krec_get(r, "stage");
    uint64_t step;
    double loss;
    if (!kobj_str_eq(stage, "eval") || !krec_u64(r, "step", &step) || !krec_f64(r, "loss", &loss))
        return;
    s->have_eval = true;
    s->eval_step = step;
    s->eval_loss = loss;
}

static void save(state *s, const krec *r, const char *input, kwriter *w) {
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

/* ---- inspect ---------------------------------------------------------------------------- */

static uint32_t crc_of(const void *data, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const Bytef *p = data;
    for (size_t chunk; n > 0; p += chunk, n -= chunk) { /* zlib takes 32-bit lengths */
        chunk = n > (1u << 30) ? (1u << 30) : n;
        crc = crc32(crc, p, (uInt)chunk);
    }
    return (uint32_t)crc;
}

static void print_tensors(const stfile *f) {
    for (size_t i = 0; i < st_count(f); i++) {
        const ktensor *t = st_tensor(f, i);
        char shape[200] = "[";
        for (int d = 0; d < t->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", d ? ", " : "",
                     (unsigned long long)t->shape[d]);
        strcat(shape, "]");
        printf("  %-40s %-4s %-16s crc32 %08x\n", st_name(f, i), kdtype_name(t->dtype), shape,
               crc_of(t->data, t->nbytes));
    }
}

static int inspect(const char *path) {
    kckpt *ck = kckpt_load(path, true);
    size_t nbytes;
    const void *data = st_data(ck->file, &nbytes);
    uint64_t params = 0;
    for (size_t i = 0; i < st_count(ck->file); i++) {
        uint64_t k = 0;
        ktensor_numel(st_tensor(ck->file, i), &k);
        params += k;
    }
    printf("file       %s\n", path);
    for (size_t i = 0; i < st_meta_count(ck->file); i++)
        printf("%-10s %s\n", st_meta_key(ck->file, i), st_meta_value(ck->file, i));
    printf("tensors    %zu, %llu parameters, %zu bytes, crc32 %08x\n", st_count(ck->file),
           (unsigned long long)params, nbytes, crc_of(data, nbytes));
    print_tensors(ck->file);
    if (ck->optim) {
        data = st_data(ck->optim, &nbytes);
        printf("optimizer  step %llu, lr %g, %zu tensors, %zu bytes, crc32 %08x\n",
               (unsigned long long)ck->optim_step, ck->lr, st_count(ck->optim), nbytes,
               crc_of(data, nbytes));
        print_tensors(ck->optim);
    }
    kckpt_free(ck);
    if (fflush(stdout) != 0 && errno != EPIPE)
        kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(errno));
    return EX_KILN_OK;
}

static int inspect_command(int argc, char **argv) {
    kopt rows[] = {KOPT_END()};
    if (kopt_parse(&INSPECT_HELP, rows, argc, argv) != 2)
        kiln_usage_error("inspect wants one FILE");
    return inspect(argv[2]);
}

/* ---- merge ------------------------------------------------------------------------------ */

static int merge(int argc, char **argv) {
    const char *out = NULL;
    kopt rows[] = {
        KOPT_STRING('o', "out", &out, "OUT", "the merged model's file", .flags = KOPT_REQUIRED),
        KOPT_END(),
    };
    if (kopt_parse(&MERGE_HELP, rows, argc, argv) != 3)
        kiln_usage_error("merge wants BASE ADAPTER -o OUT");
    const char *base = argv[2], *adapter = argv[3];
    kpool *pool = kpool_create(0);
    kmodel km;
    kmodel_from_file(&km, base, pool);
    kadapter ad;
    kadapter_open(&ad, adapter);
    gpt *m = kadapter_apply(&ad, km.m);
    km.m = NULL;
    const char *tok = st_meta(ad.ck->file, "tokenizer");
    kadapter_write_model(m, tok, ad.step, out);
    if (ad.rows)
        fprintf(stderr, "%s: %s + %s (new rows from token %d) -> %s\n", kiln_prog(), base,
                adapter, ad.first_row, out);
    else
        fprintf(stderr, "%s: %s + %s (r %d, alpha %g) -> %s\n", kiln_prog(), base, adapter,
                ad.cfg.r, (double)ad.cfg.alpha, out);
    gpt_free(m);
    kadapter_free(&ad);
    kmodel_free(&km);
    kpool_free(pool);
    return EX_KILN_OK;
}

/* ---- export ------------------------------------------------------------------------------ */

static int export_hf(int argc, char **argv) {
    const char *dir = NULL;
    kopt rows[] = {
        KOPT_STRING(0, "hf", &dir, "DIR", "the Hugging Face directory (created if missing)",
                    .flags = KOPT_REQUIRED),
        KOPT_END(),
    };
    if (kopt_parse(&EXPORT_HELP, rows, argc, argv) != 2)
        kiln_usage_error("export wants CKPT --hf DIR");
    kpool *pool = kpool_create(1);
    kmodel km;
    kmodel_from_file(&km, argv[2], pool);
    char err[600];
    int rc = khf_export(km.m, km.has_tok ? &km.tok : NULL, dir, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    fprintf(stderr, "%s: %s -> %s (config.json, model.safetensors%s)\n", kiln_prog(), argv[2], dir,
            km.has_tok && km.tok.kind == KTOK_BPE ? ", encoder.json, vocab.bpe" : "");
    kmodel_free(&km);
    kpool_free(pool);
    return EX_KILN_OK;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    kiln_cli cli;
    state s = {.keep = 3};
    kiln_cli_init(&cli, argc, argv, HELP);
    if (argc >= 2 && strcmp(argv[1], "inspect") == 0) return inspect_command(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "merge") == 0) return merge(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "export") == 0) return export_hf(argc, argv);
    kopt rows[] = {
        KOPT_STRING('d', "dir", &s.dir, "DIR", "where checkpoints go (created if missing)",
                    .flags = KOPT_REQUIRED),
        KOPT_U64('k', "keep", &s.keep, "K", 0, UINT64_MAX,
                 "keep the K newest checkpoints, plus the best (default 3; 0 keeps all)"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    if (!*s.dir) kiln_usage_error("--dir wants a directory, not ''");
    make_dirs(s.dir);
    clean_dir(s.dir);
    scan_dir(&s);

    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    char schema[64] = "";
    uint64_t seed = 0;
    kobj_cstr(krec_get(hdr, "schema"), schema, sizeof schema);
    krec_u64(hdr, "seed", &seed);
    kwriter_hdr_begin(w, hdr, schema, seed);
    kwriter_end(w);
    krec rec;
    while (kreader_next(r, &rec)) {
        if (krec_is(&rec, "ckpt"))
            save(&s, &rec, kreader_name(r), w);
        else {
            if (krec_is(&rec, "metrics")) note_metrics(&s, &rec);
            kwriter_pass(w, &rec);
        }
        if (kiln_stop_now() || kwriter_gone(w)) break;
    }
    free(s.files);
    kiln_finish(r, w);
}
