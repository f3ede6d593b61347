/* pporun — kiln ppo's loop (stages/ppo.c is its options and main): each iteration generates
 * K completions of a batch of prompts (lib/run/rollout.h), sends them as rollout records to
 * the reward stage (a co-process on a pipe pair, lib/stream/coproc.h) and reads them back
 * scored, then updates the policy and its value head (lib/run/ppo.h) over epochs of
 * minibatches with the engine's optimizer step (lib/run/engine.h). */
#include "run/pporun.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/load.h"
#include "core/rng.h"
#include "core/util.h"
#include "data/rlhf.h"
#include "data/sample.h"
#include "model/generate.h"
#include "model/lora.h"
#include "run/rollout.h"
#include "stream/coproc.h"

/* The prompts of the input, tokenized. */
typedef struct prompt_set {
    int n, cap;
    char **text;
    int32_t **tok;
    int *len;
    uint64_t *id;
} prompt_set;

/* One iteration's experience, R = P * K rows; [R, N] arrays with N = --max-new. */
typedef struct batch {
    int R, N, T;    /* T: the training sequences' length (prompt + completion - 1, at most) */
    int *pi, *plen; /* the prompt of each row (index into the set) and its tokens used */
    const int32_t **ptok;
    krollout_batch g;
    int *len; /* = g.lens */
    float *logp, *ref_logp, *values, *kl, *rewards, *adv, *ret;
    double *raw, *scores;
} batch;

typedef struct ppo_run {
    kppo_opts o;
    kreader *r;
    kwriter *w;
    kengine *e;
    gpt *m, *ref; /* ref NULL with --lora: the policy with adapters off */
    ktokenizer tok;
    krec hdr; /* the input's hdr with the policy's tokenizer */
    uint8_t *allowed;
    krollout_gen *gen;
    prompt_set ps;
    uint64_t iter, ckpt_step; /* the step of the last ckpt written (UINT64_MAX: none) */
    double beta;
    /* the reward stage */
    kcoproc *co;
    kwriter *rw;
    kreader *rr;
    const char *reward_name;
    bool exchanging; /* records are out and answers due: a crash here is the reward stage's */
    /* scratch for forwards of B rows of T tokens */
    int B;
    int32_t *x, *y;
    float *tlogp, *tent, *tval, *wt, *dv, *dh; /* wt: d loss / d logp per position */
    double times[4];
} ppo_run;

static ppo_run *the_run; /* for the exit hook */

/* ---- prompts ------------------------------------------------------------------------------ */

static bool prompt_text(const krec *r, const char **s, size_t *n) {
    if (krec_str(r, KRL_PROMPT, s, n)) return true;
    return krec_is(r, "sample") && krec_str(r, "text", s, n);
}

static void add_prompt(ppo_run *p, const krec *r, const char *s, size_t n) {
    prompt_set *ps = &p->ps;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->text = xrealloc(ps->text, sizeof(char *) * ps->cap);
        ps->tok = xrealloc(ps->tok, sizeof(int32_t *) * ps->cap);
        ps->len = xrealloc(ps->len, sizeof(int) * ps->cap);
        ps->id = xrealloc(ps->id, sizeof(uint64_t) * ps->cap);
    }
    char *text = xmalloc(n + 1);
    memcpy(text, s, n);
    text[n] = 0;
    ps->text[ps->n] = text;
    ps->tok[ps->n] = kgen_text_prompt(&p->tok, text, &ps->len[ps->n]);
    ps->id[ps->n] = krec_u64_or(r, "id", (uint64_t)ps->n);
    ps->n++;
}

/* Every prompt of the input; other records pass through. */
static void read_prompts(ppo_run *p) {
    krec rec;
    while (kreader_next(p->r, &rec)) {
        const char *s;
        size_t n;
        if (prompt_text(&rec, &s, &n))
            add_prompt(p, &rec, s, n);
        else
            kwriter_pass(p->w, &rec);
    }
    if (kiln_stop_signal()) kiln_finish(p->r, p->w);
    if (p->ps.n == 0)
        kiln_fail(p->r, p->w, EX_KILN_DATA,
                  "no prompts in the input (records with `prompt` text, or `sample` records "
                  "with `text`)");
}

/* ---- the reward stage ----------------------------------------------------------------------- */

static void reward_open(ppo_run *p) {
    char err[512];
    p->co = kcoproc_start(p->o.reward_cmd, err, sizeof err);
    if (!p->co) kiln_fail(p->r, p->w, EX_KILN_IO, err);
    p->rw = kwriter_open(kcoproc_in_url(p->co), 1);
    kwriter_hdr_begin(p->rw, &p->hdr, "rollout", p->o.e.seed); /* the policy's tokenizer */
    kwriter_end(p->rw);
    kwriter_flush(p->rw);
    p->exchanging = true; /* its hdr is due */
    p->rr = kreader_open(kcoproc_out_url(p->co), 1);
    p->exchanging = false;
    kcoproc_opened(p->co);
}

/* The last good state downstream, then the message, eos error and the exit code. */
_Noreturn static void fail_with_ckpt(ppo_run *p, int code, const char *why) {
    if (p->ckpt_step != kengine_step(p->e)) kengine_write_ckpt(p->e, p->iter);
    char msg[1024];
    snprintf(msg, sizeof msg,
             "%s; the ckpt record of step %llu (iteration %llu) is the last good state "
             "(resume with --resume)",
             why, (unsigned long long)kengine_step(p->e), (unsigned long long)p->iter);
    kiln_fail(p->r, p->w, code, msg);
}

static const char *reward_state(ppo_run *p) {
    return kcoproc_describe(p->co, 2.0);
}

/* A reader of the reward stage that hits a truncated stream exits from inside the stream
 * layer; this hook runs first and leaves the last good ckpt and the program's name. */
static void at_exit(void) {
    ppo_run *p = the_run;
    if (!p || !p->exchanging) return;
    p->exchanging = false;
    char why[768];
    snprintf(why, sizeof why, "the reward stage '%s' died mid-answer (%s)", p->reward_name,
             reward_state(p));
    kiln_warn("%s", why);
    if (p->ckpt_step != kengine_step(p->e)) kengine_write_ckpt(p->e, p->iter);
    kiln_warn("the ckpt record of step %llu (iteration %llu) is the last good state",
              (unsigned long long)kengine_step(p->e), (unsigned long long)p->iter);
    kwriter_close(p->w, "error");
    p->w = NULL;
}

static void write_rollout(ppo_run *p, batch *b, int r, char *text) {
    int i = b->pi[r], from = b->g.prompt_from[r / p->o.K], n = b->len[r];
    const int32_t *comp = b->g.tokens + (size_t)r * b->N;
    size_t nb = ktok_decode_text(&p->tok, comp, (size_t)n, (uint8_t *)text);
    text[nb] = 0;
    krollout x = {.id = p->ps.id[i],
                  .epoch = p->iter,
                  .k = (uint64_t)(r % p->o.K),
                  .src = {"ppo", 3},
                  .prompt = {p->ps.text[i], strlen(p->ps.text[i])},
                  .completion = {text, nb},
                  .prompt_tokens = {p->ps.tok[i] + from, p->ps.len[i] - from},
                  .completion_tokens = {(int32_t *)comp, n},
                  .logprobs = b->logp + (size_t)r * b->N,
                  .ended = b->g.ended[r],
                  .temperature = 1.0};
    krollout_write(p->rw, &x);
}

/* The reward of answer r (it must be rollout r of this iteration); 0 or 65 with why. */
static int read_reward(ppo_run *p, batch *b, int r, const krec *rec, char *why, size_t whysz) {
    uint64_t id, k, epoch;
    double v;
    if (!krec_u64(rec, KRL_ID, &id) || !krec_u64(rec, KRL_K, &k) ||
        !krec_u64(rec, KRL_EPOCH, &epoch) || id != p->ps.id[b->pi[r]] ||
        k != (uint64_t)(r % p->o.K) || epoch != p->iter)
        return kiln_errf(why, whysz, EX_KILN_DATA,
                         "the reward stage '%s' answered record %llu with another rollout "
                         "than it was sent (id, k and epoch must come back in order)",
                         p->reward_name, (unsigned long long)rec->index);
    if (!krec_f64(rec, KRL_REWARD, &v))
        return kiln_errf(why, whysz, EX_KILN_DATA,
                         "the reward stage '%s': record %llu has no `reward` number",
                         p->reward_name, (unsigned long long)rec->index);
    if (!isfinite(v))
        return kiln_errf(why, whysz, EX_KILN_DATA,
                         "the reward stage '%s' gave reward %g to record %llu (rollout id "
                         "%llu, k %llu)",
                         p->reward_name, v, (unsigned long long)rec->index, (unsigned long long)id,
                         (unsigned long long)k);
    b->raw[r] = v;
    return 0;
}

/* Rows [lo, hi) out, their answers back.  A stop signal returns false. */
static bool exchange_chunk(ppo_run *p, batch *b, int lo, int hi, char *text) {
    char why[768];
    for (int r = lo; r < hi; r++) write_rollout(p, b, r, text);
    kwriter_flush(p->rw);
    if (kwriter_gone(p->rw)) {
        snprintf(why, sizeof why, "the reward stage '%s' closed its input (%s)", p->reward_name,
                 reward_state(p));
        p->exchanging = false;
        fail_with_ckpt(p, EX_KILN_IO, why);
    }
    for (int r = lo; r < hi; r++) {
        krec rec;
        if (!kreader_next(p->rr, &rec)) {
            p->exchanging = false;
            if (kiln_stop_signal()) return false;
            snprintf(why, sizeof why,
                     "the reward stage '%s' ended its stream after %d of %d "
                     "answers (%s)",
                     p->reward_name, r, b->R, reward_state(p));
            fail_with_ckpt(p, EX_KILN_IO, why);
        }
        int rc = read_reward(p, b, r, &rec, why, sizeof why);
        if (rc) {
            p->exchanging = false;
            fail_with_ckpt(p, rc, why);
        }
    }
    return true;
}

/* The batch through the reward stage, in chunks a pipe holds whole (so a filter that answers
 * as it reads never blocks against us).  false on a stop signal. */
static bool score_batch(ppo_run *p, batch *b) {
    size_t cap = kcoproc_pipe_bytes(p->co) / 2, used = 0;
    size_t textsz = (size_t)b->N * ktok_max_bytes(&p->tok) + 1;
    char *text = xmalloc(textsz);
    int lo = 0;
    bool ok = true;
    p->exchanging = true;
    for (int r = 0; ok && r < b->R; r++) {
        /* about what rollout r takes on the wire: tokens, logprobs, texts, field names */
        size_t bytes =
            8 * (size_t)(b->plen[r] + b->N) + textsz + 512 + strlen(p->ps.text[b->pi[r]]);
        if (r > lo && used + bytes > cap) {
            ok = exchange_chunk(p, b, lo, r, text);
            lo = r;
            used = 0;
        }
        used += bytes;
    }
    if (ok) ok = exchange_chunk(p, b, lo, b->R, text);
    p->exchanging = false;
    free(text);
    return ok;
}

static void reward_close(ppo_run *p, const char *status) {
    if (!p->rw) return;
    kwriter_close(p->rw, status);
    p->rw = NULL;
    krec rec;
    if (!kiln_stop_signal())
        while (kreader_next(p->rr, &rec)) continue; /* to its eos */
    kreader_close(p->rr);
    p->rr = NULL;
    int rc = kcoproc_wait(p->co);
    p->co = NULL;
    if (rc && !kiln_stop_signal())
        kiln_warn("the reward stage '%s' exited with status %d", p->reward_name, rc);
}

/* ---- forwards: policy (logprobs, values, entropy) and reference ----------------------------- */

/* Rows rows[0..n) of the batch as training sequences x, y in the B-row scratch (rows past n
 * repeat the first and carry no weight). */
static void fill_rows(ppo_run *p, const batch *b, const int *rows, int n) {
    int T = b->T;
    for (int j = 0; j < p->B; j++) {
        int r = rows[j < n ? j : 0], P = b->plen[r], L = P + b->len[r];
        const int32_t *comp = b->g.tokens + (size_t)r * b->N;
        int32_t *x = p->x + (size_t)j * T, *y = p->y + (size_t)j * T;
        for (int t = 0; t < T; t++) {
            int32_t at = t < P ? b->ptok[r][t] : t < L ? comp[t - P] : (int32_t)p->tok.eos;
            int32_t next = t + 1 < P   ? b->ptok[r][t + 1]
                           : t + 1 < L ? comp[t + 1 - P]
                                       : (int32_t)p->tok.eos;
            x[t] = at;
            y[t] = next;
        }
    }
}

/* From [B, T] per-position values to row r's [N] completion entries (position P-1+i). */
static void gather(const batch *b, int T, int j, int r, const float *src, float *dst) {
    int P = b->plen[r];
    for (int i = 0; i < b->N; i++) dst[i] = i < b->len[r] ? src[(size_t)j * T + P - 1 + i] : 0.0f;
}

static void scatter(const batch *b, int T, int j, int r, const float *src, float *dst) {
    int P = b->plen[r];
    for (int i = 0; i < b->len[r]; i++) dst[(size_t)j * T + P - 1 + i] = src[i];
}

static void policy_forward(ppo_run *p, const batch *b, const int *rows, int n) {
    fill_rows(p, b, rows, n);
    gpt_forward(p->m, p->x, p->y, NULL, p->B, b->T);
    gpt_token_logprobs(p->m, p->tlogp, p->tent);
    ppo_values(p->m, p->tval);
}

static void reference_logprobs(ppo_run *p, batch *b, const int *rows, int n) {
    gpt *m = p->ref ? p->ref : p->m;
    struct lora *adapters = p->m->lora;
    if (!p->ref) p->m->lora = NULL; /* the base alone: the adapters off */
    gpt_forward(m, p->x, p->y, NULL, p->B, b->T);
    p->m->lora = adapters;
    gpt_token_logprobs(m, p->tlogp, NULL);
    for (int j = 0; j < n; j++)
        gather(b, b->T, j, rows[j], p->tlogp, b->ref_logp + (size_t)rows[j] * b->N);
}

/* Old logprobs and values under the policy, and the reference's logprobs, for every row. */
static void forward_batch(ppo_run *p, batch *b) {
    int rows[p->B];
    for (int lo = 0; lo < b->R; lo += p->B) {
        int n = b->R - lo < p->B ? b->R - lo : p->B;
        for (int j = 0; j < n; j++) rows[j] = lo + j;
        policy_forward(p, b, rows, n);
        for (int j = 0; j < n; j++) {
            gather(b, b->T, j, rows[j], p->tlogp, b->logp + (size_t)rows[j] * b->N);
            gather(b, b->T, j, rows[j], p->tval, b->values + (size_t)rows[j] * b->N);
        }
        reference_logprobs(p, b, rows, n);
    }
}

/* ---- one iteration ----------------------------------------------------------------------------
 */

static void batch_alloc(ppo_run *p, batch *b) {
    int R = p->o.prompts * p->o.K, N = p->o.max_new;
    memset(b, 0, sizeof *b);
    b->R = R;
    b->N = N;
    b->pi = xcalloc((size_t)R, sizeof(int));
    b->plen = xcalloc((size_t)R, sizeof(int));
    b->ptok = xcalloc((size_t)R, sizeof(int32_t *));
    float **f[] = {&b->logp, &b->ref_logp, &b->values, &b->kl, &b->rewards, &b->adv, &b->ret};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        *f[i] = xcalloc(xmul((size_t)R, (size_t)N), sizeof(float));
    b->raw = xcalloc((size_t)R, sizeof(double));
    b->scores = xcalloc((size_t)R, sizeof(double));
}

static void batch_free(batch *b) {
    free(b->pi), free(b->plen), free(b->ptok);
    free(b->logp), free(b->ref_logp), free(b->values), free(b->kl), free(b->rewards);
    free(b->adv), free(b->ret), free(b->raw), free(b->scores);
}

/* Completions of this iteration's prompts. */
static void generate(ppo_run *p, batch *b) {
    int P = p->o.prompts, K = p->o.K;
    const int32_t *prompts[P];
    int plen[P], idx[P];
    for (int i = 0; i < P; i++) {
        idx[i] = (int)((p->iter * (uint64_t)P + (uint64_t)i) % (uint64_t)p->ps.n);
        prompts[i] = p->ps.tok[idx[i]];
        plen[i] = p->ps.len[idx[i]];
    }
    krollout_opts ro = krollout_opts_default();
    ro.K = K;
    ro.max_new = b->N;
    ro.allowed = p->allowed;
    ro.eos = (int32_t)p->tok.eos;
    ro.seed = p->o.e.seed;
    krollout_batch_free(&b->g);
    krollout_generate(p->gen, (const int32_t *const *)prompts, plen, P, &ro,
                      p->iter * (uint64_t)P * K, &b->g);
    b->len = b->g.lens;
    b->T = 1;
    for (int r = 0; r < b->R; r++) {
        int i = r / K, from = b->g.prompt_from[i];
        b->pi[r] = idx[i];
        b->ptok[r] = prompts[i] + from;
        b->plen[r] = plen[i] - from;
        if (b->plen[r] + b->len[r] - 1 > b->T) b->T = b->plen[r] + b->len[r] - 1;
    }
}

/* Scores, per-token rewards, advantages and returns. */
static void advantages(ppo_run *p, batch *b) {
    for (int r = 0; r < b->R; r++) b->scores[r] = ppo_score(&p->o.pc, b->raw[r], b->g.ended[r]);
    ppo_config c = p->o.pc;
    c.kl_coef = p->beta;
    ppo_rewards(&c, b->R, b->N, b->len, b->logp, b->ref_logp, b->scores, b->kl, b->rewards);
    ppo_gae(&c, b->R, b->N, b->len, b->rewards, b->values, b->adv, b->ret);
    ppo_whiten(b->R, b->N, b->len, b->adv);
}

typedef struct update_stats {
    double pg, vf, pg_clip, vf_clip, approxkl, ratio, entropy, n;
} update_stats;

/* Minibatch rows[0..n): forward, the clipped losses, backward, one optimizer step. */
static int update_minibatch(ppo_run *p, batch *b, const int *rows, int n, update_stats *u,
                            char *err, size_t errsz) {
    int N = b->N, T = b->T;
    size_t RN = (size_t)n * N;
    float *buf = xcalloc(RN * 11, sizeof(float));
    float *lp = buf, *vp = lp + RN, *olp = vp + RN, *ov = olp + RN, *adv = ov + RN, *ret = adv + RN,
          *dl = ret + RN, *dvv = dl + RN, *ent = dvv + RN;
    int len[n];
    policy_forward(p, b, rows, n);
    for (int j = 0; j < n; j++) {
        size_t o = (size_t)j * N, src = (size_t)rows[j] * N;
        len[j] = b->len[rows[j]];
        gather(b, T, j, rows[j], p->tlogp, lp + o);
        gather(b, T, j, rows[j], p->tval, vp + o);
        gather(b, T, j, rows[j], p->tent, ent + o);
        memcpy(olp + o, b->logp + src, sizeof(float) * N);
        memcpy(ov + o, b->values + src, sizeof(float) * N);
        memcpy(adv + o, b->adv + src, sizeof(float) * N);
        memcpy(ret + o, b->ret + src, sizeof(float) * N);
    }
    ppo_stats s;
    ppo_losses(&p->o.pc, n, N, len, lp, olp, adv, vp, ov, ret, &s, dl, dvv);
    memset(p->wt, 0, sizeof(float) * (size_t)p->B * T);
    memset(p->dv, 0, sizeof(float) * (size_t)p->B * T);
    for (int j = 0; j < n; j++) {
        scatter(b, T, j, rows[j], dl + (size_t)j * N, p->wt);
        scatter(b, T, j, rows[j], dvv + (size_t)j * N, p->dv);
    }
    double ent_sum = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < len[j]; i++) ent_sum += ent[(size_t)j * N + i];
    free(buf);
    gpt_zero_grad(p->m);
    ppo_values_backward(p->m, p->dv, p->dh);
    gpt_backward_weighted_hidden(p->m, p->wt, p->dh);
    if (!isfinite(s.loss))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "iteration %llu: the PPO loss is not finite (lower --lr)",
                         (unsigned long long)p->iter);
    int rc = kengine_update(p->e, err, errsz);
    u->pg += s.pg_loss, u->vf += s.vf_loss, u->pg_clip += s.pg_clipfrac;
    u->vf_clip += s.vf_clipfrac, u->approxkl += s.approxkl, u->ratio += s.ratio;
    u->entropy += s.tokens > 0 ? ent_sum / s.tokens : 0;
    u->n += 1;
    return rc;
}

/* --epochs passes over the batch in shuffled minibatches. */
static int update(ppo_run *p, batch *b, update_stats *u, char *err, size_t errsz) {
    int R = b->R, *perm = xmalloc(sizeof(int) * (size_t)R), rc = 0;
    krng rng;
    krng_init(&rng, p->o.e.seed, p->iter, 0, KRNG_GENERATE + 1); /* the minibatch order */
    memset(u, 0, sizeof *u);
    for (int ep = 0; !rc && ep < p->o.epochs; ep++) {
        for (int i = 0; i < R; i++) perm[i] = i;
        for (int i = R - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)krng_below(&rng, (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int lo = 0; !rc && lo < R; lo += p->B)
            rc = update_minibatch(p, b, perm + lo, R - lo < p->B ? R - lo : p->B, u, err, errsz);
    }
    free(perm);
    return rc;
}

/* TRL's per-iteration metrics, sums over tokens averaged over rows. */
static void write_metrics(ppo_run *p, const batch *b, const update_stats *u) {
    double kl = 0, ent = 0, score = 0, eos = 0;
    for (int r = 0; r < b->R; r++) {
        for (int i = 0; i < b->len[r]; i++) {
            kl += b->kl[(size_t)r * b->N + i];
            ent -= b->logp[(size_t)r * b->N + i];
        }
        score += b->scores[r];
        eos += b->g.ended[r];
    }
    double R = b->R, n = u->n > 0 ? u->n : 1;
    kwriter *w = p->w;
    kwriter_begin(w, "metrics");
    kw_str(w, "stage", "ppo");
    kw_str(w, "objective", "ppo");
    kw_u64(w, "step", kengine_step(p->e));
    kw_u64(w, "iteration", p->iter + 1);
    kw_u64(w, "episode", (p->iter + 1) * (uint64_t)b->R);
    kw_f64(w, "loss", (u->pg + p->o.pc.vf_coef * u->vf) / n);
    kw_f64(w, "objective/kl", kl / R);
    kw_f64(w, "objective/entropy", ent / R);
    kw_f64(w, "objective/non_score_reward", -p->beta * kl / R);
    kw_f64(w, "objective/rlhf_reward", -p->beta * kl / R + score / R);
    kw_f64(w, "objective/scores", score / R);
    kw_f64(w, "policy/approxkl_avg", u->approxkl / n);
    kw_f64(w, "policy/clipfrac_avg", u->pg_clip / n);
    kw_f64(w, "policy/entropy_avg", u->entropy / n);
    kw_f64(w, "loss/policy_avg", u->pg / n);
    kw_f64(w, "loss/value_avg", u->vf / n);
    kw_f64(w, "val/clipfrac_avg", u->vf_clip / n);
    kw_f64(w, "val/ratio", u->ratio / n);
    kw_f64(w, "val/num_eos_tokens", eos);
    kw_f64(w, "kl_coef", p->beta);
    double ptx = kengine_take_ptx_loss(p->e);
    if (!isnan(ptx)) kw_f64(w, "ptx_loss", ptx);
    kw_f64(w, "lr", kengine_lr(p->e));
    kw_f64(w, "grad_norm", kengine_grad_norm(p->e));
    kw_f64(w, "time/generate_s", p->times[0]);
    kw_f64(w, "time/forward_s", p->times[1]);
    kw_f64(w, "time/reward_s", p->times[2]);
    kw_f64(w, "time/update_s", p->times[3]);
    kwriter_end(w);
    kwriter_flush(w);
    if (isatty(2))
        fprintf(stderr, "%s: iteration %llu  score %.4f  kl %.4f  policy %.4f  value %.4f\n",
                kiln_prog(), (unsigned long long)p->iter + 1, score / R, kl / R, u->pg / n,
                u->vf / n);
}

/* Generate, score, update.  0, a stop (returns 0 with the signal set), or an exit code. */
static int iteration(ppo_run *p, batch *b, char *err, size_t errsz) {
    double t0 = kiln_now();
    generate(p, b);
    double t1 = kiln_now();
    forward_batch(p, b);
    double t2 = kiln_now();
    if (!score_batch(p, b)) return 0; /* stopped: this iteration is dropped */
    double t3 = kiln_now();
    advantages(p, b);
    update_stats u;
    int rc = update(p, b, &u, err, errsz);
    if (rc) return rc;
    double t4 = kiln_now();
    p->times[0] = t1 - t0, p->times[1] = t2 - t1, p->times[2] = t3 - t2, p->times[3] = t4 - t3;
    write_metrics(p, b, &u);
    if (p->o.target_kl > 0) {
        double kl = 0;
        for (size_t i = 0; i < (size_t)b->R * b->N; i++) kl += b->kl[i];
        p->beta = ppo_kl_adapt(p->beta, kl / b->R, p->o.target_kl, p->o.kl_horizon, b->R);
    }
    p->iter++;
    if (p->o.every && p->iter % p->o.every == 0) {
        kengine_write_ckpt(p->e, p->iter);
        p->ckpt_step = kengine_step(p->e);
    }
    return 0;
}

/* ---- setup ------------------------------------------------------------------------------------
 */

/* The upstream hdr with the policy's tokenizer (prompts arrive as text, untokenized). */
static void hdr_with_tokenizer(const krec *up, const ktokenizer *tok, msgpack_sbuffer *sb,
                               msgpack_unpacked *unp, krec *out) {
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    const msgpack_object_map *m = &up->map->via.map;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < m->size; i++) keep += !kobj_str_eq(&m->ptr[i].key, "tokenizer");
    msgpack_pack_map(&pk, keep + 1);
    for (uint32_t i = 0; i < m->size; i++) {
        if (kobj_str_eq(&m->ptr[i].key, "tokenizer")) continue;
        msgpack_pack_object(&pk, m->ptr[i].key);
        msgpack_pack_object(&pk, m->ptr[i].val);
    }
    msgpack_pack_str(&pk, 9);
    msgpack_pack_str_body(&pk, "tokenizer", 9);
    ktok_pack(tok, &pk);
    msgpack_unpacked_init(unp);
    size_t off = 0;
    if (msgpack_unpack_next(unp, sb->data, sb->size, &off) != MSGPACK_UNPACK_SUCCESS)
        kiln_die(EX_KILN_SOFTWARE, "hdr with tokenizer does not parse");
    *out = *up;
    out->map = &unp->data;
}

static void open_model(ppo_run *p, msgpack_sbuffer *sb, msgpack_unpacked *unp) {
    kmodel base;
    kpool *tmp = kpool_create(1);
    kmodel_from_file(&base, p->o.e.init, tmp);
    if (!base.has_tok) kiln_die(EX_KILN_DATA, "--init %s: no tokenizer in it", p->o.e.init);
    if (!ktok_is_text(&base.tok))
        kiln_usage_error("--init %s: kiln ppo trains text models (an image model's prompts "
                         "are classes: not yet)",
                         p->o.e.init);
    p->tok = base.tok;
    hdr_with_tokenizer(kreader_hdr(p->r), &p->tok, sb, unp, &p->hdr);
    static kobjective obj = {.name = "ppo", .record = "", .head = GPT_HEAD_SCALAR};
    static const char *const none[] = {NULL};
    obj.metric_names = none;
    p->e = kengine_open(&p->o.e, &obj, &p->hdr, p->w);
    p->m = kengine_model(p->e);
    if (p->m->lora) p->m->lora->training = false; /* no dropout: old and new logprobs agree */
    if (!p->o.e.lora) {                           /* the reference: the starting weights, frozen */
        p->ref = gpt_create(&base.m->cfg, kengine_pool(p->e), 0);
        memcpy(p->ref->params, base.m->params, sizeof(float) * base.m->n_params);
    }
    gpt_free(base.m);
    kpool_free(tmp);
    if (p->o.resume) p->iter = kengine_resume(p->e, p->o.resume);
}

static void alloc_scratch(ppo_run *p) {
    int T = p->m->cfg.n_ctx, C = p->m->cfg.n_embd;
    size_t BT = (size_t)p->B * T;
    p->x = xcalloc(BT, sizeof(int32_t));
    p->y = xcalloc(BT, sizeof(int32_t));
    p->tlogp = xcalloc(BT, sizeof(float));
    p->tent = xcalloc(BT, sizeof(float));
    p->tval = xcalloc(BT, sizeof(float));
    p->wt = xcalloc(BT, sizeof(float));
    p->dv = xcalloc(BT, sizeof(float));
    p->dh = xcalloc(xmul(BT, (size_t)C), sizeof(float));
}

void kppo_opts_resolve(kppo_opts *o) {
    char err[512];
    if (!o->e.init) kiln_usage_error("--init FILE is required: the model to start from");
    if (!o->reward_cmd) kiln_usage_error("give the reward stage: --reward CMD");
    if (o->e.lora && !o->e.train) o->e.train = "score.weight"; /* the value head trains */
    o->e.finetune = true;
    uint64_t per_iter = (uint64_t)o->epochs *
                        (((uint64_t)o->prompts * o->K + o->minibatch - 1) / (uint64_t)o->minibatch);
    o->e.steps = o->iterations * per_iter;
    if (!o->e.have_lr) o->e.lr = o->e.lora ? 1e-4 : 1e-5, o->e.have_lr = true;
    if (!o->e.have_warmup) o->e.warmup = 0, o->e.have_warmup = true;
    if (kengine_opts_resolve(&o->e, err, sizeof err)) kiln_usage_error("%s", err);
}

void kppo_opts_init(kppo_opts *o) {
    *o = (kppo_opts){0};
    kengine_opts_init(&o->e);
    ppo_config_default(&o->pc);
    o->prompts = 8, o->K = 4, o->max_new = 32, o->epochs = 4, o->minibatch = 8;
    o->iterations = 20, o->kl_horizon = 10000;
}

void kppo_train(const kppo_opts *opts, kreader *r, kwriter *w) {
    static ppo_run run;
    ppo_run *p = &run;
    p->o = *opts;
    kppo_opts *o = &p->o;
    p->r = r, p->w = w;
    p->reward_name = o->reward_cmd;
    p->ckpt_step = UINT64_MAX;

    msgpack_sbuffer sb;
    msgpack_unpacked unp;
    open_model(p, &sb, &unp);
    if (!o->e.have_seed) o->e.seed = krec_u64_or(kreader_hdr(p->r), "seed", 0);
    p->beta = o->pc.kl_coef;
    p->B = o->minibatch;
    p->allowed = kgen_allowed(&p->tok);
    kiln_drain_on_stop(false);
    read_prompts(p);
    the_run = p;
    atexit(at_exit);
    reward_open(p);
    if (o->max_new >= p->m->cfg.n_ctx)
        kiln_usage_error("--max-new must be below the context (%d)", p->m->cfg.n_ctx);
    p->gen = krollout_gen_create(p->m, kengine_pool(p->e));
    alloc_scratch(p);

    batch b;
    batch_alloc(p, &b);
    char err[512];
    int rc = 0;
    while (!rc && p->iter < o->iterations && !kiln_stop_signal() && !kwriter_gone(p->w))
        rc = iteration(p, &b, err, sizeof err);
    if (rc) fail_with_ckpt(p, rc, err);
    if (p->ckpt_step != kengine_step(p->e) && !kwriter_gone(p->w))
        kengine_write_ckpt(p->e, p->iter);
    the_run = NULL;
    reward_close(p, kiln_stop_signal() ? "interrupted" : "ok");
    krollout_batch_free(&b.g);
    batch_free(&b);
    krollout_gen_free(p->gen);
    free(p->x), free(p->y), free(p->tlogp), free(p->tent), free(p->tval), free(p->wt);
    free(p->dv), free(p->dh), free(p->allowed);
    gpt_free(p->ref);
    kengine_free(p->e);
    msgpack_unpacked_destroy(&unp); /* the hdr the engine borrowed */
    msgpack_sbuffer_destroy(&sb);
}
