/* rlhf — writing and reading rollout and pref records. */
#include "data/rlhf.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "data/sample.h"

/* ---- small field helpers ---------------------------------------------------------------- */

static void put_str(kwriter *w, const char *key, kstrv v) {
    if (v.s) kw_strn(w, key, v.s, v.n);
}

static void put_tokens(kwriter *w, const char *key, ktokv v) {
    if (!v.tok) return;
    ktensor t = ktensor_1d(KT_I32, v.tok, (uint64_t)v.n);
    kw_tensor(w, key, &t);
}

/* An optional string: absent is fine, another type is not. */
static bool get_str(const krec *r, const char *key, kstrv *v, bool required, char *err,
                    size_t errsz) {
    *v = (kstrv){0};
    if (!krec_get(r, key))
        return !required || !kiln_errf(err, errsz, EX_KILN_DATA, "no `%s` field", key);
    if (!krec_str(r, key, &v->s, &v->n))
        return kiln_errf(err, errsz, EX_KILN_DATA, "`%s` is not text", key), false;
    return true;
}

/* A vector of `dtype` (I32 or F32) copied out into *data, its length in *n. */
static bool get_vec(const krec *r, const char *key, kdtype dtype, void **data, int *n,
                    bool required, char *err, size_t errsz) {
    *data = NULL, *n = 0;
    ktensor t;
    if (!krec_get(r, key))
        return !required || !kiln_errf(err, errsz, EX_KILN_DATA, "no `%s` field", key);
    if (!krec_tensor(r, key, &t) || t.dtype != dtype || t.ndim != 1 || t.shape[0] > INT32_MAX)
        return kiln_errf(err, errsz, EX_KILN_DATA, "`%s` is not a %s [n] vector", key,
                         kdtype_name(dtype)),
               false;
    *n = (int)t.shape[0];
    *data = xmalloc(t.nbytes ? t.nbytes : 1);
    ktensor_copy(&t, *data);
    return true;
}

static bool get_tokens(const krec *r, const char *key, ktokv *v, bool required, char *err,
                       size_t errsz) {
    void *d;
    bool ok = get_vec(r, key, KT_I32, &d, &v->n, required, err, errsz);
    v->tok = d;
    return ok;
}

/* ---- rollout ---------------------------------------------------------------------------- */

/* A record's first fields, the ones rollouts and prefs share. */
static void begin(kwriter *w, const char *type, uint64_t id, uint64_t epoch, kstrv src) {
    kwriter_begin(w, type);
    kw_u64(w, KRL_ID, id);
    kw_u64(w, KRL_EPOCH, epoch);
    put_str(w, KRL_SRC, src);
}

void krollout_write(kwriter *w, const krollout *r) {
    begin(w, KROLLOUT, r->id, r->epoch, r->src);
    kw_u64(w, KRL_K, r->k);
    put_str(w, KRL_PROMPT, r->prompt);
    put_str(w, KRL_COMPLETION, r->completion);
    put_str(w, KRL_LABEL, r->label);
    if (r->image.data) kw_tensor(w, KRL_IMAGE, &r->image);
    put_tokens(w, KRL_PROMPT_TOKENS, r->prompt_tokens);
    put_tokens(w, KRL_COMPLETION_TOKENS, r->completion_tokens);
    ktensor lp = ktensor_1d(KT_F32, r->logprobs, (uint64_t)r->completion_tokens.n);
    kw_tensor(w, KRL_LOGPROBS, &lp);
    kw_bool(w, KRL_ENDED, r->ended);
    kw_f64(w, KRL_TEMPERATURE, r->temperature);
    if (r->has_reward) kw_f64(w, KRL_REWARD, r->reward);
    put_str(w, KRL_JUDGE, r->judge);
    kwriter_end(w);
}

static bool read_rollout_fields(const krec *rec, krollout *r, char *err, size_t errsz) {
    void *lp;
    int nlp;
    const msgpack_object *ended = krec_get(rec, KRL_ENDED);
    if (!krec_u64(rec, KRL_ID, &r->id))
        return kiln_errf(err, errsz, EX_KILN_DATA, "no `id` (a whole number)"), false;
    r->epoch = krec_u64_or(rec, KRL_EPOCH, 0);
    r->k = krec_u64_or(rec, KRL_K, 0);
    if (!get_str(rec, KRL_SRC, &r->src, false, err, errsz) ||
        !get_str(rec, KRL_PROMPT, &r->prompt, false, err, errsz) ||
        !get_str(rec, KRL_COMPLETION, &r->completion, false, err, errsz) ||
        !get_str(rec, KRL_LABEL, &r->label, false, err, errsz) ||
        !get_str(rec, KRL_JUDGE, &r->judge, false, err, errsz) ||
        !get_tokens(rec, KRL_PROMPT_TOKENS, &r->prompt_tokens, false, err, errsz) ||
        !get_tokens(rec, KRL_COMPLETION_TOKENS, &r->completion_tokens, true, err, errsz) ||
        !get_vec(rec, KRL_LOGPROBS, KT_F32, &lp, &nlp, true, err, errsz))
        return false;
    r->logprobs = lp;
    if (nlp != r->completion_tokens.n)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%d logprobs for %d completion tokens", nlp,
                         r->completion_tokens.n),
               false;
    if (ended && ended->type != MSGPACK_OBJECT_BOOLEAN)
        return kiln_errf(err, errsz, EX_KILN_DATA, "`ended` is not a boolean"), false;
    r->ended = ended && ended->via.boolean;
    if (!krec_f64(rec, KRL_TEMPERATURE, &r->temperature)) r->temperature = 1.0;
    r->has_reward = krec_f64(rec, KRL_REWARD, &r->reward);
    if (krec_get(rec, KRL_IMAGE) && !krec_tensor(rec, KRL_IMAGE, &r->image))
        return kiln_errf(err, errsz, EX_KILN_DATA, "`image` is not a tensor"), false;
    return true;
}

bool krollout_read(const krec *rec, krollout *r, char *err, size_t errsz) {
    *r = (krollout){0};
    if (read_rollout_fields(rec, r, err, errsz)) return true;
    krollout_free(r);
    return false;
}

void krollout_free(krollout *r) {
    free(r->prompt_tokens.tok), free(r->completion_tokens.tok), free(r->logprobs);
    *r = (krollout){0};
}

bool krollout_same_prompt(const krec *a, const krec *b) {
    kstrv sa = {0}, sb = {0};
    krec_str(a, KRL_SRC, &sa.s, &sa.n), krec_str(b, KRL_SRC, &sb.s, &sb.n);
    return krec_u64_or(a, KRL_ID, 0) == krec_u64_or(b, KRL_ID, 1) &&
           krec_u64_or(a, KRL_EPOCH, 0) == krec_u64_or(b, KRL_EPOCH, 0) && sa.n == sb.n &&
           (!sa.n || !memcmp(sa.s, sb.s, sa.n));
}

void krollout_write_scored(kwriter *w, const krec *rec, double reward, const char *judge) {
    static const char *const skip[] = {KRL_REWARD, KRL_JUDGE, NULL};
    kwriter_begin(w, rec->t);
    kw_copy_fields(w, rec, skip);
    kw_f64(w, KRL_REWARD, reward);
    kw_str(w, KRL_JUDGE, judge);
    kwriter_end(w);
}

/* ---- pref ------------------------------------------------------------------------------- */

bool kpref_is(const krec *rec) {
    return krec_get(rec, KRL_PROMPT) && krec_get(rec, KPREF_CHOSEN) &&
           krec_get(rec, KPREF_REJECTED);
}

void kpref_write(kwriter *w, const kpref *p) {
    begin(w, KPREF, p->id, p->epoch, p->src);
    put_str(w, KRL_PROMPT, p->prompt);
    put_str(w, KPREF_CHOSEN, p->chosen);
    put_str(w, KPREF_REJECTED, p->rejected);
    put_str(w, KPREF_BY, p->by);
    put_tokens(w, KRL_PROMPT_TOKENS, p->prompt_tokens);
    put_tokens(w, KPREF_CHOSEN_TOKENS, p->chosen_tokens);
    put_tokens(w, KPREF_REJECTED_TOKENS, p->rejected_tokens);
    if (p->has_scores) {
        kw_f64(w, KPREF_CHOSEN_SCORE, p->chosen_score);
        kw_f64(w, KPREF_REJECTED_SCORE, p->rejected_score);
    }
    if (p->has_ref) {
        kw_f64(w, KPREF_REF_CHOSEN, p->ref_chosen_logps);
        kw_f64(w, KPREF_REF_REJECTED, p->ref_rejected_logps);
    }
    kwriter_end(w);
}

/* Two f64 fields that come together: both or neither. */
static bool get_f64_pair(const krec *rec, const char *a, const char *b, double *x, double *y,
                         bool *have, char *err, size_t errsz) {
    bool ha = krec_f64(rec, a, x), hb = krec_f64(rec, b, y);
    *have = ha && hb;
    if ((krec_get(rec, a) && !ha) || (krec_get(rec, b) && !hb) || ha != hb)
        return kiln_errf(err, errsz, EX_KILN_DATA, "`%s` and `%s` must both be numbers", a, b),
               false;
    return true;
}

static bool read_pref_fields(const krec *rec, kpref *p, char *err, size_t errsz) {
    p->id = krec_u64_or(rec, KRL_ID, rec->seq);
    p->epoch = krec_u64_or(rec, KRL_EPOCH, 0);
    return get_str(rec, KRL_PROMPT, &p->prompt, true, err, errsz) &&
           get_str(rec, KPREF_CHOSEN, &p->chosen, true, err, errsz) &&
           get_str(rec, KPREF_REJECTED, &p->rejected, true, err, errsz) &&
           get_str(rec, KRL_SRC, &p->src, false, err, errsz) &&
           get_str(rec, KPREF_BY, &p->by, false, err, errsz) &&
           get_tokens(rec, KRL_PROMPT_TOKENS, &p->prompt_tokens, false, err, errsz) &&
           get_tokens(rec, KPREF_CHOSEN_TOKENS, &p->chosen_tokens, false, err, errsz) &&
           get_tokens(rec, KPREF_REJECTED_TOKENS, &p->rejected_tokens, false, err, errsz) &&
           get_f64_pair(rec, KPREF_CHOSEN_SCORE, KPREF_REJECTED_SCORE, &p->chosen_score,
                        &p->rejected_score, &p->has_scores, err, errsz) &&
           get_f64_pair(rec, KPREF_REF_CHOSEN, KPREF_REF_REJECTED, &p->ref_chosen_logps,
                        &p->ref_rejected_logps, &p->has_ref, err, errsz);
}

bool kpref_read(const krec *rec, kpref *p, char *err, size_t errsz) {
    *p = (kpref){0};
    if (read_pref_fields(rec, p, err, errsz)) return true;
    kpref_free(p);
    return false;
}

void kpref_free(kpref *p) {
    free(p->prompt_tokens.tok), free(p->chosen_tokens.tok), free(p->rejected_tokens.tok);
    *p = (kpref){0};
}
