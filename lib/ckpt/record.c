/* record — packing a ckpt record. */
#include "ckpt/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/config.h"
#include "core/util.h"

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A map name -> F32 tensor over one of the model-shaped buffers. */
static void pack_model_tensors(kwriter *w, const gpt *m, const float *buf) {
    msgpack_pack_map(kw_packer(w), (size_t)m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        pack_str(kw_packer(w), t->name);
        ktensor kt = ktensor_make(KT_F32, buf + t->offset, t->ndim, t->shape);
        kw_tensor_value(w, &kt);
    }
}

/* The shape of a trainable tensor: the model's or an adapter's. */
static const gpt_tensor *param_shape(const kckpt_state *s, const char *name) {
    if (s->rows && !strcmp(name, s->rows->name)) return s->rows;
    int j = gpt_find_tensor(s->m, name);
    return j >= 0 ? &s->m->tensors[j] : &s->lora->tensors[lora_find_tensor(s->lora, name)];
}

/* The trainable tensors as a map: their values (moments NULL), or their slices of the
 * compact moment buffer. */
static void pack_params(kwriter *w, const kckpt_state *s, const float *moments) {
    msgpack_pack_map(kw_packer(w), (size_t)s->n_ps);
    for (int i = 0; i < s->n_ps; i++) {
        const kparam *p = &s->ps[i];
        const gpt_tensor *t = param_shape(s, p->name);
        pack_str(kw_packer(w), p->name);
        ktensor kt = ktensor_make(KT_F32, moments ? moments + p->moff : p->p, t->ndim, t->shape);
        kw_tensor_value(w, &kt);
    }
}

static void pack_adapter(kwriter *w, const kckpt_state *s) {
    const lora_config *c = &s->lora->cfg;
    char targets[64];
    lora_targets_str(c->targets, targets, sizeof targets);
    kw_key(w, "adapter");
    msgpack_packer *pk = kw_packer(w);
    msgpack_pack_map(pk, 6);
    pack_str(pk, "kind");
    pack_str(pk, "lora");
    pack_str(pk, "r");
    msgpack_pack_uint64(pk, (uint64_t)c->r);
    pack_str(pk, "alpha");
    msgpack_pack_double(pk, c->alpha);
    pack_str(pk, "dropout");
    msgpack_pack_double(pk, c->dropout);
    pack_str(pk, "targets");
    pack_str(pk, targets);
    pack_str(pk, "base_hash");
    pack_str(pk, s->base_hash);
}

static void pack_rows_adapter(kwriter *w, const kckpt_state *s) {
    kw_key(w, "adapter");
    msgpack_packer *pk = kw_packer(w);
    msgpack_pack_map(pk, 3);
    pack_str(pk, "kind");
    pack_str(pk, "rows");
    pack_str(pk, "first_row");
    msgpack_pack_uint64(pk, (uint64_t)s->first_row);
    pack_str(pk, "base_hash");
    pack_str(pk, s->base_hash);
}

static void pack_optim(kwriter *w, const kckpt_state *s) {
    kw_key(w, "optim");
    msgpack_packer *pk = kw_packer(w);
    msgpack_pack_map(pk, 4);
    pack_str(pk, "step");
    msgpack_pack_uint64(pk, s->opt->step);
    pack_str(pk, "lr");
    msgpack_pack_double(pk, s->lr);
    pack_str(pk, "m");
    pack_params(w, s, s->opt->m);
    pack_str(pk, "v");
    pack_params(w, s, s->opt->v);
}

void kckpt_record_write(kwriter *w, const kckpt_state *s) {
    kwriter_begin(w, "ckpt");
    kw_u64(w, "step", s->step);
    kw_key(w, "config");
    kcfg_pack(kw_packer(w), &s->m->cfg);
    if (s->tokenizer) kw_obj(w, "tokenizer", s->tokenizer);
    kw_u64(w, "cursor", s->cursor);
    if (s->cursors) {
        kw_key(w, "cursors");
        msgpack_pack_array(kw_packer(w), (size_t)s->n_cursors);
        for (int i = 0; i < s->n_cursors; i++) msgpack_pack_uint64(kw_packer(w), s->cursors[i]);
    }
    kw_u64(w, "seed", s->seed);
    if (s->n_state) {
        kw_key(w, "state");
        msgpack_pack_map(kw_packer(w), (size_t)s->n_state);
        for (int i = 0; i < s->n_state; i++) {
            pack_str(kw_packer(w), s->state_names[i]);
            msgpack_pack_double(kw_packer(w), s->state[i]);
        }
    }
    if (s->lora) pack_adapter(w, s);
    if (s->rows) pack_rows_adapter(w, s);
    kw_key(w, "tensors");
    if (s->lora || s->rows)
        pack_params(w, s, NULL); /* an adapter checkpoint: just what trained */
    else
        pack_model_tensors(w, s->m, s->m->params);
    pack_optim(w, s);
    kwriter_end(w);
}

/* Each entry of a name -> tensor map is a tensor of the table with its shape; with
 * need_all, every tensor of the table is there. */
static int check_map(const msgpack_object *map, const char *what, const gpt_tensor *tab, int n,
                     bool need_all, const char *where, char *err, size_t errsz) {
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: %s is not a map of tensors", where, what);
    char at[160];
    snprintf(at, sizeof at, "%s: %s", where, what);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        int j = 0;
        while (j < n && !kobj_str_eq(k, tab[j].name)) j++;
        char name[64] = "?";
        kobj_cstr(k, name, sizeof name);
        if (j == n)
            return kiln_errf(err, errsz, EX_KILN_DATA, "%s: %s is not a tensor of the config", at,
                             name);
        ktensor kt;
        if (!kobj_tensor(&map->via.map.ptr[i].val, &kt))
            return kiln_errf(err, errsz, EX_KILN_DATA, "%s: %s is not a tensor", at, name);
        int rc = kcfg_check_tensor(&tab[j], &kt, at, err, errsz);
        if (rc) return rc;
    }
    for (int j = 0; need_all && j < n; j++)
        if (!kobj_get(map, tab[j].name))
            return kiln_errf(err, errsz, EX_KILN_DATA, "%s: no tensor %s", at, tab[j].name);
    return 0;
}

int kckpt_record_check(const krec *r, const char *where, char *err, size_t errsz) {
    if (krec_get(r, "adapter")) return 0;
    const msgpack_object *cfg = krec_get(r, "config");
    if (!cfg || cfg->type != MSGPACK_OBJECT_MAP)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: ckpt record without a config map", where);
    gpt_config c;
    int rc = kcfg_from_msgpack(cfg, &c, where, err, errsz);
    if (rc) return rc;
    int n;
    gpt_tensor *tab = gpt_tensor_table(&c, &n);
    rc = check_map(krec_get(r, "tensors"), "tensors", tab, n, true, where, err, errsz);
    const msgpack_object *optim = krec_get(r, "optim");
    if (!rc && optim)
        rc = check_map(kobj_get(optim, "m"), "optim.m", tab, n, false, where, err, errsz);
    if (!rc && optim)
        rc = check_map(kobj_get(optim, "v"), "optim.v", tab, n, false, where, err, errsz);
    free(tab);
    return rc;
}
