/* gptload — a runnable model from a ckpt record or a checkpoint file. */
#include "ckpt/gptload.h"

#include <stdio.h>
#include <string.h>

#include "ckpt/adapter.h"
#include "ckpt/store.h"
#include "ckpt/gptckpt.h"
#include "data/json.h"
#include "core/util.h"

/* The tensor must have exactly the model tensor's shape and be F32. */
static void check_shape(const char *where, const gpt_tensor *t, const ktensor *kt) {
    bool same = kt->dtype == KT_F32 && kt->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = kt->shape[d] == t->shape[d];
    if (same) return;
    char want[64], got[128];
    int n = 0;
    if (t->ndim == 1)
        snprintf(want, sizeof want, "[%llu]", (unsigned long long)t->shape[0]);
    else
        snprintf(want, sizeof want, "[%llu, %llu]", (unsigned long long)t->shape[0],
                 (unsigned long long)t->shape[1]);
    n += snprintf(got + n, sizeof got - (size_t)n, "%s [", kdtype_name(kt->dtype));
    for (int d = 0; d < kt->ndim && n < (int)sizeof got - 24; d++)
        n += snprintf(got + n, sizeof got - (size_t)n, "%s%llu", d ? ", " : "",
                      (unsigned long long)kt->shape[d]);
    snprintf(got + n, sizeof got - (size_t)n, "]");
    kiln_die(EX_KILN_DATA, "%s: %s is %s, the model's config needs F32 %s", where, t->name, got,
             want);
}

static gpt *create_checked(const gpt_config *c, const char *where, kpool *pool) {
    const char *bad = gpt_config_check(c);
    if (bad) kiln_die(EX_KILN_DATA, "%s: config: %s", where, bad);
    return gpt_create(c, pool, 0);
}

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
    gpt_config c = {0};
    const char *keys[] = {"n_layer", "n_embd", "n_head", "n_ctx", "vocab"};
    int *dst[] = {&c.n_layer, &c.n_embd, &c.n_head, &c.n_ctx, &c.vocab};
    for (int i = 0; i < 5; i++) {
        const msgpack_object *v = kobj_get(cfg, keys[i]);
        if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > (1u << 24))
            kiln_die(EX_KILN_DATA, "%s: config %s is missing or not a small integer", where,
                     keys[i]);
        *dst[i] = (int)v->via.u64;
    }
    if (kobj_str_eq(kobj_get(cfg, "head"), "scalar")) c.head = GPT_HEAD_SCALAR;
    km->m = create_checked(&c, where, pool);
    for (int i = 0; i < km->m->n_tensors; i++) {
        const gpt_tensor *t = &km->m->tensors[i];
        ktensor kt;
        const msgpack_object *o = kobj_get(tensors, t->name);
        if (!o || !kobj_tensor(o, &kt)) kiln_die(EX_KILN_DATA, "%s: no tensor %s", where, t->name);
        check_shape(where, t, &kt);
        ktensor_copy(&kt, km->m->params + t->offset);
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
    gpt_config c = {0};
    gpt_config_from_ckpt(ck, &c);
    km->m = create_checked(&c, path, pool);
    for (int i = 0; i < km->m->n_tensors; i++) {
        const ktensor *kt = kckpt_tensor(ck, km->m->tensors[i].name);
        if (kt) check_shape(path, &km->m->tensors[i], kt);
    }
    gpt_load_ckpt(km->m, ck, NULL);
    km->step = ck->step;
    if (ck->tokenizer) tok_from_json(km, ck->tokenizer, path);
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

bool ktok_same(const ktokenizer *a, const ktokenizer *b) {
    if (a->kind != b->kind || a->vocab != b->vocab || a->bos != b->bos || a->eos != b->eos ||
        a->pad != b->pad || a->class_base != b->class_base || a->nclasses != b->nclasses)
        return false;
    if (a->kind == KTOK_LEVELS && a->levels != b->levels) return false;
    if (a->kind == KTOK_PALETTE &&
        (a->npalette != b->npalette ||
         memcmp(a->palette, b->palette, (size_t)a->npalette * sizeof a->palette[0])))
        return false;
    for (uint32_t i = 0; i < a->nclasses; i++)
        if (strcmp(a->classes[i], b->classes[i])) return false;
    return true;
}

void ktok_describe(const ktokenizer *t, char *buf, size_t n) {
    const char *kind = t->kind == KTOK_BYTES    ? "bytes"
                       : t->kind == KTOK_LEVELS ? "levels"
                                                : "palette";
    unsigned k = t->kind == KTOK_LEVELS ? t->levels : t->npalette;
    char sym[32] = "";
    if (t->kind != KTOK_BYTES) snprintf(sym, sizeof sym, " %u", k);
    snprintf(buf, n, "%s%s, %u classes, vocab %u", kind, sym, t->nclasses, t->vocab);
}
