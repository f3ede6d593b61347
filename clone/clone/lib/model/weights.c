/* weights — whole-model weight operations: a hash of the weights, a copy with more
 * vocabulary rows. */
#include "model/weights.h"

#include <stdio.h>
#include <string.h>

/* ---- the hash that names a model's weights
 * ---------------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void gpt_weights_hash(const gpt *m, char *out, size_t outsz) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        /* A scalar head is not part of a base: a reward model or PPO's value head grows a
         * fresh one on a language model, and its adapter carries it (lib/ckpt/adapter.h). */
        if (!strcmp(t->name, "score.weight")) continue;
        h = fnv1a(h, t->name, strlen(t->name) + 1);                    /* with its NUL */
        h = fnv1a(h, m->params + t->offset, t->numel * sizeof(float)); /* little-endian hosts */
    }
    snprintf(out, outsz, "fnv1a64:%016llx", (unsigned long long)h);
}

gpt *gpt_grow_vocab(const gpt *base, int n_add, const int *rows, const int mean[2]) {
    gpt_config cfg = base->cfg;
    int V = cfg.vocab, C = cfg.n_embd;
    cfg.vocab += n_add;
    gpt *m = gpt_create(&cfg, base->pool, 0);
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        int j = gpt_find_tensor(base, t->name);
        if (j < 0) continue; /* a new head keeps its initialisation */
        const gpt_tensor *s = &base->tensors[j];
        size_t numel = s->numel < t->numel ? s->numel : t->numel;
        memcpy(m->params + t->offset, base->params + s->offset, numel * sizeof(float));
    }
    for (int k = 0; k < n_add; k++) {
        float *row = m->p.wte + (size_t)(V + k) * C;
        if (rows[k] >= 0) {
            memcpy(row, base->p.wte + (size_t)rows[k] * C, sizeof(float) * C);
            continue;
        }
        double acc[C];
        memset(acc, 0, sizeof acc);
        for (int r = mean[0]; r < mean[1]; r++)
            for (int c = 0; c < C; c++) acc[c] += base->p.wte[(size_t)r * C + c];
        for (int c = 0; c < C; c++) row[c] = (float)(acc[c] / (mean[1] - mean[0]));
    }
    return m;
}

gpt *gpt_with_head(const gpt *base, gpt_head head) {
    gpt_config cfg = base->cfg;
    cfg.head = head;
    gpt *m = gpt_create(&cfg, base->pool, 0);
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        int j = gpt_find_tensor(base, t->name);
        if (j >= 0)
            memcpy(m->params + t->offset, base->params + base->tensors[j].offset,
                   t->numel * sizeof(float));
    }
    return m;
}
