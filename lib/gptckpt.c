/* gptckpt — checkpoint file -> model (and optimizer) state. */
#include "gptckpt.h"

#include <string.h>

#include "util.h"

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

/* A tensor of numel F32 values from ck into dst; false when ck lacks it. */
static bool copy_tensor(const kckpt *ck, const ktensor *kt, const char *name, size_t numel,
                        float *dst) {
    uint64_t n;
    if (!kt) return false;
    if (kt->dtype != KT_F32 || !ktensor_numel(kt, &n) || n != numel)
        kiln_die(EX_KILN_DATA, "%s: %s is not F32 with %zu values", ck->path, name, numel);
    ktensor_copy(kt, dst);
    return true;
}

void gpt_load_ckpt(gpt *m, const kckpt *ck, adamw *opt) {
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        if (!copy_tensor(ck, kckpt_tensor(ck, t->name), t->name, t->numel, m->params + t->offset) &&
            strcmp(t->name, "score.weight"))
            kiln_die(EX_KILN_DATA, "%s: no tensor %s", ck->path, t->name);
        if (opt && ck->optim) {
            copy_tensor(ck, kckpt_m(ck, t->name), t->name, t->numel, opt->m + t->offset);
            copy_tensor(ck, kckpt_v(ck, t->name), t->name, t->numel, opt->v + t->offset);
        }
    }
    if (opt && ck->optim) opt->step = ck->optim_step;
}
