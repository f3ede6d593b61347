/* config — presets, config maps and JSON, the shape check. */
#include "ckpt/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "stream/stream.h"

#define N_SIZES 5
static const char *const size_keys[N_SIZES] = {"n_layer", "n_embd", "n_head", "n_ctx", "vocab"};
static const uint64_t size_max = 1u << 24; /* any larger value is nonsense, not a model */

static int *size_field(gpt_config *c, int i) {
    int *f[N_SIZES] = {&c->n_layer, &c->n_embd, &c->n_head, &c->n_ctx, &c->vocab};
    return f[i];
}

static const struct {
    const char *name;
    int layers, dim, heads;
} presets[] = {{"tiny", 2, 64, 4}, {"small", 4, 256, 4}, {"char", 6, 384, 6}};

bool kcfg_preset(const char *name, gpt_config *c) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(name, presets[i].name)) {
            c->n_layer = presets[i].layers, c->n_embd = presets[i].dim;
            c->n_head = presets[i].heads, c->n_ctx = 256;
            return true;
        }
    return false;
}

const char *kcfg_preset_names(void) {
    return "tiny, small, char";
}

static const char *head_name(gpt_head h) {
    return h == GPT_HEAD_SCALAR ? "scalar" : "lm";
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

void kcfg_pack(msgpack_packer *pk, const gpt_config *c) {
    msgpack_pack_map(pk, N_SIZES + 1);
    for (int i = 0; i < N_SIZES; i++) {
        pack_cstr(pk, size_keys[i]);
        msgpack_pack_uint64(pk, (uint64_t)*size_field((gpt_config *)c, i));
    }
    pack_cstr(pk, "head");
    pack_cstr(pk, head_name(c->head));
}

void kcfg_json(const gpt_config *c, char *buf, size_t n) {
    snprintf(buf, n,
             "{\"n_layer\":%d,\"n_embd\":%d,\"n_head\":%d,\"n_ctx\":%d,\"vocab\":%d,"
             "\"head\":\"%s\"}",
             c->n_layer, c->n_embd, c->n_head, c->n_ctx, c->vocab, head_name(c->head));
}

static int check_whole(const gpt_config *c, const char *where, char *err, size_t errsz) {
    const char *bad = gpt_config_check(c);
    return bad ? kiln_errf(err, errsz, EX_KILN_DATA, "%s: config: %s", where, bad) : 0;
}

static int bad_size(int i, const char *where, char *err, size_t errsz) {
    return kiln_errf(err, errsz, EX_KILN_DATA,
                     "%s: config %s is missing or not a whole number up to %llu", where,
                     size_keys[i], (unsigned long long)size_max);
}

int kcfg_from_msgpack(const msgpack_object *map, gpt_config *c, const char *where, char *err,
                      size_t errsz) {
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: config is not a map", where);
    *c = (gpt_config){0};
    for (int i = 0; i < N_SIZES; i++) {
        const msgpack_object *v = kobj_get(map, size_keys[i]);
        if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > size_max)
            return bad_size(i, where, err, errsz);
        *size_field(c, i) = (int)v->via.u64;
    }
    if (kobj_str_eq(kobj_get(map, "head"), "scalar")) c->head = GPT_HEAD_SCALAR;
    return check_whole(c, where, err, errsz);
}

int kcfg_merge_json(const jval *obj, gpt_config *c, const char *where, char *err, size_t errsz) {
    for (int i = 0; obj && i < N_SIZES; i++) {
        const jval *v = json_get(obj, size_keys[i]);
        uint64_t u;
        if (!v) continue;
        if (!json_u64(v, &u) || u > size_max) return bad_size(i, where, err, errsz);
        *size_field(c, i) = (int)u;
    }
    const jval *head = obj ? json_get(obj, "head") : NULL;
    if (head && head->type == JSON_STR)
        c->head = strcmp(head->s, "scalar") ? GPT_HEAD_LM : GPT_HEAD_SCALAR;
    return 0;
}

int kcfg_from_json(const jval *obj, gpt_config *c, const char *where, char *err, size_t errsz) {
    if (!obj || obj->type != JSON_OBJ)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: no config in __metadata__", where);
    *c = (gpt_config){0};
    for (int i = 0; i < N_SIZES; i++)
        if (!json_get(obj, size_keys[i])) return bad_size(i, where, err, errsz);
    int rc = kcfg_merge_json(obj, c, where, err, errsz);
    return rc ? rc : check_whole(c, where, err, errsz);
}

static void shape_str(char *buf, size_t n, int ndim, const uint64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k + 24 < n; d++)
        k +=
            (size_t)snprintf(buf + k, n - k, "%s%llu", d ? ", " : "", (unsigned long long)shape[d]);
    snprintf(buf + k, n - k, "]");
}

int kcfg_check_tensor(const gpt_tensor *t, const ktensor *kt, const char *where, char *err,
                      size_t errsz) {
    bool same = kt->dtype == KT_F32 && kt->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = kt->shape[d] == t->shape[d];
    if (same) return 0;
    char want[64], got[128];
    shape_str(want, sizeof want, t->ndim, t->shape);
    shape_str(got, sizeof got, kt->ndim, kt->shape);
    return kiln_errf(err, errsz, EX_KILN_DATA, "%s: %s is %s %s, the model's config needs F32 %s",
                     where, t->name, kdtype_name(kt->dtype), got, want);
}

/* ---- Hugging Face's config.json ------------------------------------------------------------ */

int kcfg_from_hf(const jval *obj, gpt_config *c, const char *where, char *err, size_t errsz) {
    if (!obj || obj->type != JSON_OBJ)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: not a JSON object", where);
    static const char *const keys[N_SIZES] = {"n_layer", "n_embd", "n_head", "n_positions",
                                              "vocab_size"};
    *c = (gpt_config){0};
    for (int i = 0; i < N_SIZES; i++) {
        const jval *v = json_get(obj, keys[i]);
        if (!v && i == 3) v = json_get(obj, "n_ctx");
        uint64_t u;
        if (!v || !json_u64(v, &u) || u > size_max)
            return kiln_errf(err, errsz, EX_KILN_DATA,
                             "%s: %s is missing or not a whole number up to %llu", where, keys[i],
                             (unsigned long long)size_max);
        *size_field(c, i) = (int)u;
    }
    const jval *v = json_get(obj, "layer_norm_epsilon");
    double eps = v ? json_num(v) : 1e-5;
    if (!(fabs(eps - 1e-5) <= 1e-12))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: layer_norm_epsilon %g: kiln's LayerNorm uses 1e-5", where, eps);
    v = json_get(obj, "activation_function");
    if (v &&
        (v->type != JSON_STR || (strcmp(v->s, "gelu_new") && strcmp(v->s, "gelu_pytorch_tanh"))))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: activation_function %s: kiln's GPT uses gelu_new (GELU, tanh form)",
                         where, v->type == JSON_STR ? v->s : "(not a string)");
    v = json_get(obj, "n_inner");
    uint64_t inner;
    if (v && v->type != JSON_NULL && (!json_u64(v, &inner) || inner != 4 * (uint64_t)c->n_embd))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: n_inner must be null or 4 * n_embd (%d) for kiln's GPT", where,
                         4 * c->n_embd);
    v = json_get(obj, "model_type");
    if (v && (v->type != JSON_STR || strcmp(v->s, "gpt2")))
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: model_type %s: kiln reads gpt2", where,
                         v->type == JSON_STR ? v->s : "(not a string)");
    const char *bad = gpt_config_check(c);
    if (bad)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: %s (n_layer %d, n_embd %d, n_head %d, "
                         "n_positions %d, vocab_size %d)",
                         where, bad, c->n_layer, c->n_embd, c->n_head, c->n_ctx, c->vocab);
    return 0;
}

void kcfg_hf_json(const gpt_config *c, long eot, char *buf, size_t n) {
    char ids[96] = "";
    if (eot >= 0)
        snprintf(ids, sizeof ids, "  \"bos_token_id\": %ld,\n  \"eos_token_id\": %ld,\n", eot, eot);
    snprintf(buf, n,
             "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
             "  \"n_layer\": %d,\n  \"n_embd\": %d,\n  \"n_head\": %d,\n  \"n_positions\": %d,\n"
             "  \"n_ctx\": %d,\n  \"vocab_size\": %d,\n  \"n_inner\": null,\n"
             "  \"layer_norm_epsilon\": 1e-05,\n  \"activation_function\": \"gelu_new\",\n"
             "%s  \"tie_word_embeddings\": true,\n  \"resid_pdrop\": 0.0,\n  \"embd_pdrop\": 0.0,\n"
             "  \"attn_pdrop\": 0.0,\n  \"initializer_range\": 0.02,\n  \"torch_dtype\": "
             "\"float32\"\n}\n",
             c->n_layer, c->n_embd, c->n_head, c->n_ctx, c->n_ctx, c->vocab, ids);
}
