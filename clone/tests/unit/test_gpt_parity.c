/* test_gpt_parity — the C model against PyTorch: loss, logits, every gradient, per-token
 * log-probabilities and entropies, sequence log-probabilities, every gradient of a weighted
 * sum of log-probabilities, the scalar head, and every parameter after 3 AdamW steps, from the same
 * initial weights and batch. The reference values come from tests/torch_parity.py (float64
 * PyTorch), committed as tests/fixtures/gpt_parity.bin, so this test needs no torch.  Error measure
 * per tensor: max |kiln - torch| / max |torch|, which must be <= 1e-4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "model/gpt.h"
#include "model/optim.h"

typedef fixture_entry entry;
#define get fixture_get
#define worst fixture_worst

/* max |a - ref| / max |ref| over n values must be <= 1e-4. */
static void compare(const char *what, const float *a, const entry *ref, size_t n) {
    fixture_compare(what, a, ref, n, 1e-4);
}

/* Parameters after the AdamW steps: elements listed in "flat/NAME" (a gradient below 1e-4 of
 * the tensor's largest in some step, where rounding noise can flip Adam's step) may differ by
 * up to two full steps; every other element as compare(). */
static void compare_stepped(const gpt *m, double lr, int steps) {
    int flat_total = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        const entry *ref = get("step3/", t->name), *flat = get("flat/", t->name);
        if (!ref || !flat || ref->n != t->numel) continue;
        const float *a = m->params + t->offset;
        char *skip = calloc(t->numel, 1);
        for (uint32_t k = 0; k < flat->n; k++) skip[(size_t)flat->v[k]] = 1;
        double diff = 0, scale = 1e-12;
        for (size_t k = 0; k < t->numel; k++) {
            scale = fmax(scale, fabs((double)ref->v[k]));
            if (skip[k])
                CHECK(fabs((double)a[k] - ref->v[k]) <= 2 * lr * steps);
            else
                diff = fmax(diff, fabs((double)a[k] - ref->v[k]));
        }
        double rel = diff / scale;
        worst = fmax(worst, rel);
        if (rel > 1e-4) fprintf(stderr, "step3/%s: relative error %.3g\n", t->name, rel);
        CHECK(rel <= 1e-4);
        flat_total += (int)flat->n;
        free(skip);
    }
    fprintf(stderr, "%d flat elements checked against the step size\n", flat_total);
}

static void compare_params(const gpt *m, const float *buf, const char *prefix) {
    for (int i = 0; i < m->n_tensors; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s%s", prefix, m->tensors[i].name);
        compare(what, buf + m->tensors[i].offset, get(prefix, m->tensors[i].name),
                m->tensors[i].numel);
    }
}

int main(void) {
    if (!fixture_load("gpt_parity.bin")) {
        printf("no fixture tests/fixtures/gpt_parity.bin\n");
        return 77;
    }
    const float *c = get("", "config")->v;
    int B = (int)c[5], T = (int)c[6], N = B * T;
    double lr = c[7];
    int warmup = (int)c[8], steps = (int)c[9];
    gpt_config cfg = {(int)c[0], (int)c[1], (int)c[2], (int)c[3], (int)c[4], GPT_HEAD_SCALAR};
    kpool *pool = kpool_create(2);
    gpt *m = gpt_create(&cfg, pool, 1);
    for (int i = 0; i < m->n_tensors; i++) {
        const entry *e = get("init/", m->tensors[i].name);
        CHECK(e && e->n == m->tensors[i].numel);
        if (e && e->n == m->tensors[i].numel)
            memcpy(m->params + m->tensors[i].offset, e->v, sizeof(float) * e->n);
    }
    int32_t *x = malloc(sizeof(int32_t) * N), *y = malloc(sizeof(int32_t) * N);
    uint8_t *mask = malloc((size_t)N);
    for (int i = 0; i < N; i++) {
        x[i] = (int32_t)get("", "x")->v[i];
        y[i] = (int32_t)get("", "y")->v[i];
        mask[i] = (uint8_t)get("", "mask")->v[i];
    }

    /* LM: loss, logits, gradients */
    gpt_zero_grad(m);
    float loss = gpt_forward(m, x, y, mask, B, T);
    compare("loss", &loss, get("", "loss"), 1);
    compare("logits", gpt_logits(m), get("", "logits"), (size_t)N * cfg.vocab);
    gpt_backward(m, 1.0f);
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, "score.weight"))
            compare(m->tensors[i].name, m->grads + m->tensors[i].offset,
                    get("grad/", m->tensors[i].name), m->tensors[i].numel);

    /* per-token log-probabilities and entropies, sequence sums, a weighted backward */
    gpt_zero_grad(m);
    gpt_forward(m, x, y, mask, B, T);
    float *logp = malloc(sizeof(float) * N), *entropy = malloc(sizeof(float) * N), seq[8];
    gpt_token_logprobs(m, logp, entropy);
    compare("logp", logp, get("", "logp"), (size_t)N);
    compare("entropy", entropy, get("", "entropy"), (size_t)N);
    gpt_seq_logprobs(m, seq);
    compare("seq_logp", seq, get("", "seq_logp"), (size_t)B);
    gpt_backward_weighted(m, get("", "logp_weights")->v);
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, "score.weight")) {
            char what[128];
            snprintf(what, sizeof what, "wgrad/%s", m->tensors[i].name);
            compare(what, m->grads + m->tensors[i].offset, get("wgrad/", m->tensors[i].name),
                    m->tensors[i].numel);
        }
    fprintf(stderr, "worst relative error through the weighted backward %.3g\n", worst);
    free(logp);
    free(entropy);

    /* scalar head at the last counted position */
    gpt_zero_grad(m);
    gpt_forward_hidden(m, x, B, T);
    float values[8];
    gpt_scalar(m, mask, GPT_POOL_LAST, values);
    compare("values", values, get("", "values"), (size_t)B);
    gpt_scalar_backward(m, get("", "value_weights")->v);
    compare_params(m, m->grads, "sgrad/");

    /* 3 AdamW steps */
    adamw *opt = adamw_create(m->n_params);
    float norms[16];
    for (int s = 0; s < steps; s++) {
        gpt_zero_grad(m);
        gpt_forward(m, x, y, mask, B, T);
        gpt_backward(m, 1.0f);
        double norm = grad_global_norm(pool, m->grads, m->n_params);
        norms[s] = (float)norm;
        adamw_update(opt, pool, m->params, m->grads, m->tensors, m->n_tensors,
                     lr_at((uint64_t)s, lr, (uint64_t)warmup, (uint64_t)steps), norm);
    }
    compare("grad_norms", norms, get("", "grad_norms"), (size_t)steps);
    compare_stepped(m, lr, steps);
    fprintf(stderr, "worst relative error %.3g\n", worst);

    adamw_free(opt);
    gpt_free(m);
    kpool_free(pool);
    free(x);
    free(y);
    free(mask);
    fixture_free();
    return check_report("gpt_parity");
}
