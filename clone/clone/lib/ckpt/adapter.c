/* adapter — LoRA adapter checkpoints in and out, and folding them into a base. */
#include "ckpt/adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/weights.h"
#include "ckpt/config.h"
#include "data/json.h"
#include "ckpt/safetensors.h"
#include "core/util.h"

/* targets "qkv,proj" back to the bitmask through the option parser. */
static void set_targets(kadapter *ad, const char *targets) {
    char spec[96], err[200];
    snprintf(spec, sizeof spec, "targets=%s", targets);
    lora_config c;
    if (strlen(targets) > 60 || !lora_parse(spec, &c, err, sizeof err))
        kiln_die(EX_KILN_DATA, "%s: adapter targets '%s': %s", ad->where, targets, err);
    ad->cfg.targets = c.targets;
}

static void check_cfg(const kadapter *ad) {
    if (ad->rows) {
        if (ad->first_row < 1 || strncmp(ad->base_hash, "fnv1a64:", 8))
            kiln_die(EX_KILN_DATA, "%s: a rows adapter needs first_row and base_hash", ad->where);
        return;
    }
    if (ad->cfg.r < 1 || ad->cfg.r > 4096 || !(ad->cfg.alpha > 0) || !ad->cfg.targets ||
        strncmp(ad->base_hash, "fnv1a64:", 8))
        kiln_die(EX_KILN_DATA, "%s: adapter needs r 1..4096, alpha > 0, targets and base_hash",
                 ad->where);
}

/* The fine-tuned model's shape, from the record's config map or the file's config JSON. */
static void read_model_config(kadapter *ad, const msgpack_object *map, const jval *json) {
    char err[256];
    int rc = map ? kcfg_from_msgpack(map, &ad->model, ad->where, err, sizeof err)
                 : kcfg_from_json(json, &ad->model, ad->where, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
}

static void add_tensor(kadapter *ad, const char *name, size_t len, const ktensor *t) {
    ad->names = xrealloc(ad->names, xmul((size_t)ad->n + 1, sizeof *ad->names));
    ad->tensors = xrealloc(ad->tensors, xmul((size_t)ad->n + 1, sizeof *ad->tensors));
    ad->names[ad->n] = xmalloc(len + 1);
    memcpy(ad->names[ad->n], name, len);
    ad->names[ad->n][len] = '\0';
    ad->tensors[ad->n++] = *t;
}

/* ---- from a record ---------------------------------------------------------------------- */

bool kadapter_is_record(const krec *r) {
    return krec_get(r, "adapter") != NULL;
}

static double obj_num(const msgpack_object *o, double dflt) {
    if (!o) return dflt;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (double)o->via.u64;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) return o->via.f64;
    return -1;
}

void kadapter_from_record(kadapter *ad, const krec *r) {
    memset(ad, 0, sizeof *ad);
    snprintf(ad->where, sizeof ad->where, "ckpt record %llu", (unsigned long long)r->seq);
    const msgpack_object *a = krec_get(r, "adapter"), *cfg = krec_get(r, "config"),
                         *tensors = krec_get(r, "tensors");
    if (!a || a->type != MSGPACK_OBJECT_MAP || !cfg || cfg->type != MSGPACK_OBJECT_MAP ||
        !tensors || tensors->type != MSGPACK_OBJECT_MAP)
        kiln_die(EX_KILN_DATA, "%s: an adapter record needs adapter, config and tensors maps",
                 ad->where);
    krec_u64(r, "step", &ad->step);
    ad->rows = kobj_str_eq(kobj_get(a, "kind"), "rows");
    ad->first_row = (int)obj_num(kobj_get(a, "first_row"), 0);
    ad->cfg.r = (int)obj_num(kobj_get(a, "r"), 0);
    ad->cfg.alpha = (float)obj_num(kobj_get(a, "alpha"), 0);
    ad->cfg.dropout = (float)obj_num(kobj_get(a, "dropout"), 0);
    char targets[64] = "";
    kobj_cstr(kobj_get(a, "targets"), targets, sizeof targets);
    if (!ad->rows) set_targets(ad, targets);
    kobj_cstr(kobj_get(a, "base_hash"), ad->base_hash, sizeof ad->base_hash);
    check_cfg(ad);
    read_model_config(ad, cfg, NULL);
    for (uint32_t i = 0; i < tensors->via.map.size; i++) {
        const msgpack_object *k = &tensors->via.map.ptr[i].key;
        ktensor t;
        if (k->type != MSGPACK_OBJECT_STR || !kobj_tensor(&tensors->via.map.ptr[i].val, &t))
            kiln_die(EX_KILN_DATA, "%s: tensors must map names to tensors", ad->where);
        add_tensor(ad, k->via.str.ptr, k->via.str.size, &t);
    }
}

/* ---- from a file ------------------------------------------------------------------------- */

void kadapter_open(kadapter *ad, const char *path) {
    memset(ad, 0, sizeof *ad);
    snprintf(ad->where, sizeof ad->where, "%s", path);
    ad->ck = kckpt_load(path, false);
    const char *meta = st_meta(ad->ck->file, "adapter");
    if (!meta)
        kiln_die(EX_KILN_DATA, "%s: not a LoRA adapter file (no adapter in __metadata__)", path);
    char err[256];
    jval *a = json_parse(meta, strlen(meta), 0, err, sizeof err);
    if (!a || a->type != JSON_OBJ)
        kiln_die(EX_KILN_DATA, "%s: __metadata__ adapter is not a JSON object%s%s", path,
                 a ? "" : ": ", a ? "" : err);
    const jval *v;
    uint64_t u;
    v = json_get(a, "kind");
    ad->rows = v && v->type == JSON_STR && !strcmp(v->s, "rows");
    ad->first_row = json_u64(json_get(a, "first_row"), &u) && u < (1u << 24) ? (int)u : 0;
    ad->cfg.r = json_u64(json_get(a, "r"), &u) && u <= 4096 ? (int)u : 0;
    ad->cfg.alpha = (v = json_get(a, "alpha")) ? (float)json_num(v) : 0;
    ad->cfg.dropout = (v = json_get(a, "dropout")) ? (float)json_num(v) : 0;
    v = json_get(a, "targets");
    if (!ad->rows) set_targets(ad, v && v->type == JSON_STR ? v->s : "");
    v = json_get(a, "base_hash");
    if (v && v->type == JSON_STR) snprintf(ad->base_hash, sizeof ad->base_hash, "%s", v->s);
    json_free(a);
    ad->step = ad->ck->step;
    check_cfg(ad);
    read_model_config(ad, NULL, ad->ck->config);
    for (size_t i = 0; i < st_count(ad->ck->file); i++) {
        const char *name = st_name(ad->ck->file, i);
        add_tensor(ad, name, strlen(name), st_tensor(ad->ck->file, i));
    }
}

void kadapter_free(kadapter *ad) {
    for (int i = 0; i < ad->n; i++) free(ad->names[i]);
    free(ad->names);
    free(ad->tensors);
    kckpt_free(ad->ck);
    memset(ad, 0, sizeof *ad);
}

/* ---- applying one ------------------------------------------------------------------------ */

/* Copy a named F32 tensor of numel values into dst, or die naming it. */
static void take(const kadapter *ad, int i, size_t numel, float *dst) {
    uint64_t n;
    if (ad->tensors[i].dtype != KT_F32 || !ktensor_numel(&ad->tensors[i], &n) || n != numel)
        kiln_die(EX_KILN_DATA, "%s: %s is not F32 with %zu values", ad->where, ad->names[i], numel);
    ktensor_copy(&ad->tensors[i], dst);
}

/* kind rows: the base grown by the adapter's rows. */
static gpt *apply_rows(const kadapter *ad, gpt *base) {
    int C = base->cfg.n_embd, V = base->cfg.vocab, n_add = ad->model.vocab - V;
    uint64_t numel;
    if (ad->first_row != V || n_add < 1 || ad->n != 1 ||
        strcmp(ad->names[0], KADAPTER_ROWS_TENSOR) || ad->tensors[0].dtype != KT_F32 ||
        !ktensor_numel(&ad->tensors[0], &numel) || numel != (uint64_t)n_add * (uint64_t)C)
        kiln_die(EX_KILN_DATA,
                 "%s: a rows adapter for a base of %d tokens needs first_row %d and one tensor "
                 "%s of %d x %d",
                 ad->where, V, V, KADAPTER_ROWS_TENSOR, n_add, C);
    int *rows = xcalloc((size_t)n_add, sizeof(int));
    gpt *m = gpt_grow_vocab(base, n_add, rows, (int[2]){0, 1});
    free(rows);
    gpt_free(base);
    ktensor_copy(&ad->tensors[0], m->p.wte + (size_t)V * C);
    return m;
}

gpt *kadapter_apply(const kadapter *ad, gpt *base) {
    char hash[32];
    gpt_weights_hash(base, hash, sizeof hash);
    if (strcmp(hash, ad->base_hash))
        kiln_die(EX_KILN_DATA,
                 "%s: the adapter was trained on base %s, but this base is %s (use the base "
                 "model it was fine-tuned from)",
                 ad->where, ad->base_hash, hash);
    if (ad->rows) return apply_rows(ad, base);
    const gpt_config bc = base->cfg, *b = &bc, *a = &ad->model; /* base may be freed below */
    if (a->n_layer != b->n_layer || a->n_embd != b->n_embd || a->n_head != b->n_head ||
        a->n_ctx != b->n_ctx || a->vocab < b->vocab)
        kiln_die(EX_KILN_DATA, "%s: the adapter's model shape is not the base's", ad->where);
    gpt *m = base;
    if (a->vocab > b->vocab) { /* --add-class: its wte (in the adapter) has the new rows */
        int n_add = a->vocab - b->vocab, *rows = xcalloc((size_t)n_add, sizeof(int));
        m = gpt_grow_vocab(base, n_add, rows, (int[2]){0, 1});
        free(rows);
        gpt_free(base);
    }
    if (a->head == GPT_HEAD_SCALAR && b->head != GPT_HEAD_SCALAR) {
        /* a reward model's or PPO's value head grown on a language model: the adapter
         * carries score.weight, so the merged model has the scalar head too */
        gpt *grown = gpt_with_head(m, GPT_HEAD_SCALAR);
        gpt_free(m);
        m = grown;
    }
    bool have_wte = a->vocab == b->vocab;
    lora *l = lora_create(&ad->cfg, &m->cfg, 0);
    int found = 0;
    for (int i = 0; i < ad->n; i++) {
        int k = lora_find_tensor(l, ad->names[i]), t = gpt_find_tensor(m, ad->names[i]);
        if (k >= 0) {
            take(ad, i, l->tensors[k].numel, l->params + l->tensors[k].offset);
            found++;
        } else if (t >= 0) { /* a model tensor trained beside the adapters */
            take(ad, i, m->tensors[t].numel, m->params + m->tensors[t].offset);
            have_wte |= !strcmp(ad->names[i], "transformer.wte.weight");
        } else {
            kiln_die(EX_KILN_DATA,
                     "%s: %s is neither an adapter of these targets nor a model tensor", ad->where,
                     ad->names[i]);
        }
    }
    if (found != l->n_tensors || !have_wte)
        kiln_die(EX_KILN_DATA, "%s: %s", ad->where,
                 !have_wte ? "the vocabulary grew but transformer.wte.weight is missing"
                           : "some adapter tensors of its targets are missing");
    lora_merge(l, m);
    lora_free(l);
    return m;
}

void kadapter_write_model(const gpt *m, const char *tokenizer_json, uint64_t step,
                          const char *path) {
    st_entry *t = xcalloc((size_t)m->n_tensors, sizeof *t);
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *g = &m->tensors[i];
        t[i].name = g->name;
        t[i].t = ktensor_make(KT_F32, m->params + g->offset, g->ndim, g->shape);
    }
    char config[256], steps[24], err[512];
    kcfg_json(&m->cfg, config, sizeof config);
    snprintf(steps, sizeof steps, "%llu", (unsigned long long)step);
    st_meta_entry meta[4] = {{"format", "pt"}, {"config", config}, {"step", steps}};
    size_t nm = 3;
    if (tokenizer_json) meta[nm++] = (st_meta_entry){"tokenizer", tokenizer_json};
    int rc = st_write(path, t, (size_t)m->n_tensors, meta, nm, err, sizeof err);
    free(t);
    if (rc) kiln_die(rc, "%s", err);
}
