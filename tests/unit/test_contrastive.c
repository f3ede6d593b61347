/* test_contrastive — the contrastive objective (lib/run/contrastive.h) against a PyTorch
 * reimplementation of sentence-transformers' MultipleNegativesRankingLoss and its
 * symmetric variant (tests/torch_contrastive.py, committed as tests/fixtures/
 * contrastive.bin): loss, in-batch accuracy and every parameter gradient, through the
 * objective's own record path; plus the loss's gradient against finite differences. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/util.h"
#include "fixture.h"
#include "run/contrastive.h"

/* One pairs record in a temporary stream: anchors, positives and (K > 0) negatives. */
static kreader *pairs_stream(const char *path, const int32_t *x, const uint8_t *mask, int A, int K,
                             int T) {
    kwriter *w = kwriter_open(path, 1);
    kwriter_hdr_begin(w, NULL, "pairs", 0);
    kwriter_end(w);
    kwriter_begin(w, "pairs");
    const char *keys[3][2] = {
        {"anchor", "anchor_mask"}, {"positive", "positive_mask"}, {"negative", "negative_mask"}};
    int first[3] = {0, A, 2 * A}, n[3] = {A, A, K};
    for (int p = 0; p < (K ? 3 : 2); p++) {
        uint64_t shape[2] = {(uint64_t)n[p], (uint64_t)T};
        ktensor tx = ktensor_make(KT_I32, x + (size_t)first[p] * T, 2, shape);
        ktensor tm = ktensor_make(KT_U8, mask + (size_t)first[p] * T, 2, shape);
        kw_tensor(w, keys[p][0], &tx);
        kw_tensor(w, keys[p][1], &tm);
    }
    kwriter_end(w);
    kwriter_close(w, "ok");
    return kreader_open(path, 1);
}

static void check_case(gpt *m, const char *path, const char *name, kcontrastive_opts o, int K,
                       const int32_t *x, const uint8_t *mask, int A, int T) {
    kreader *r = pairs_stream(path, x, mask, A, K, T);
    krec rec;
    CHECK(kreader_next(r, &rec));
    kobjective obj = kcontrastive_objective(&o);
    kobj_out out = {0};
    char err[256], prefix[64];
    gpt_zero_grad(m);
    CHECK(obj.step(obj.self, m, &rec, 1.0f, &out, err, sizeof err) == 0);
    float loss = (float)out.loss, acc = (float)out.metrics[0];
    snprintf(prefix, sizeof prefix, "%s/", name);
    fixture_compare(name, &loss, fixture_get(prefix, "loss"), 1, 1e-4);
    CHECK_NEAR(acc, fixture_get(prefix, "accuracy")->v[0], 1e-6);
    snprintf(prefix, sizeof prefix, "%s/grad/", name);
    for (int i = 0; i < m->n_tensors; i++)
        fixture_compare(m->tensors[i].name, m->grads + m->tensors[i].offset,
                        fixture_get(prefix, m->tensors[i].name), m->tensors[i].numel, 1e-4);
    obj.free(obj.self);
    kreader_close(r);
}

/* d (the loss's gradient) against central differences, every `every`-th row entry. */
static void check_gradient(float *rows, int A, int NC, int C, const int64_t *group,
                           const kcontrastive_opts *o, const float *d, int every) {
    for (int i = 0; i < (A + NC) * C; i += every) {
        float keep = rows[i], h = 1e-3f;
        rows[i] = keep + h;
        double up = kcontrastive_loss(rows, A, NC, C, group, o, NULL, NULL);
        rows[i] = keep - h;
        double down = kcontrastive_loss(rows, A, NC, C, group, o, NULL, NULL);
        rows[i] = keep;
        CHECK_NEAR(d[i], (up - down) / (2 * h), 2e-3);
    }
}

/* The embedding-level loss against central differences. */
static void check_finite_differences(void) {
    enum { A = 3, NC = 5, C = 6 };
    float rows[(A + NC) * C], d[(A + NC) * C];
    for (int i = 0; i < (A + NC) * C; i++) rows[i] = (float)sin(i * 1.7) + 0.1f * (i % 5);
    kcontrastive_opts o = kcontrastive_defaults();
    o.symmetric = true;
    o.scale = 5;
    kcontrastive_loss(rows, A, NC, C, NULL, &o, d, NULL);
    check_gradient(rows, A, NC, C, NULL, &o, d, 3);
}

/* Groups: the loss written out term by term, with the same-group pairs left out of each
 * other's softmax (hard negatives never are), and its gradient against central differences. */
static double cosine(const float *a, const float *b, int C) {
    double ab = 0, aa = 0, bb = 0;
    for (int c = 0; c < C; c++) ab += a[c] * b[c], aa += a[c] * a[c], bb += b[c] * b[c];
    return ab / sqrt(aa * bb);
}

static void check_groups(bool positives) {
    enum { A = 4, NC = 5, C = 6 };
    const int64_t group[A] = {7, 7, 3, 7}; /* pairs 0, 1 and 3 are one class */
    float rows[(A + NC) * C], d[(A + NC) * C];
    for (int i = 0; i < (A + NC) * C; i++) rows[i] = (float)cos(i * 0.9) + 0.05f * (i % 7);
    kcontrastive_opts o = kcontrastive_defaults();
    o.symmetric = true;
    o.scale = 4;
    o.group_positives = positives;
    double want = 0;
    for (int i = 0; i < A; i++) {
        double sum = 0, back = 0, own = 0, own_back = 0;
        int npos = 0;
        for (int j = 0; j < NC; j++)
            if (positives || j == i || j >= A || group[j] != group[i])
                sum += exp(o.scale * cosine(rows + i * C, rows + (A + j) * C, C));
        for (int j = 0; j < A; j++) /* positive i picks its anchor among the others' */
            if (positives || j == i || group[j] != group[i])
                back += exp(o.scale * cosine(rows + j * C, rows + (A + i) * C, C));
        for (int j = 0; j < A; j++) /* SupCon: the mean over all of the group */
            if (j == i || (positives && group[j] == group[i])) {
                own += o.scale * cosine(rows + i * C, rows + (A + j) * C, C);
                own_back += o.scale * cosine(rows + j * C, rows + (A + i) * C, C);
                npos++;
            }
        want += 0.5 / A * ((log(sum) - own / npos) + (log(back) - own_back / npos));
    }
    double acc, got = kcontrastive_loss(rows, A, NC, C, group, &o, d, &acc);
    CHECK_NEAR(got, want, 1e-7);
    if (!positives) CHECK(got < kcontrastive_loss(rows, A, NC, C, NULL, &o, NULL, NULL));
    check_gradient(rows, A, NC, C, group, &o, d, 2);
}

int main(void) {
    kiln_set_prog("test_contrastive");
    check_finite_differences();
    check_groups(false);
    check_groups(true);
    if (!fixture_load("contrastive.bin")) {
        printf("no fixture contrastive.bin\n");
        return 77;
    }
    const float *c = fixture_get("", "config")->v;
    int A = (int)c[5], K = (int)c[6], T = (int)c[7], rows = 2 * A + K;
    gpt_config cfg = {(int)c[0], (int)c[1], (int)c[2], (int)c[3], (int)c[4], GPT_HEAD_LM};
    kpool *pool = kpool_create(2);
    gpt *m = gpt_create(&cfg, pool, 1);
    for (int i = 0; i < m->n_tensors; i++) {
        const fixture_entry *e = fixture_get("init/", m->tensors[i].name);
        CHECK(e && e->n == m->tensors[i].numel);
        if (e && e->n == m->tensors[i].numel)
            memcpy(m->params + m->tensors[i].offset, e->v, sizeof(float) * e->n);
    }
    int32_t x[64 * 16];
    uint8_t mask[64 * 16];
    CHECK(rows * T <= 64 * 16);
    for (int i = 0; i < rows * T; i++) {
        x[i] = (int32_t)fixture_get("", "x")->v[i];
        mask[i] = (uint8_t)fixture_get("", "mask")->v[i];
    }
    char path[] = "/tmp/kiln-test-contrastive-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    kcontrastive_opts o = kcontrastive_defaults();
    o.scale = c[8];
    check_case(m, path, "mean", o, K, x, mask, A, T);
    o.symmetric = true;
    check_case(m, path, "sym", o, K, x, mask, A, T);
    o.symmetric = false;
    o.pool = GPT_POOL_LAST;
    check_case(m, path, "last", o, 0, x, mask, A, T);
    fprintf(stderr, "worst relative error %.3g\n", fixture_worst);
    unlink(path);
    gpt_free(m);
    kpool_free(pool);
    fixture_free();
    return check_report("test_contrastive");
}
