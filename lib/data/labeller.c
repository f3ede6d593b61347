/* labeller — kiln label's pairs (lib/data/labeller.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/afile.h"
#include "core/util.h"
#include "data/labeller.h"
#include "data/png.h"
#include "data/rlhf.h"

_Noreturn static void bad_rollout(const krec *r, const char *what) {
    kiln_die(EX_KILN_DATA, "record %llu: a rollout without %s", (unsigned long long)r->seq, what);
}

/* A rollout record kept as one completion of its prompt's group. */
void klabeller_add(klabeller *S, const krec *in) {
    uint64_t id;
    if (!krec_u64(in, KRL_ID, &id)) bad_rollout(in, "an id (u64)");
    kstored *st = kstored_copy(in);
    const krec *r = &st->rec;
    klabel_completion c = {.rec = st};
    bool image = krec_image(r, &c.im); /* an image model's rollout: its image is the completion */
    if (image || !krec_str(r, KRL_COMPLETION, &c.text, &c.len)) c.text = NULL, c.len = 0;
    if (!image && !c.text) bad_rollout(in, "a completion (text) or an image");
    klabel_group *last = S->ng ? &S->g[S->ng - 1] : NULL;
    if (!last || last->id != id) {
        S->g = xrealloc(S->g, xmul((size_t)S->ng + 1, sizeof *S->g));
        last = &S->g[S->ng++];
        *last = (klabel_group){.id = id};
        if (!(image && krec_str(r, KRL_LABEL, &last->prompt, &last->plen)) &&
            !krec_str(r, KRL_PROMPT, &last->prompt, &last->plen) &&
            !krec_str(r, KRL_LABEL, &last->prompt, &last->plen))
            bad_rollout(in, "a prompt (text) or a label");
    }
    c.k = krec_u64_or(r, KRL_K, (uint64_t)last->n);
    last->c = xrealloc(last->c, xmul((size_t)last->n + 1, sizeof *last->c));
    last->c[last->n++] = c;
}

static void completion_bytes(const klabel_completion *c, const void **p, size_t *n) {
    *p = c->text ? (const void *)c->text : c->im.data;
    *n = c->text ? c->len : kimage_bytes(&c->im);
}

static klabel_key pair_key(const klabel_group *G, int a, int b) {
    const void *pieces[3] = {G->prompt};
    size_t lens[3] = {G->plen};
    completion_bytes(&G->c[a], &pieces[1], &lens[1]);
    completion_bytes(&G->c[b], &pieces[2], &lens[2]);
    return (klabel_key){G->id, G->c[a].k, G->c[b].k, klabel_hash(pieces, lens, 3)};
}

/* With --shuffle the hash of the pair's texts says which goes left: the same in every
 * session, and half of the first completions on the right. */
static void add_pair(klabeller *S, int g, int a, int b) {
    klabel_key key = pair_key(&S->g[g], a, b);
    if (S->shuffle && key.hash >> 63) {
        int t = a;
        a = b, b = t;
        key = pair_key(&S->g[g], a, b);
    }
    S->p = xrealloc(S->p, xmul(S->np + 1, sizeof *S->p));
    S->p[S->np++] = (klabel_pair){g, a, b, key, false};
}

/* Pairs (0,1) of each prompt, or every pair with all_pairs. */
void klabeller_pairs(klabeller *S, bool all_pairs) {
    for (int g = 0; g < S->ng; g++) {
        int n = S->g[g].n;
        if (n < 2) S->lonely++;
        for (int a = 0; a + 1 < n && (all_pairs || a == 0); a++)
            for (int b = a + 1; b < n && (all_pairs || b == 1); b++) add_pair(S, g, a, b);
    }
}

/* ---- the output ------------------------------------------------------------------------- */

static void put_tokens(kwriter *w, const krec *r, const char *from, const char *to) {
    ktensor t;
    if (krec_tensor(r, from, &t)) kw_tensor(w, to, &t);
}

static void put_side(kwriter *w, const klabel_completion *c, const char *name) {
    char key[32];
    kw_strn(w, name, c->text ? c->text : "", c->len); /* images: empty, as kiln judge writes */
    if (!c->text) {
        ktensor t;
        krec_tensor(&c->rec->rec, KRL_IMAGE, &t);
        snprintf(key, sizeof key, "%s_image", name);
        kw_tensor(w, key, &t);
    }
    snprintf(key, sizeof key, "%s_k", name);
    kw_u64(w, key, c->k);
    snprintf(key, sizeof key, "%s_tokens", name);
    put_tokens(w, &c->rec->rec, KRL_COMPLETION_TOKENS, key);
}

static void write_pref(kwriter *w, const klabel_group *G, const klabel_completion *won,
                       const klabel_completion *lost) {
    const krec *r = &won->rec->rec;
    kwriter_begin(w, KPREF);
    kw_u64(w, KRL_ID, G->id);
    const msgpack_object *o;
    if ((o = krec_get(r, KRL_EPOCH))) kw_obj(w, KRL_EPOCH, o);
    if ((o = krec_get(r, KRL_SRC))) kw_obj(w, KRL_SRC, o);
    kw_strn(w, KRL_PROMPT, G->prompt, G->plen);
    put_side(w, won, KPREF_CHOSEN);
    put_side(w, lost, KPREF_REJECTED);
    kw_str(w, KPREF_BY, "person");
    put_tokens(w, r, KRL_PROMPT_TOKENS, KRL_PROMPT_TOKENS);
    kwriter_end(w);
}

/* A pref record for every pair of the input decided left or right. */
uint64_t klabeller_write_prefs(const klabeller *S, kwriter *w) {
    uint64_t n = 0;
    for (size_t i = 0; i < S->np; i++) {
        const klabel_pair *p = &S->p[i];
        klabel_choice c = klabels_find(S->L, &p->key);
        if (c != KLABEL_LEFT && c != KLABEL_RIGHT) continue;
        const klabel_group *G = &S->g[p->g];
        const klabel_completion *l = &G->c[p->a], *r = &G->c[p->b];
        write_pref(w, G, c == KLABEL_LEFT ? l : r, c == KLABEL_LEFT ? r : l);
        n++;
    }
    return n;
}

/* Decided pairs of this input, by kind (KLABEL_LEFT..KLABEL_SKIP); returns their sum. */
size_t klabeller_decided(const klabeller *S, uint64_t counts[4]) {
    memset(counts, 0, 4 * sizeof *counts);
    size_t n = 0;
    for (size_t i = 0; i < S->np; i++) {
        klabel_choice c = klabels_find(S->L, &S->p[i].key);
        if (c != KLABEL_NONE) counts[c]++, n++;
    }
    return n;
}

/* The first pair to show from `from` on, wrapping: undecided, or with --skipped skipped
 * before this session; -1 when there is none. */
long klabeller_next(const klabeller *S, size_t from) {
    for (size_t i = 0; i < S->np; i++) {
        size_t j = (from + i) % S->np;
        klabel_choice c = klabels_find(S->L, &S->p[j].key);
        if (c == KLABEL_NONE || (S->skipped && c == KLABEL_SKIP && !S->p[j].now)) return (long)j;
    }
    return -1;
}

long klabeller_find(const klabeller *S, const klabel_key *key) {
    for (size_t i = 0; i < S->np; i++)
        if (!memcmp(&S->p[i].key, key, sizeof *key)) return (long)i;
    return -1;
}

/* The pair's images as DIR/left.png and DIR/right.png, replaced atomically, for a viewer.
 * 0, or 74 with the message in err (the session ends and the terminal is restored). */
int klabeller_write_pngs(const klabeller *S, const klabel_pair *p, char *err, size_t errsz) {
    const klabel_group *G = &S->g[p->g];
    const klabel_completion *side[2] = {&G->c[p->a], &G->c[p->b]};
    static const char *const names[2] = {"left.png", "right.png"};
    for (int i = 0; i < 2; i++) {
        if (side[i]->text) continue;
        char path[4096], why[512];
        snprintf(path, sizeof path, "%s/%s", S->png_dir, names[i]);
        afile *a = afile_open(path, why, sizeof why);
        if (a && !kpng_write_file(afile_temp_path(a), &side[i]->im, why, sizeof why)) {
            afile_abort(a);
            a = NULL;
        }
        if (!a || afile_commit(a, why, sizeof why))
            return kiln_errf(err, errsz, EX_KILN_IO, "--png-dir: %s", why);
    }
    return 0;
}

void klabeller_free(klabeller *S) {
    for (int g = 0; g < S->ng; g++) {
        for (int i = 0; i < S->g[g].n; i++) {
            kimage_free(&S->g[g].c[i].im);
            kstored_free(S->g[g].c[i].rec);
        }
        free(S->g[g].c);
    }
    free(S->g), free(S->p);
    klabels_close(S->L);
}