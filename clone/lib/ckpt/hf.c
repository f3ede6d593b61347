/* hf — Hugging Face GPT-2 directories in and out (lib/ckpt/hf.h). */
#include "ckpt/hf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/config.h"
#include "ckpt/safetensors.h"
#include "core/util.h"
#include "data/bpe.h"

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The directory part of a file path (malloc'd): "." for a bare name. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

bool khf_is_hf(const char *path, char **model) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return false;
    *model = join(path, "model.safetensors");
    return true;
}

static bool exists(const char *path) {
    return access(path, F_OK) == 0;
}

bool khf_has_config(const char *path) {
    char *d = dir_of(path), *c = join(d, "config.json");
    bool yes = exists(c);
    free(d), free(c);
    return yes;
}

static jval *read_json(const char *path, char *err, size_t errsz) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        kiln_errf(err, errsz, EX_KILN_DATA, "%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool big = n == sizeof buf, bad = ferror(f);
    fclose(f);
    if (big || bad) {
        kiln_errf(err, errsz, EX_KILN_DATA, "%s: %s", path,
                  big ? "larger than 64 KiB: not a config" : "read error");
        return NULL;
    }
    char jerr[200];
    jval *j = json_parse(buf, n, 16, jerr, sizeof jerr);
    if (!j) kiln_errf(err, errsz, EX_KILN_DATA, "%s: %s", path, jerr);
    return j;
}

/* The tokenizer's record form as the JSON __metadata__ keeps it. */
static jval *tokenizer_json(const ktokenizer *t) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ktok_pack(t, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    jval *j = NULL;
    bool bad = false;
    if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS) {
        char *s = kckpt_map_json(&u.data, &bad);
        if (s) j = json_parse(s, strlen(s), 16, NULL, 0);
        free(s);
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    if (!j) kiln_die(EX_KILN_SOFTWARE, "the tokenizer did not convert to JSON");
    return j;
}

int khf_read(kckpt *ck, char *err, size_t errsz) {
    char *dir = dir_of(ck->path), *cpath = join(dir, "config.json");
    char *vpath = join(dir, "vocab.bpe"), *epath = join(dir, "encoder.json");
    gpt_config c;
    int rc = 0;
    jval *j = read_json(cpath, err, errsz);
    if (!j)
        rc = EX_KILN_DATA;
    else
        rc = kcfg_from_hf(j, &c, cpath, err, errsz);
    json_free(j);
    if (!rc) {
        char buf[256];
        kcfg_json(&c, buf, sizeof buf);
        json_free(ck->config);
        ck->config = json_parse(buf, strlen(buf), 4, NULL, 0);
    }
    /* lm_head.weight, when there, is the tied embedding: kiln keeps one matrix for both */
    const ktensor *lm = st_find(ck->file, "lm_head.weight"),
                  *wte = kckpt_tensor(ck, "transformer.wte.weight");
    if (!rc && lm && wte &&
        (lm->nbytes != wte->nbytes || lm->dtype != wte->dtype ||
         memcmp(lm->data, wte->data, lm->nbytes) != 0))
        rc = kiln_errf(err, errsz, EX_KILN_DATA,
                       "%s: lm_head.weight differs from transformer.wte.weight; kiln's GPT ties "
                       "the output head to the token embedding",
                       ck->path);
    if (!rc && !ck->tokenizer && (exists(vpath) || exists(epath))) {
        char berr[600];
        kbpe *b = kbpe_load(dir, berr, sizeof berr);
        if (!b)
            rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s", berr);
        else {
            ktokenizer t;
            ktok_init_bpe(&t, b);
            if (t.vocab != (uint32_t)c.vocab)
                rc = kiln_errf(err, errsz, EX_KILN_DATA,
                               "%s: the vocabulary has %u ids, but %s says vocab_size %d", epath,
                               t.vocab, cpath, c.vocab);
            else
                ck->tokenizer = tokenizer_json(&t);
            ktok_free(&t);
        }
    }
    free(dir), free(cpath), free(vpath), free(epath);
    return rc;
}

static int write_text(const char *path, const char *s, char *err, size_t errsz) {
    FILE *f = fopen(path, "w");
    size_t n = strlen(s);
    bool ok = f && fwrite(s, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    return ok ? 0
              : kiln_errf(err, errsz, EX_KILN_IO, "%s: cannot write (%s)", path, strerror(errno));
}

int khf_export(const gpt *m, const ktokenizer *tok, const char *dir, char *err, size_t errsz) {
    if (m->cfg.head != GPT_HEAD_LM)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "a scalar-head model (reward, value) is not a GPT2LMHeadModel");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return kiln_errf(err, errsz, EX_KILN_IO, "%s: cannot create (%s)", dir, strerror(errno));
    st_entry *t = xcalloc((size_t)m->n_tensors, sizeof *t);
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *g = &m->tensors[i];
        t[i].name = g->name;
        t[i].t = ktensor_make(KT_F32, m->params + g->offset, g->ndim, g->shape);
    }
    char config[256], hf[1024];
    kcfg_json(&m->cfg, config, sizeof config);
    st_meta_entry meta[3] = {{"format", "pt"}, {"config", config}};
    size_t nm = 2;
    char *tj = NULL;
    if (tok) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ktok_pack(tok, &pk);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        bool bad = false;
        if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS)
            tj = kckpt_map_json(&u.data, &bad);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        if (tj) meta[nm++] = (st_meta_entry){"tokenizer", tj};
    }
    char *path = join(dir, "model.safetensors");
    int rc = st_write(path, t, (size_t)m->n_tensors, meta, nm, err, errsz);
    free(path), free(t), free(tj);
    if (!rc) {
        kcfg_hf_json(&m->cfg, tok ? (long)tok->eos : -1, hf, sizeof hf);
        path = join(dir, "config.json");
        rc = write_text(path, hf, err, errsz);
        free(path);
    }
    if (!rc && tok && tok->kind == KTOK_BPE && !kbpe_save(tok->bpe, dir, err, errsz))
        rc = EX_KILN_IO;
    return rc;
}

int khf_peft_config(const char *dir, const lora_config *cfg, char *err, size_t errsz) {
    static const char *const modules[LORA_N_TARGETS] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                                        "mlp.c_proj"};
    char targets[160] = "", buf[1024];
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (cfg->targets & (1u << t))
            snprintf(targets + strlen(targets), sizeof targets - strlen(targets), "%s\"%s\"",
                     targets[0] ? ", " : "", modules[t]);
    snprintf(buf, sizeof buf,
             "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": \"CAUSAL_LM\",\n  \"r\": %d,\n"
             "  \"lora_alpha\": %.9g,\n  \"lora_dropout\": %.9g,\n  \"target_modules\": [%s],\n"
             "  \"fan_in_fan_out\": true,\n  \"bias\": \"none\",\n  \"inference_mode\": true,\n"
             "  \"base_model_name_or_path\": null,\n  \"modules_to_save\": null\n}\n",
             cfg->r, (double)cfg->alpha, (double)cfg->dropout, targets);
    char *path = join(dir, "adapter_config.json");
    int rc = write_text(path, buf, err, errsz);
    free(path);
    return rc;
}
