/* test_rlhf — the reward-model (Bradley–Terry) and DPO objectives (lib/run/reward.h,
 * lib/run/dpo.h) against a PyTorch reimplementation of TRL's formulas (tests/torch_rlhf.py,
 * committed as tests/fixtures/rlhf.bin): the batch loss, the margin and every parameter
 * gradient, through the objectives' own record path (pref records with token fields and
 * reference log-probabilities, two pairs a step as --accum 2); plus the pair losses'
 * gradients against finite differences. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/util.h"
#include "fixture.h"
#include "run/dpo.h"
#include "run/reward.h"

#define NPAIRS 2

static int32_t *tokens_of(const char *name, int pair, size_t *n) {
    char prefix[32];
    snprintf(prefix, sizeof prefix, "pair%d/", pair);
    const fixture_entry *e = fixture_get(prefix, name);
    int32_t *t = xmalloc(sizeof(int32_t) * (e->n ? e->n : 1));
    for (uint32_t i = 0; i < e->n; i++) t[i] = (int32_t)e->v[i];
    *n = e->n;
    return t;
}

/* The fixture's pairs as pref records (tokens, reference logps) in a temporary stream. */
static kreader *pref_stream(const char *path) {
    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, "pref", 0);
    kwriter_end(w);
    static const char *const fields[3] = {"prompt", "chosen", "rejected"};
    for (int p = 0; p < NPAIRS; p++) {
        int32_t *t[3];
        size_t n[3];
        kwriter_begin(w, "pref");
        for (int f = 0; f < 3; f++) {
            char key[32];
            t[f] = tokens_of(fields[f], p, &n[f]);
            snprintf(key, sizeof key, "%s_tokens", fields[f]);
            ktensor kt = ktensor_1d(KT_I32, t[f], n[f]);
            kw_tensor(w, key, &kt);
        }
        char prefix[32];
        snprintf(prefix, sizeof prefix, "pair%d/", p);
        const float *ref = fixture_get(prefix, "ref")->v;
        kw_f64(w, "ref_chosen_logps", ref[0]);
        kw_f64(w, "ref_rejected_logps", ref[1]);
        kwriter_end(w);
        for (int f = 0; f < 3; f++) free(t[f]);
    }
    kwriter_close(w, "ok");
    return kreader_open(path, 1);
}

static gpt *model_from(const char *prefix, const float *c, gpt_head head, kpool *pool) {
    gpt_config cfg = {(int)c[0], (int)c[1], (int)c[2], (int)c[3], (int)c[4], head};
    gpt *m = gpt_create(&cfg, pool, 1);
    for (int i = 0; i < m->n_tensors; i++) {
        const fixture_entry *e = fixture_get(prefix, m->tensors[i].name);
        CHECK(e && e->n == m->tensors[i].numel);
        if (e && e->n == m->tensors[i].numel)
            memcpy(m->params + m->tensors[i].offset, e->v, sizeof(float) * e->n);
    }
    return m;
}

/* Both pairs through the objective, each at scale 1/2; the loss, margin and gradients against
 * the fixture's. */
static void check_case(gpt *m, const char *path, const char *name, kobjective obj, int margin_at) {
    kreader *r = pref_stream(path);
    krec rec;
    char err[256], prefix[64];
    gpt_zero_grad(m);
    double loss = 0, margin = 0;
    for (int p = 0; p < NPAIRS; p++) {
        CHECK(kreader_next(r, &rec));
        CHECK(obj.accepts(&rec));
        kobj_out out = {0};
        int rc = obj.step(obj.self, m, &rec, 1.0f / NPAIRS, &out, err, sizeof err);
        if (rc) fprintf(stderr, "%s\n", err);
        CHECK(rc == 0);
        loss += out.loss / NPAIRS;
        margin += out.metrics[margin_at] / NPAIRS;
    }
    float l = (float)loss, mg = (float)margin;
    snprintf(prefix, sizeof prefix, "%s/", name);
    fixture_compare(name, &l, fixture_get(prefix, "loss"), 1, 1e-4);
    fixture_compare(name, &mg, fixture_get(prefix, "margin"), 1, 1e-4);
    snprintf(prefix, sizeof prefix, "%s/grad/", name);
    for (int i = 0; i < m->n_tensors; i++)
        fixture_compare(m->tensors[i].name, m->grads + m->tensors[i].offset,
                        fixture_get(prefix, m->tensors[i].name), m->tensors[i].numel, 1e-4);
    obj.free(obj.self);
    kreader_close(r);
}

static void check_finite_differences(void) {
    float r[2] = {0.3f, -0.8f}, d[2];
    kreward_pair_loss(r, 0.05, d);
    for (int i = 0; i < 2; i++) {
        float keep = r[i], h = 1e-3f;
        r[i] = keep + h;
        double up = kreward_pair_loss(r, 0.05, NULL);
        r[i] = keep - h;
        double down = kreward_pair_loss(r, 0.05, NULL);
        r[i] = keep;
        CHECK_NEAR(d[i], (up - down) / (2 * h), 1e-3);
    }
    kdpo_opts o[3] = {
        {.beta = 0.1}, {.beta = 0.5, .label_smoothing = 0.2}, {.beta = 0.1, .ipo = true}};
    for (int k = 0; k < 3; k++) {
        double pi[2] = {-12.5, -14.25}, ref[2] = {-13.0, -13.5}, dd[2];
        kdpo_pair_loss(pi, ref, &o[k], dd);
        for (int i = 0; i < 2; i++) {
            double keep = pi[i], h = 1e-5;
            pi[i] = keep + h;
            double up = kdpo_pair_loss(pi, ref, &o[k], NULL);
            pi[i] = keep - h;
            double down = kdpo_pair_loss(pi, ref, &o[k], NULL);
            pi[i] = keep;
            CHECK_NEAR(dd[i], (up - down) / (2 * h), 1e-6);
        }
    }
}

int main(void) {
    kiln_set_prog("test_rlhf");
    check_finite_differences();
    if (!fixture_load("rlhf.bin")) {
        printf("no fixture rlhf.bin\n");
        return 77;
    }
    const float *c = fixture_get("", "config")->v;
    CHECK((int)c[5] == NPAIRS);
    kpool *pool = kpool_create(2);
    char path[] = "/tmp/kiln-test-rlhf-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);

    gpt *rm = model_from("rm/", c, GPT_HEAD_SCALAR, pool);
    check_case(rm, path, "bt", kreward_objective(&(kreward_opts){0}), 1);
    check_case(rm, path, "bt_center", kreward_objective(&(kreward_opts){.center = 0.01}), 1);
    gpt_free(rm);

    gpt *policy = model_from("policy/", c, GPT_HEAD_LM, pool);
    static const char *const cases[] = {"dpo", "dpo_ls", "ipo"};
    for (int k = 0; k < 3; k++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%s/", cases[k]);
        const float *dc = fixture_get(prefix, "config")->v;
        kdpo_opts o = {.beta = dc[0], .label_smoothing = dc[1], .ipo = dc[2] != 0};
        check_case(policy, path, cases[k], kdpo_objective(&o), 3);
    }
    gpt_free(policy);
    fprintf(stderr, "worst relative error %.3g\n", fixture_worst);
    unlink(path);
    kpool_free(pool);
    fixture_free();
    return check_report("test_rlhf");
}
