/* test_engine — lib/run/engine with a second objective written here: the engine does the
 * loop, schedule, metrics and ckpt records for any objective that supplies a loss, its
 * gradient and its metric names.  The objective below regresses the scalar head on the
 * last token's state towards a target per row (a reward-model-shaped problem). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/util.h"
#include "data/tokenizer.h"
#include "run/engine.h"
#include "run/lm.h"

enum { B = 4, T = 8, N_RECORDS = 60 };

/* ---- the test objective: mean squared error of the scalar head ---------------------------- */

static int regress_step(void *self, gpt *m, const krec *r, float scale, kobj_out *out, char *err,
                        size_t errsz) {
    (void)self;
    ktensor x, target;
    if (!krec_tensor(r, "x", &x) || !krec_tensor(r, "target", &target) || x.dtype != KT_I32 ||
        target.dtype != KT_F32 || x.ndim != 2 || x.shape[0] != B || x.shape[1] != T)
        return kiln_errf(err, errsz, EX_KILN_DATA, "record %llu: needs x I32 [%d,%d], target",
                         (unsigned long long)r->seq, B, T);
    int32_t tokens[B * T];
    float want[B], got[B], dgot[B];
    ktensor_copy(&x, tokens);
    ktensor_copy(&target, want);
    gpt_forward_hidden(m, tokens, B, T);
    gpt_scalar(m, NULL, GPT_POOL_LAST, got);
    double loss = 0, mean = 0;
    for (int b = 0; b < B; b++) {
        loss += (got[b] - want[b]) * (got[b] - want[b]) / B;
        mean += got[b] / B;
        dgot[b] = scale * 2 * (got[b] - want[b]) / B;
    }
    gpt_scalar_backward(m, dgot);
    out->loss = loss;
    out->tokens = B * T;
    out->metrics[0] = mean;
    return 0;
}

static kobjective regress_objective(void) {
    static const char *const names[] = {"mean_score", NULL};
    return (kobjective){.name = "regress",
                        .record = "target",
                        .metric_names = names,
                        .head = GPT_HEAD_SCALAR,
                        .step = regress_step};
}

/* ---- streams in temporary files --------------------------------------------------------- */

static void write_hdr(kwriter *w) {
    ktokenizer tok;
    ktok_init_bytes(&tok);
    kwriter_hdr_begin(w, NULL, "tokens", 7);
    kw_key(w, "tokenizer");
    ktok_pack(&tok, kw_packer(w));
    kwriter_end(w);
    ktok_free(&tok);
}

/* Rows whose last token is 'a' want +1, 'b' want -1: learnable from the last state. */
static void write_targets(const char *path, bool broken) {
    kwriter *w = kwriter_open(path, 1);
    write_hdr(w);
    for (int i = 0; i < N_RECORDS; i++) {
        int32_t x[B * T];
        float target[B];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) x[b * T + t] = 'c' + (b * 7 + t * 3 + i) % 20;
            int plus = (b + i) % 2;
            x[b * T + T - 1] = plus ? 'a' : 'b';
            target[b] = plus ? 1.0f : -1.0f;
        }
        kwriter_begin(w, "target");
        ktensor kx = ktensor_make(KT_I32, x, 2, (uint64_t[]){B, T});
        ktensor kt = ktensor_make(KT_F32, target, 1, (uint64_t[]){B});
        kw_tensor(w, "x", &kx);
        if (!(broken && i == 3)) kw_tensor(w, "target", &kt);
        kwriter_end(w);
    }
    kwriter_close(w, "ok");
}

static kengine_opts tiny_opts(void) {
    kengine_opts o;
    kengine_opts_init(&o);
    o.preset = "tiny";
    o.steps = 30;
    o.lr = 3e-3;
    o.have_lr = true;
    o.threads = 1;
    char err[128];
    CHECK(kengine_opts_resolve(&o, err, sizeof err) == 0);
    return o;
}

/* The engine trains the second objective: metrics carry its name and its field, the loss
 * falls, and the ckpt record is of a scalar-head model. */
static void test_second_objective(const char *in, const char *out) {
    write_targets(in, false);
    kreader *r = kreader_open(in, 1);
    kwriter *w = kwriter_open(out, 1);
    kengine_opts o = tiny_opts();
    kobjective obj = regress_objective();
    kengine *e = kengine_open(&o, &obj, kreader_hdr(r), w);
    CHECK(kengine_model(e)->cfg.head == GPT_HEAD_SCALAR);
    char err[256];
    CHECK(kengine_run(e, r, err, sizeof err) == 0);
    CHECK(kengine_step(e) == 30);
    kengine_free(e);
    kwriter_close(w, "ok");
    kreader_close(r);

    r = kreader_open(out, 1);
    krec rec;
    int metrics = 0, ckpts = 0;
    double first = -1, last = -1;
    while (kreader_next(r, &rec)) {
        if (krec_is(&rec, "metrics")) {
            const char *name;
            size_t n;
            double loss, mean;
            CHECK(krec_str(&rec, "objective", &name, &n) && n == 7 && !memcmp(name, "regress", 7));
            CHECK(krec_f64(&rec, "mean_score", &mean) && mean > -2 && mean < 2);
            CHECK(krec_f64(&rec, "loss", &loss));
            if (first < 0) first = loss;
            last = loss;
            metrics++;
        } else if (krec_is(&rec, "ckpt")) {
            const msgpack_object *cfg = krec_get(&rec, "config");
            CHECK(cfg && kobj_str_eq(kobj_get(cfg, "head"), "scalar"));
            const msgpack_object *tensors = krec_get(&rec, "tensors");
            CHECK(tensors && kobj_get(tensors, "score.weight"));
            ckpts++;
        }
    }
    kreader_close(r);
    CHECK(metrics == 3);
    CHECK(ckpts == 1);
    CHECK(last < first * 0.5); /* learnt the sign from the last token */
    fprintf(stderr, "regress: loss %.4f -> %.4f\n", first, last);
}

/* A record the objective refuses stops the run with its message and 65. */
static void test_refused_record(const char *in, const char *out) {
    write_targets(in, true);
    kreader *r = kreader_open(in, 1);
    kwriter *w = kwriter_open(out, 1);
    kengine_opts o = tiny_opts();
    kobjective obj = regress_objective();
    kengine *e = kengine_open(&o, &obj, kreader_hdr(r), w);
    char err[256] = "";
    CHECK(kengine_run(e, r, err, sizeof err) == EX_KILN_DATA);
    CHECK(strstr(err, "record 4: needs x") != NULL);
    CHECK(kengine_step(e) == 3);
    kengine_free(e);
    kwriter_close(w, "error");
    kreader_close(r);
}

/* Option combinations the engine refuses, and the defaults it derives. */
static void test_opts(void) {
    char err[256];
    kengine_opts o;
    kengine_opts_init(&o);
    o.lora = "r=4";
    CHECK(kengine_opts_resolve(&o, err, sizeof err) == EX_KILN_USAGE);
    CHECK(strstr(err, "--init") != NULL);
    kengine_opts_init(&o);
    o.init = "base.safetensors", o.lora = "r=4", o.steps = 200;
    CHECK(kengine_opts_resolve(&o, err, sizeof err) == 0);
    CHECK(o.finetune && o.lr == 1e-3 && o.warmup == 10);
    kengine_opts_init(&o);
    o.steps = 3000;
    CHECK(kengine_opts_resolve(&o, err, sizeof err) == 0);
    CHECK(!o.finetune && o.lr == 1e-3 && o.warmup == 100);
    kengine_opts_init(&o);
    o.preset = "huge";
    CHECK(kengine_opts_resolve(&o, err, sizeof err) == EX_KILN_USAGE);
    CHECK(strstr(err, "tiny, small, char") != NULL);
}

int main(void) {
    kiln_set_prog("test_engine");
    char in[] = "/tmp/kiln-test-engine-in-XXXXXX", out[] = "/tmp/kiln-test-engine-out-XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(out);
    CHECK(fi >= 0 && fo >= 0);
    close(fi), close(fo);
    test_opts();
    test_second_objective(in, out);
    test_refused_record(in, out);
    unlink(in), unlink(out);
    return check_report("test_engine");
}
