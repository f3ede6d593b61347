/* test_lora — LoRA adapters and the fine-tuning helpers.
 *
 * Option parsing (good and bad specs), the adapter forward against a plain float64
 * product, its backward against central differences (with and without dropout, whose mask
 * backward must regenerate), merge (x W' == x W + adapter), freeze specs (including names
 * that match nothing), the compact trainable list, the base hash, --add-class checks and
 * vocabulary growth. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "run/finetune.h"
#include "model/weights.h"
#include "model/lora.h"
#include "model/pool.h"

static double frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 65536.0 - 0.5;
}

static void test_parse(void) {
    lora_config c;
    char err[256];
    CHECK(lora_parse("r=4,alpha=8,targets=qkv,proj,fc,fcproj,dropout=0.05", &c, err, sizeof err));
    CHECK(c.r == 4 && c.alpha == 8.0f && fabsf(c.dropout - 0.05f) < 1e-7f);
    CHECK(c.targets == 15);
    CHECK(lora_parse("r=2", &c, err, sizeof err));
    CHECK(c.r == 2 && c.alpha == 4.0f && c.targets == 3 && c.dropout == 0.0f);
    CHECK(lora_parse("targets=all,r=16", &c, err, sizeof err) && c.targets == 15 && c.r == 16);
    CHECK(lora_parse("targets=fc", &c, err, sizeof err) && c.targets == 4);
    const char *bad[] = {"r=0",    "r=x", "alpha=-1", "dropout=1", "targets=q", "targets=qkv,bogus",
                         "rank=4", "fc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(!lora_parse(bad[i], &c, err, sizeof err));
        CHECK(err[0] != 0);
    }
    char s[32];
    lora_targets_str(5, s, sizeof s);
    CHECK(!strcmp(s, "qkv,fc"));
}

/* loss = sum(w * y) for y = lora(x) over layer 1's target t; returns it in double. */
static double lora_loss(lora *a, kpool *pool, lora_target t, const float *x, const float *w, int N,
                        int out) {
    float *y = calloc((size_t)N * 4 * a->n_embd, sizeof(float)); /* the widest output */
    lora_forward(a, pool, 0, LORA_QKV, x, y, N);                 /* pass counter: layer 0 first */
    memset(y, 0, sizeof(float) * (size_t)N * out);
    lora_forward(a, pool, 1, t, x, y, N);
    double s = 0;
    for (int i = 0; i < N * out; i++) s += (double)w[i] * y[i];
    free(y);
    return s;
}

static void test_forward_backward(kpool *pool, float dropout) {
    gpt_config g = {.n_layer = 2, .n_embd = 8, .n_head = 2, .n_ctx = 8, .vocab = 11};
    lora_config c = {.r = 3, .alpha = 6, .dropout = dropout, .targets = 15};
    lora *a = lora_create(&c, &g, 7);
    a->training = true;
    CHECK(a->n_tensors == 2 * 4 * 2);
    CHECK(lora_find_tensor(a, "base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight") >= 0);
    unsigned s = 3;
    /* B starts at zero: a fresh adapter adds nothing.  Make it nonzero to test. */
    for (size_t i = 0; i < a->n_params; i++)
        if (a->params[i] == 0.0f) a->params[i] = (float)frand(&s) * 0.5f;
    for (int t = 0; t < LORA_N_TARGETS; t++) {
        int in, out, N = 5;
        lora_dims(t, g.n_embd, &in, &out);
        float *x = malloc(sizeof(float) * N * in), *w = malloc(sizeof(float) * N * out);
        float *dx = calloc((size_t)N * in, sizeof(float));
        for (int i = 0; i < N * in; i++) x[i] = (float)frand(&s);
        for (int i = 0; i < N * out; i++) w[i] = (float)frand(&s);
        /* forward against float64, without dropout */
        if (dropout == 0) {
            float *y = calloc((size_t)N * out, sizeof(float));
            lora_forward(a, pool, 1, t, x, y, N);
            char name[96];
            static const char *mods[] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
            snprintf(name, sizeof name, "base_model.model.transformer.h.1.%s.lora_A.weight",
                     mods[t]);
            const float *A = a->params + a->tensors[lora_find_tensor(a, name)].offset;
            const float *B = A + 3 * in;
            double maxerr = 0;
            for (int n = 0; n < N; n++)
                for (int o = 0; o < out; o++) {
                    double v = 0;
                    for (int k = 0; k < 3; k++) {
                        double xa = 0;
                        for (int i = 0; i < in; i++) xa += (double)x[n * in + i] * A[k * in + i];
                        v += xa * B[o * 3 + k];
                    }
                    v *= 2.0; /* alpha / r */
                    double e = fabs(v - y[n * out + o]);
                    if (e > maxerr) maxerr = e;
                }
            CHECK(maxerr < 1e-5);
            free(y);
        }
        /* backward against central differences (the same dropout mask each pass: the
         * pass counter is reset so every forward draws pass 1's mask) */
        memset(a->grads, 0, sizeof(float) * a->n_params);
        a->pass = 0;
        lora_loss(a, pool, t, x, w, N, out);
        lora_backward(a, pool, 1, t, x, w, dx, N);
        double eps = 1e-2, worst = 0;
        for (int i = 0; i < a->n_tensors; i++) {
            const gpt_tensor *T = &a->tensors[i];
            if (!strstr(T->name, ".h.1.")) continue;
            for (size_t k = 0; k < T->numel; k += 3) {
                float *p = a->params + T->offset + k, keep = *p;
                *p = keep + (float)eps, a->pass = 0;
                double lp = lora_loss(a, pool, t, x, w, N, out);
                *p = keep - (float)eps, a->pass = 0;
                double lm = lora_loss(a, pool, t, x, w, N, out);
                *p = keep;
                double num = (lp - lm) / (2 * eps), ana = a->grads[T->offset + k];
                double e = fabs(num - ana) / fmax(1.0, fabs(num));
                if (e > worst) worst = e;
            }
        }
        CHECK(worst < 2e-3);
        worst = 0;
        for (int i = 0; i < N * in; i += 2) {
            float keep = x[i];
            x[i] = keep + (float)eps, a->pass = 0;
            double lp = lora_loss(a, pool, t, x, w, N, out);
            x[i] = keep - (float)eps, a->pass = 0;
            double lm = lora_loss(a, pool, t, x, w, N, out);
            x[i] = keep;
            double e = fabs((lp - lm) / (2 * eps) - dx[i]);
            if (e > worst) worst = e;
        }
        CHECK(worst < 2e-3);
        free(x), free(w), free(dx);
    }
    lora_free(a);
}

static void test_merge(kpool *pool) {
    gpt_config g = {.n_layer = 2, .n_embd = 8, .n_head = 2, .n_ctx = 8, .vocab = 11};
    lora_config c = {.r = 2, .alpha = 3, .targets = 15};
    gpt *m = gpt_create(&g, pool, 1);
    lora *a = lora_create(&c, &g, 2);
    unsigned s = 9;
    for (size_t i = 0; i < a->n_params; i++) a->params[i] = (float)frand(&s);
    int N = 4, C = 8;
    float x[4 * 32], y0[4 * 32], y1[4 * 32];
    for (int i = 0; i < 4 * 32; i++) x[i] = (float)frand(&s);
    /* layer 1 fc: x W + adapter, then merged W' */
    const float *W = m->p.fcw + (size_t)C * 4 * C;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < 4 * C; o++) {
            double v = 0;
            for (int i = 0; i < C; i++) v += (double)x[n * C + i] * W[i * 4 * C + o];
            y0[n * 4 * C + o] = (float)v;
        }
    lora_forward(a, pool, 1, LORA_FC, x, y0, N);
    lora_merge(a, m);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < 4 * C; o++) {
            double v = 0;
            for (int i = 0; i < C; i++) v += (double)x[n * C + i] * W[i * 4 * C + o];
            y1[n * 4 * C + o] = (float)v;
        }
    double worst = 0;
    for (int i = 0; i < N * 4 * C; i++) worst = fmax(worst, fabs(y0[i] - y1[i]));
    CHECK(worst < 1e-5);
    lora_free(a);
    gpt_free(m);
}

static void test_freeze(kpool *pool) {
    gpt_config g = {.n_layer = 3, .n_embd = 8, .n_head = 2, .n_ctx = 8, .vocab = 11};
    gpt *m = gpt_create(&g, pool, 1);
    bool *fr = calloc((size_t)m->n_tensors, sizeof(bool));
    char err[512];
    int n;
    size_t total;
    CHECK(ft_freeze_parse(m, "embeddings,blocks:0-1", fr, err, sizeof err));
    CHECK(fr[gpt_find_tensor(m, "transformer.wte.weight")]);
    CHECK(fr[gpt_find_tensor(m, "transformer.wpe.weight")]);
    CHECK(fr[gpt_find_tensor(m, "transformer.h.1.mlp.c_proj.bias")]);
    CHECK(!fr[gpt_find_tensor(m, "transformer.h.2.ln_1.weight")]);
    CHECK(!fr[gpt_find_tensor(m, "transformer.ln_f.bias")]);
    kparam *ps = ft_params(m, fr, NULL, &n, &total);
    CHECK(n == 12 + 2); /* block 2's 12 tensors and ln_f's two */
    size_t want = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (!fr[i]) want += m->tensors[i].numel;
    CHECK(total == want && ps[n - 1].moff + ps[n - 1].numel == total);
    free(ps);
    CHECK(ft_freeze_parse(m, "all-but-head", fr, err, sizeof err));
    CHECK(!fr[gpt_find_tensor(m, "transformer.wte.weight")]);
    CHECK(fr[gpt_find_tensor(m, "transformer.wpe.weight")]);
    CHECK(!fr[gpt_find_tensor(m, "transformer.ln_f.weight")]);
    CHECK(fr[gpt_find_tensor(m, "transformer.h.0.attn.c_attn.weight")]);
    CHECK(ft_freeze_parse(m, "transformer.h.2.mlp", fr, err, sizeof err));
    CHECK(fr[gpt_find_tensor(m, "transformer.h.2.mlp.c_fc.weight")]);
    CHECK(!fr[gpt_find_tensor(m, "transformer.h.2.ln_2.weight")]);
    CHECK(ft_freeze_parse(m, "blocks:2", fr, err, sizeof err));
    const char *bad[] = {"blocks:0-3",      "blocks:7",           "blocks:x", "blocks:2-1",
                         "transformer.h.9", "transformer.h.1.ml", "heads",    "",
                         "wte,,wpe"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(!ft_freeze_parse(m, bad[i], fr, err, sizeof err));
        CHECK(err[0] != 0);
    }
    CHECK(!ft_freeze_parse(m, "blocks:0-3", fr, err, sizeof err) && strstr(err, "blocks 0-2"));
    /* LoRA: every base tensor frozen, the list holds just the adapters */
    lora_config c = {.r = 2, .alpha = 4, .targets = 3};
    lora *a = lora_create(&c, &g, 1);
    for (int i = 0; i < m->n_tensors; i++) fr[i] = true;
    ps = ft_params(m, fr, a, &n, &total);
    CHECK(n == a->n_tensors && total == a->n_params);
    free(ps);
    lora_free(a);
    /* hash: stable, and any change of a weight changes it */
    char h1[32], h2[32], h3[32];
    gpt_weights_hash(m, h1, sizeof h1);
    gpt_weights_hash(m, h2, sizeof h2);
    CHECK(!strcmp(h1, h2) && !strncmp(h1, "fnv1a64:", 8) && strlen(h1) == 24);
    m->p.fcprojb[3] += 1e-7f;
    gpt_weights_hash(m, h3, sizeof h3);
    CHECK(strcmp(h1, h3) != 0);
    free(fr);
    gpt_free(m);
}

static void test_add_class(kpool *pool) {
    const char *text = "{\"kind\":\"levels\",\"levels\":4,\"vocab\":9,\"bos\":4,\"eos\":5,"
                       "\"pad\":6,\"class_base\":7,\"classes\":[\"cat\",\"dog\"]}";
    char err[512];
    jval *tok = json_parse(text, strlen(text), 0, err, sizeof err);
    CHECK(tok != NULL);
    ktokenizer st;
    ktok_init_levels(&st, 4);
    char **names = malloc(3 * sizeof(char *));
    names[0] = strdup("cat"), names[1] = strdup("dog"), names[2] = strdup("lion");
    ktok_set_classes(&st, names, 3);
    ft_new_class add;
    int rows[1], mean[2];
    CHECK(ft_new_class_parse("lion=cat", &add, err, sizeof err));
    CHECK(!strcmp(add.name, "lion") && add.has_from && !strcmp(add.from, "cat"));
    CHECK(!ft_new_class_parse("=cat", &add, err, sizeof err));
    CHECK(!ft_new_class_parse("lion=", &add, err, sizeof err));
    ft_new_class_parse("lion=cat", &add, err, sizeof err);
    CHECK(ft_check_tokenizer(tok, &st, &add, 1, rows, mean, err, sizeof err));
    CHECK(rows[0] == 7 && mean[0] == 7 && mean[1] == 9);
    ft_new_class_parse("lion", &add, err, sizeof err);
    CHECK(ft_check_tokenizer(tok, &st, &add, 1, rows, mean, err, sizeof err) && rows[0] == -1);
    ft_new_class_parse("cat", &add, err, sizeof err);
    CHECK(!ft_check_tokenizer(tok, &st, &add, 1, rows, mean, err, sizeof err));
    CHECK(strstr(err, "already has class 'cat'") != NULL);
    ft_new_class_parse("lion=tiger", &add, err, sizeof err);
    CHECK(!ft_check_tokenizer(tok, &st, &add, 1, rows, mean, err, sizeof err));
    CHECK(strstr(err, "no class 'tiger'") != NULL);
    /* without --add-class the stream's extra class is a mismatch */
    CHECK(!ft_check_tokenizer(tok, &st, NULL, 0, rows, mean, err, sizeof err));
    CHECK(strstr(err, "not the checkpoint's") != NULL);
    ktokenizer other;
    ktok_init_levels(&other, 8);
    CHECK(!ft_check_tokenizer(tok, &other, NULL, 0, rows, mean, err, sizeof err));
    ktok_free(&other);
    ktok_free(&st);
    json_free(tok);

    gpt_config g = {.n_layer = 1, .n_embd = 8, .n_head = 2, .n_ctx = 8, .vocab = 9};
    gpt *base = gpt_create(&g, pool, 3);
    int r2[2] = {7, -1}, mn[2] = {7, 9};
    gpt *m = gpt_grow_vocab(base, 2, r2, mn);
    CHECK(m->cfg.vocab == 11);
    CHECK(!memcmp(m->p.wte, base->p.wte, sizeof(float) * 9 * 8));
    CHECK(!memcmp(m->p.wte + 9 * 8, base->p.wte + 7 * 8, sizeof(float) * 8));
    CHECK_NEAR(m->p.wte[10 * 8 + 3], 0.5 * (base->p.wte[7 * 8 + 3] + base->p.wte[8 * 8 + 3]), 1e-6);
    CHECK(!memcmp(m->p.fcw, base->p.fcw, sizeof(float) * 8 * 32));
    gpt_free(m);
    gpt_free(base);
}

/* AdamW over the list of every tensor is the flat AdamW, bit for bit. */
static void test_list_optimizer(kpool *pool) {
    gpt_config g = {.n_layer = 2, .n_embd = 8, .n_head = 2, .n_ctx = 8, .vocab = 11};
    gpt *m = gpt_create(&g, pool, 4);
    unsigned s = 5;
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = (float)frand(&s);
    float *p0 = malloc(sizeof(float) * m->n_params);
    memcpy(p0, m->params, sizeof(float) * m->n_params);
    adamw *flat = adamw_create(m->n_params);
    for (int k = 0; k < 3; k++)
        adamw_update(flat, pool, m->params, m->grads, m->tensors, m->n_tensors, 1e-2,
                     grad_global_norm(pool, m->grads, m->n_params));
    float *p1 = malloc(sizeof(float) * m->n_params);
    memcpy(p1, m->params, sizeof(float) * m->n_params);
    memcpy(m->params, p0, sizeof(float) * m->n_params);
    int n;
    size_t total;
    kparam *ps = ft_params(m, NULL, NULL, &n, &total);
    CHECK(total == m->n_params && n == m->n_tensors);
    adamw *list = adamw_create(total);
    double norm = grad_global_norm(pool, m->grads, m->n_params);
    CHECK_NEAR(params_grad_norm(pool, ps, n), norm, 1e-6);
    for (int k = 0; k < 3; k++) adamw_update_params(list, pool, ps, n, 1e-2, norm);
    CHECK(!memcmp(p1, m->params, sizeof(float) * m->n_params));
    CHECK(!memcmp(flat->m, list->m, sizeof(float) * total));
    CHECK(params_first_nonfinite(ps, n) == -1);
    m->grads[ps[3].moff + 1] = NAN;
    CHECK(params_first_nonfinite(ps, n) == 3);
    adamw_free(flat), adamw_free(list);
    free(ps), free(p0), free(p1);
    gpt_free(m);
}

int main(void) {
    kpool *pool = kpool_create(2);
    test_parse();
    test_forward_backward(pool, 0.0f);
    test_forward_backward(pool, 0.3f);
    test_merge(pool);
    test_freeze(pool);
    test_add_class(pool);
    test_list_optimizer(pool);
    kpool_free(pool);
    return check_report("lora");
}
