/* load — models from checkpoint files and ckpt records. */
#include "ckpt/load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/adapter.h"
#include "ckpt/config.h"
#include "core/util.h"
#include "data/json.h"

/* ---- into a model being built ------------------------------------------------------------- */

void gpt_config_from_ckpt(const kckpt *ck, gpt_config *cfg) {
    char err[256];
    int rc = kcfg_merge_json(ck->config, cfg, ck->path, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
}

/* Tensor t's values from kt into dst, its shape checked; false when kt is NULL. */
static bool copy_tensor(const char *where, const ktensor *kt, const gpt_tensor *t, float *dst) {
    char err[256];
    if (!kt) return false;
    int rc = kcfg_check_tensor(t, kt, where, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    ktensor_copy(kt, dst);
    return true;
}

void gpt_load_ckpt(gpt *m, const kckpt *ck, adamw *opt) {
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        if (!copy_tensor(ck->path, kckpt_tensor(ck, t->name), t, m->params + t->offset) &&
            strcmp(t->name, "score.weight"))
            kiln_die(EX_KILN_DATA, "%s: no tensor %s", ck->path, t->name);
        if (opt && ck->optim && kckpt_tensor(ck, t->name) &&
            !(copy_tensor(ck->path, kckpt_m(ck, t->name), t, opt->m + t->offset) &&
              copy_tensor(ck->path, kckpt_v(ck, t->name), t, opt->v + t->offset))) {
            /* Moments at zero for one tensor would change the run without a word. */
            char *optim = ckpt_optim_name(ck->path);
            kiln_warn("%s: the optimizer state has no moments for %s (resume with "
                      "--reset-optimizer to start every moment at zero)",
                      optim, t->name);
            free(optim);
            exit(EX_KILN_DATA);
        }
    }
    if (opt && ck->optim) opt->step = ck->optim_step;
}

/* ---- a runnable model --------------------------------------------------------------------- */

static void tok_from_obj(kmodel *km, const msgpack_object *o, const char *where) {
    char err[256];
    if (!o) return;
    if (!ktok_from_obj(o, &km->tok, err, sizeof err))
        kiln_die(EX_KILN_DATA, "%s: tokenizer: %s", where, err);
    km->has_tok = true;
}

void kmodel_from_record(kmodel *km, const krec *r, kpool *pool) {
    char where[64];
    snprintf(where, sizeof where, "ckpt record %llu", (unsigned long long)r->seq);
    memset(km, 0, sizeof *km);
    const msgpack_object *cfg = krec_get(r, "config"), *tensors = krec_get(r, "tensors");
    if (!cfg || cfg->type != MSGPACK_OBJECT_MAP || !tensors ||
        tensors->type != MSGPACK_OBJECT_MAP || !krec_u64(r, "step", &km->step))
        kiln_die(EX_KILN_DATA, "%s: needs step, config and tensors maps", where);
    gpt_config c;
    char err[256];
    int rc = kcfg_from_msgpack(cfg, &c, where, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    km->m = gpt_create(&c, pool, 0);
    for (int i = 0; i < km->m->n_tensors; i++) {
        const gpt_tensor *t = &km->m->tensors[i];
        ktensor kt;
        const msgpack_object *o = kobj_get(tensors, t->name);
        if (!o || !kobj_tensor(o, &kt)) kiln_die(EX_KILN_DATA, "%s: no tensor %s", where, t->name);
        copy_tensor(where, &kt, t, km->m->params + t->offset);
    }
    tok_from_obj(km, krec_get(r, "tokenizer"), where);
}

static void tok_from_json(kmodel *km, const jval *j, const char *where) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    json_pack(&pk, j); /* the tokenizer's metadata form to its record form */
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS)
        kiln_die(EX_KILN_SOFTWARE, "%s: tokenizer metadata did not repack", where);
    tok_from_obj(km, &up.data, where);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

void kmodel_from_file(kmodel *km, const char *path, kpool *pool) {
    memset(km, 0, sizeof *km);
    kckpt *ck = kckpt_load(path, false);
    gpt_config c;
    char err[256];
    int rc = kcfg_from_json(ck->config, &c, path, err, sizeof err);
    if (rc) {
        kckpt_free(ck);
        kiln_die(rc, "%s", err);
    }
    km->m = gpt_create(&c, pool, 0);
    gpt_load_ckpt(km->m, ck, NULL);
    km->step = ck->step;
    if (ck->tokenizer) tok_from_json(km, ck->tokenizer, path);
    if (km->has_tok && km->tok.vocab != (uint32_t)c.vocab) {
        kckpt_free(ck);
        kiln_die(EX_KILN_DATA, "%s: the tokenizer has %u ids, the model's vocabulary %d", path,
                 km->tok.vocab, c.vocab);
    }
    kckpt_free(ck);
}

void kmodel_apply_adapter(kmodel *km, const char *path) {
    kadapter ad;
    kadapter_open(&ad, path);
    km->m = kadapter_apply(&ad, km->m);
    km->step = ad.step;
    if (ad.ck->tokenizer) {
        if (km->has_tok) ktok_free(&km->tok);
        km->has_tok = false;
        tok_from_json(km, ad.ck->tokenizer, path);
    }
    kadapter_free(&ad);
}

void kmodel_from_adapter_record(kmodel *km, const krec *r, const char *base, kpool *pool) {
    if (!base)
        kiln_die(EX_KILN_DATA,
                 "ckpt record %llu holds LoRA adapters, not a model: give their base (--base FILE)",
                 (unsigned long long)r->seq);
    kmodel_from_file(km, base, pool);
    kadapter ad;
    kadapter_from_record(&ad, r);
    km->m = kadapter_apply(&ad, km->m);
    km->step = ad.step;
    if (km->has_tok) ktok_free(&km->tok);
    km->has_tok = false;
    tok_from_obj(km, krec_get(r, "tokenizer"), ad.where);
    kadapter_free(&ad);
}

void kmodel_free(kmodel *km) {
    gpt_free(km->m);
    if (km->has_tok) ktok_free(&km->tok);
    memset(km, 0, sizeof *km);
}
