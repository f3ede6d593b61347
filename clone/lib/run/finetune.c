/* finetune — freeze specs, the trainable list, base hashes, new class tokens. */
#include "run/finetune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* ---- --freeze --------------------------------------------------------------------------- */

/* The block index of a "transformer.h.N." name, or -1. */
static int block_of(const char *name) {
    const char *p = "transformer.h.";
    if (strncmp(name, p, strlen(p))) return -1;
    return atoi(name + strlen(p));
}

static bool is_head(const char *name) {
    return !strcmp(name, "transformer.wte.weight") || !strncmp(name, "transformer.ln_f.", 17) ||
           !strcmp(name, "score.weight");
}

/* A name equal to prefix, or under it as a module ("a.b" covers "a.b.c", not "a.bc"). */
static bool under(const char *name, const char *prefix, size_t n) {
    return !strncmp(name, prefix, n) && (name[n] == '\0' || name[n] == '.');
}

/* Mark the tensors one item names; the number marked, or -1 with err set. */
static int freeze_item(const gpt *m, const char *item, bool *frozen, char *err, size_t errsz) {
    int L = m->cfg.n_layer, marked = 0;
    if (!strncmp(item, "blocks:", 7)) {
        const char *s = item + 7;
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s || a < 0) goto bad_range;
        if (*end == '-') {
            s = end + 1;
            b = strtol(s, &end, 10);
            if (end == s) goto bad_range;
        }
        if (*end || b < a) goto bad_range;
        if (b >= L) {
            snprintf(err, errsz, "--freeze %s: the model has blocks 0-%d", item, L - 1);
            return -1;
        }
        for (int i = 0; i < m->n_tensors; i++) {
            int blk = block_of(m->tensors[i].name);
            if (blk >= a && blk <= b) frozen[i] = true, marked++;
        }
        return marked;
    bad_range:
        snprintf(err, errsz, "--freeze %s: want blocks:N or blocks:A-B", item);
        return -1;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const char *name = m->tensors[i].name;
        bool hit;
        if (!strcmp(item, "embeddings"))
            hit =
                !strcmp(name, "transformer.wte.weight") || !strcmp(name, "transformer.wpe.weight");
        else if (!strcmp(item, "wte") || !strcmp(item, "wpe") || !strcmp(item, "ln_f"))
            hit = !strncmp(name, "transformer.", 12) && under(name + 12, item, strlen(item));
        else if (!strcmp(item, "all-but-head"))
            hit = !is_head(name);
        else
            hit = under(name, item, strlen(item));
        if (hit) frozen[i] = true, marked++;
    }
    if (!marked)
        snprintf(err, errsz,
                 "--freeze %s: names no tensor of the model (embeddings, wte, wpe, ln_f, "
                 "blocks:A-B with blocks 0-%d, all-but-head, or a tensor name / module prefix "
                 "such as transformer.h.0.mlp)",
                 item, L - 1);
    return marked ? marked : -1;
}

bool ft_freeze_parse(const gpt *m, const char *spec, bool *frozen, char *err, size_t errsz) {
    memset(frozen, 0, sizeof(bool) * (size_t)m->n_tensors);
    if (!*spec) {
        snprintf(err, errsz, "--freeze: empty spec");
        return false;
    }
    for (const char *s = spec; *s;) {
        size_t n = strcspn(s, ",");
        char item[128];
        if (n == 0 || n >= sizeof item) {
            snprintf(err, errsz, "--freeze %s: empty or overlong item", spec);
            return false;
        }
        memcpy(item, s, n);
        item[n] = '\0';
        if (freeze_item(m, item, frozen, err, errsz) < 0) return false;
        s += n;
        if (*s == ',') s++;
    }
    return true;
}

/* ---- the trainable list ------------------------------------------------------------------ */

kparam *ft_params(gpt *m, const bool *frozen, lora *a, int *n, size_t *total) {
    int cap = m->n_tensors + (a ? a->n_tensors : 0), k = 0;
    kparam *ps = xcalloc((size_t)(cap ? cap : 1), sizeof *ps);
    size_t off = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        if (frozen && frozen[i]) continue;
        ps[k++] =
            (kparam){t->name, m->params + t->offset, m->grads + t->offset, t->numel, off, t->decay};
        off += t->numel;
    }
    for (int i = 0; a && i < a->n_tensors; i++) {
        const gpt_tensor *t = &a->tensors[i];
        ps[k++] =
            (kparam){t->name, a->params + t->offset, a->grads + t->offset, t->numel, off, t->decay};
        off += t->numel;
    }
    *n = k;
    *total = off;
    return ps;
}

/* ---- --add-class ------------------------------------------------------------------------- */

bool ft_new_class_parse(const char *arg, ft_new_class *c, char *err, size_t errsz) {
    memset(c, 0, sizeof *c);
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n == 0 || n >= sizeof c->name || (eq && (!eq[1] || strlen(eq + 1) >= sizeof c->from))) {
        snprintf(err, errsz, "--add-class '%s': want NAME or NAME=FROM", arg);
        return false;
    }
    memcpy(c->name, arg, n);
    if (eq) strcpy(c->from, eq + 1), c->has_from = true;
    return true;
}

/* The index of name in a JSON array of strings, or -1. */
static int class_index(const jval *classes, const char *name) {
    for (size_t i = 0; classes && i < classes->n; i++)
        if (classes->items[i].type == JSON_STR && !strcmp(classes->items[i].s, name)) return (int)i;
    return -1;
}

static bool same_u64(const jval *tok, const char *key, uint64_t want) {
    uint64_t v;
    const jval *x = json_get(tok, key);
    return !x || (json_u64(x, &v) && v == want); /* absent: nothing to compare */
}

static bool same_palette(const jval *pal, const ktokenizer *t) {
    if (!pal || pal->type != JSON_ARR || pal->n != t->npalette) return false;
    for (size_t i = 0; i < pal->n; i++) {
        const jval *c = &pal->items[i];
        if (c->type != JSON_ARR || c->n != 3) return false;
        for (int k = 0; k < 3; k++) {
            uint64_t v;
            if (!json_u64(&c->items[k], &v) || v != t->palette[i][k]) return false;
        }
    }
    return true;
}

bool ft_check_tokenizer(const jval *ck_tok, const ktokenizer *stream, const ft_new_class *add,
                        int n_add, int *rows, int mean[2], char *err, size_t errsz) {
    static const char *const kinds[] = {"bytes", "levels", "palette", "bpe"};
    const char *kind = kinds[stream->kind];
    if (!ck_tok || ck_tok->type != JSON_OBJ) {
        snprintf(err, errsz, "the checkpoint has no tokenizer to compare with the stream's");
        return false;
    }
    const jval *k = json_get(ck_tok, "kind"), *classes = json_get(ck_tok, "classes");
    uint64_t vocab = 0, class_base = 0;
    json_u64(json_get(ck_tok, "vocab"), &vocab);
    json_u64(json_get(ck_tok, "class_base"), &class_base);
    int nck = classes && classes->type == JSON_ARR ? (int)classes->n : 0;
    if (!k || k->type != JSON_STR || strcmp(k->s, kind)) {
        snprintf(err, errsz, "the checkpoint's tokenizer is %s, the stream's %s",
                 k && k->type == JSON_STR ? k->s : "unknown", kind);
        return false;
    }
    char hash[20];
    snprintf(hash, sizeof hash, "%016llx",
             stream->kind == KTOK_BPE ? (unsigned long long)kbpe_hash(stream->bpe) : 0ull);
    const jval *h = json_get(ck_tok, "hash");
    if (stream->kind == KTOK_BPE && (!h || h->type != JSON_STR || strcmp(h->s, hash))) {
        snprintf(err, errsz, "the checkpoint's BPE vocabulary (hash %s) is not the stream's (%s)",
                 h && h->type == JSON_STR ? h->s : "none", hash);
        return false;
    }
    if ((stream->kind == KTOK_LEVELS && !same_u64(ck_tok, "levels", stream->levels)) ||
        (stream->kind == KTOK_PALETTE && !same_palette(json_get(ck_tok, "palette"), stream))) {
        snprintf(err, errsz, "the checkpoint's %s tokenizer has other %s than the stream's", kind,
                 stream->kind == KTOK_LEVELS ? "levels" : "palette colours");
        return false;
    }
    if (stream->height &&
        (!same_u64(ck_tok, "height", stream->height) || !same_u64(ck_tok, "width", stream->width) ||
         !same_u64(ck_tok, "channels", stream->channels))) {
        snprintf(err, errsz, "the checkpoint's images are another shape than the stream's %ux%ux%u",
                 stream->height, stream->width, stream->channels);
        return false;
    }
    for (int i = 0; i < n_add; i++) {
        if (class_index(classes, add[i].name) >= 0) {
            snprintf(err, errsz, "--add-class %s: the checkpoint already has class '%s'",
                     add[i].name, add[i].name);
            return false;
        }
        int from = add[i].has_from ? class_index(classes, add[i].from) : -1;
        if (add[i].has_from && from < 0) {
            snprintf(err, errsz, "--add-class %s=%s: the checkpoint has no class '%s'", add[i].name,
                     add[i].from, add[i].from);
            return false;
        }
        rows[i] = from < 0 ? -1 : (int)class_base + from;
    }
    bool same = stream->nclasses == (uint32_t)(nck + n_add) && stream->class_base == class_base &&
                stream->vocab == vocab + (uint64_t)n_add;
    for (int i = 0; same && i < (int)stream->nclasses; i++)
        same = !strcmp(stream->classes[i], i < nck ? classes->items[i].s : add[i - nck].name);
    if (!same) {
        snprintf(err, errsz,
                 "the stream's tokenizer (vocabulary %u, %u classes) is not the checkpoint's "
                 "(vocabulary %llu, %d classes)%s: tokenize with the checkpoint's classes%s",
                 stream->vocab, stream->nclasses, (unsigned long long)vocab, nck,
                 n_add ? " plus the --add-class names in order" : "",
                 n_add ? " followed by the new ones" : " (or add new ones with --add-class)");
        return false;
    }
    mean[0] = nck ? (int)class_base : 0;
    mean[1] = nck ? (int)class_base + nck : (int)vocab;
    return true;
}
