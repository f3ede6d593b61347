/* test_finetune — freezing and LoRA inside the model core.
 *
 * Freezing: the gradients of the tensors that still train are bit-identical to those of
 * full backward (frozen ones cost nothing but must not change the others), and AdamW over
 * the trainable list leaves frozen tensors bit-identical.  LoRA: the model with adapters
 * gives the same logits as the merged model (within 1e-5), the adapters' gradients
 * through the whole model match central differences, and a fresh adapter (B = 0) leaves
 * the logits exactly unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "run/finetune.h"
#include "model/gpt.h"
#include "model/lora.h"
#include "model/optim.h"

enum { B = 2, T = 9 };
static int32_t xs[B * T], ys[B * T];

static double frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 65536.0 - 0.5;
}

static gpt *model(kpool *pool) {
    gpt_config g = {.n_layer = 3, .n_embd = 16, .n_head = 2, .n_ctx = 16, .vocab = 13};
    gpt *m = gpt_create(&g, pool, 5);
    return m;
}

static void test_freeze(kpool *pool) {
    const char *specs[] = {"embeddings,blocks:0", "all-but-head", "blocks:1-2,ln_f",
                           "embeddings,blocks:0-2"};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        gpt *m = model(pool);
        gpt_zero_grad(m);
        gpt_forward(m, xs, ys, NULL, B, T);
        gpt_backward(m, 1.0f);
        float *full = malloc(sizeof(float) * m->n_params);
        memcpy(full, m->grads, sizeof(float) * m->n_params);
        bool *fr = calloc((size_t)m->n_tensors, sizeof(bool));
        char err[256];
        CHECK(ft_freeze_parse(m, specs[s], fr, err, sizeof err));
        m->frozen = fr;
        gpt_zero_grad(m);
        gpt_forward(m, xs, ys, NULL, B, T);
        gpt_backward(m, 1.0f);
        int same = 0, trained = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const gpt_tensor *t = &m->tensors[i];
            if (fr[i]) continue;
            trained++;
            same += !memcmp(full + t->offset, m->grads + t->offset, sizeof(float) * t->numel);
        }
        CHECK(trained > 0 && same == trained);
        /* a few AdamW steps over the list: frozen tensors do not move */
        float *before = malloc(sizeof(float) * m->n_params);
        memcpy(before, m->params, sizeof(float) * m->n_params);
        int n;
        size_t total;
        kparam *ps = ft_params(m, fr, NULL, &n, &total);
        adamw *o = adamw_create(total);
        for (int step = 0; step < 3; step++) {
            gpt_zero_grad(m);
            gpt_forward(m, xs, ys, NULL, B, T);
            gpt_backward(m, 1.0f);
            adamw_update_params(o, pool, ps, n, 1e-2, params_grad_norm(pool, ps, n));
        }
        int kept = 0, frozen = 0, moved = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const gpt_tensor *t = &m->tensors[i];
            bool same_t =
                !memcmp(before + t->offset, m->params + t->offset, sizeof(float) * t->numel);
            if (fr[i])
                frozen++, kept += same_t;
            else
                moved += !same_t;
        }
        CHECK(kept == frozen && moved == trained);
        adamw_free(o);
        free(ps), free(before), free(full), free(fr);
        gpt_free(m);
    }
}

static void logits_of(gpt *m, float *out) {
    gpt_forward(m, xs, NULL, NULL, B, T);
    memcpy(out, gpt_logits(m), sizeof(float) * B * T * m->cfg.vocab);
}

static void test_lora(kpool *pool) {
    gpt *m = model(pool);
    size_t nl = (size_t)B * T * m->cfg.vocab;
    float *base = malloc(nl * sizeof(float)), *with = malloc(nl * sizeof(float)),
          *merged = malloc(nl * sizeof(float));
    logits_of(m, base);
    lora_config c = {.r = 4, .alpha = 8, .targets = 15};
    lora *a = lora_create(&c, &m->cfg, 3);
    m->lora = a;
    logits_of(m, with);
    CHECK(!memcmp(base, with, nl * sizeof(float))); /* B = 0: exactly the base */
    unsigned s = 11;
    for (int i = 1; i < a->n_tensors; i += 2) { /* give every B a value */
        const gpt_tensor *t = &a->tensors[i];
        for (size_t k = 0; k < t->numel; k++) a->params[t->offset + k] = (float)frand(&s) * 0.2f;
    }
    logits_of(m, with);
    double diff = 0;
    for (size_t i = 0; i < nl; i++) diff = fmax(diff, fabs(with[i] - base[i]));
    CHECK(diff > 1e-3); /* the adapters do something */
    /* gradients of the adapters through the model, against central differences */
    bool *fr = malloc((size_t)m->n_tensors * sizeof(bool));
    for (int i = 0; i < m->n_tensors; i++) fr[i] = true;
    m->frozen = fr;
    gpt_zero_grad(m);
    gpt_forward(m, xs, ys, NULL, B, T);
    gpt_backward(m, 1.0f);
    double worst = 0, eps = 1e-2;
    for (int i = 0; i < a->n_tensors; i++) {
        const gpt_tensor *t = &a->tensors[i];
        for (size_t k = 0; k < t->numel; k += t->numel / 3 + 1) {
            float *p = a->params + t->offset + k, keep = *p;
            *p = keep + (float)eps;
            double lp = gpt_forward(m, xs, ys, NULL, B, T);
            *p = keep - (float)eps;
            double lm = gpt_forward(m, xs, ys, NULL, B, T);
            *p = keep;
            double num = (lp - lm) / (2 * eps), ana = a->grads[t->offset + k];
            worst = fmax(worst, fabs(num - ana) / fmax(1e-2, fabs(num)));
        }
    }
    CHECK(worst < 5e-2);
    if (worst >= 5e-2) fprintf(stderr, "lora gradient: worst relative error %g\n", worst);
    /* merged model == base + adapters */
    logits_of(m, with);
    m->lora = NULL;
    m->frozen = NULL;
    lora_merge(a, m);
    logits_of(m, merged);
    diff = 0;
    for (size_t i = 0; i < nl; i++) diff = fmax(diff, fabs(with[i] - merged[i]));
    CHECK(diff < 1e-5);
    lora_free(a);
    free(fr), free(base), free(with), free(merged);
    gpt_free(m);
}

int main(void) {
    unsigned s = 1;
    for (int i = 0; i < B * T; i++) {
        xs[i] = (int32_t)((frand(&s) + 0.5) * 13) % 13;
        ys[i] = (int32_t)((frand(&s) + 0.5) * 13) % 13;
    }
    kpool *pool = kpool_create(2);
    test_freeze(pool);
    test_lora(pool);
    kpool_free(pool);
    return check_report("finetune");
}
