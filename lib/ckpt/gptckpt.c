/* gptckpt — checkpoint file -> model (and optimizer) state. */
#include "ckpt/gptckpt.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"

void gpt_config_from_ckpt(const kckpt *ck, gpt_config *cfg) {
    const char *keys[] = {"n_layer", "n_embd", "n_head", "n_ctx", "vocab"};
    int *dst[] = {&cfg->n_layer, &cfg->n_embd, &cfg->n_head, &cfg->n_ctx, &cfg->vocab};
    uint64_t v;
    for (int i = 0; i < 5; i++)
        if (kckpt_config_u64(ck, keys[i], &v)) {
            if (v > (1u << 24))
                kiln_die(EX_KILN_DATA, "%s: config %s is too large", ck->path, keys[i]);
            *dst[i] = (int)v;
        }
    const jval *head = json_get(ck->config, "head");
    if (head && head->type == JSON_STR)
        cfg->head = strcmp(head->s, "scalar") ? GPT_HEAD_LM : GPT_HEAD_SCALAR;
}

/* Tensor t's values from ck into dst, its shape checked (a transposed [in,out] tensor has
 * the right count but the wrong meaning); false when ck lacks it. */
static bool copy_tensor(const kckpt *ck, const ktensor *kt, const gpt_tensor *t, float *dst) {
    if (!kt) return false;
    bool same = kt->dtype == KT_F32 && kt->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = kt->shape[d] == t->shape[d];
    if (!same) {
        char want[64];
        if (t->ndim == 2)
            snprintf(want, sizeof want, "[%llu, %llu]", (unsigned long long)t->shape[0],
                     (unsigned long long)t->shape[1]);
        else
            snprintf(want, sizeof want, "[%llu]", (unsigned long long)t->shape[0]);
        kiln_die(EX_KILN_DATA, "%s: %s is not F32 of shape %s as the model needs", ck->path,
                 t->name, want);
    }
    ktensor_copy(kt, dst);
    return true;
}

void gpt_load_ckpt(gpt *m, const kckpt *ck, adamw *opt) {
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        if (!copy_tensor(ck, kckpt_tensor(ck, t->name), t, m->params + t->offset) &&
            strcmp(t->name, "score.weight"))
            kiln_die(EX_KILN_DATA, "%s: no tensor %s", ck->path, t->name);
        if (opt && ck->optim) {
            copy_tensor(ck, kckpt_m(ck, t->name), t, opt->m + t->offset);
            copy_tensor(ck, kckpt_v(ck, t->name), t, opt->v + t->offset);
        }
    }
    if (opt && ck->optim) opt->step = ck->optim_step;
}
