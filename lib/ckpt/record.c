/* record — packing a ckpt record. */
#include "ckpt/record.h"

#include <string.h>

#include "ckpt/config.h"

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
    kw_u64(w, "seed", s->seed);
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
