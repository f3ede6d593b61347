/* kiln-reward — rollouts in, the same rollouts out with `reward` from a reward model: the
 * scalar head of a checkpoint at the last token of prompt + completion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/load.h"
#include "data/rlhf.h"
#include "data/sample.h"
#include "run/rollout.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "add a reward model's score to each rollout",
    .usage = "kiln reward --ckpt RM.safetensors [-B ROWS] [--in URL] [--out URL]",
    .notes =
        "Each `rollout` record comes out unchanged but for `reward` (f64: the model's scalar\n"
        "head at the last token of prompt_tokens + completion_tokens, the EOS included when\n"
        "the rollout ended on it; a sequence longer than the context keeps its last tokens)\n"
        "and `judge` (\"reward:FILE\").  Other records pass through, in order.  The reward\n"
        "model is a scalar-head checkpoint (kiln train --objective reward); its tokenizer must\n"
        "be the stream's (the hdr's, which kiln rollout writes).  Any program that does the\n"
        "same to the stream is a reward stage too (docs/stages-rlhf.md).\n"
        "example:\n"
        "  kiln rollout --ckpt policy.safetensors < prompts.rec | kiln reward --ckpt "
        "rm.safetensors\n"
        "  kiln reward --ckpt rm.safetensors --in @tcp://*:5555 --out tcp://policy:5556\n",
};

typedef struct scorer {
    const char *ckpt;
    char judge[4096];
    gpt *m;
    kwriter *w;
    kstored **recs; /* the batch's records, until their rewards are known */
    int32_t **seqs;
    int *lens, n, rows;
} scorer;

/* The stream's tokenizer (the hdr's) must be the reward model's: tokens mean the same. */
static void check_tokenizer(const kmodel *km, const krec *hdr, const char *ckpt) {
    const msgpack_object *o = krec_get(hdr, "tokenizer");
    ktokenizer tok;
    char err[256], a[128], b[128];
    if (!o) kiln_die(EX_KILN_DATA, "the stream's hdr has no tokenizer to check %s against", ckpt);
    if (!ktok_from_obj(o, &tok, err, sizeof err)) kiln_die(EX_KILN_DATA, "hdr: %s", err);
    if (km->has_tok && !ktok_same(&km->tok, &tok)) {
        ktok_describe(&km->tok, a, sizeof a), ktok_describe(&tok, b, sizeof b);
        kiln_die(EX_KILN_DATA,
                 "%s: the reward model's tokenizer (%s) is not the stream's (%s): its scores "
                 "would be of other tokens",
                 ckpt, a, b);
    }
    ktok_free(&tok);
}

/* prompt_tokens + completion_tokens of a rollout, checked against the vocabulary.  A rollout
 * longer than the context (an image model's: class token + n_ctx pixels) is cut as the reward
 * model's training pairs were (lib/data/prefpair.c): the end of its prompt, then the start of
 * its completion, so it scores the tokens it learnt to score. */
static int32_t *sequence_of(const scorer *s, const krec *rec, int *len) {
    char err[256];
    krollout x;
    if (!krollout_read(rec, &x, err, sizeof err))
        kiln_die(EX_KILN_DATA, "record %llu (%s): %s", (unsigned long long)rec->seq, rec->t, err);
    int P = x.prompt_tokens.n, N = x.completion_tokens.n, T = s->m->cfg.n_ctx;
    if (P + N < 1)
        kiln_die(EX_KILN_DATA, "record %llu: no tokens to score", (unsigned long long)rec->seq);
    const int32_t *prompt = x.prompt_tokens.tok;
    if (P + N > T && P > 0) {
        int keep = T - N < 1 ? 1 : T - N;
        if (keep < P) prompt += P - keep, P = keep;
        if (P + N > T) N = T - P;
    }
    int32_t *seq = xmalloc(xmul((size_t)(P + N), sizeof(int32_t)));
    if (P) memcpy(seq, prompt, (size_t)P * sizeof(int32_t));
    if (N) memcpy(seq + P, x.completion_tokens.tok, (size_t)N * sizeof(int32_t));
    for (int i = 0; i < P + N; i++)
        if (seq[i] < 0 || seq[i] >= s->m->cfg.vocab)
            kiln_die(EX_KILN_DATA, "record %llu: token %d is outside %s's vocabulary (%d)",
                     (unsigned long long)rec->seq, seq[i], s->ckpt, s->m->cfg.vocab);
    krollout_free(&x);
    *len = P + N;
    return seq;
}

static void flush(scorer *s) {
    if (!s->n) return;
    float *r = xmalloc(xmul((size_t)s->n, sizeof(float)));
    krollout_rewards(s->m, (const int32_t *const *)s->seqs, s->lens, s->n, r);
    for (int i = 0; i < s->n; i++) {
        if (!kwriter_gone(s->w)) krollout_write_scored(s->w, &s->recs[i]->rec, r[i], s->judge);
        kstored_free(s->recs[i]), free(s->seqs[i]);
    }
    s->n = 0;
    free(r);
}

/* Before the reader waits: the rollouts held so far are scored, so a caller that sent fewer
 * than -B and waits for their rewards gets them (kiln_on_input_wait). */
static void flush_on_wait(void *ctx) {
    flush(ctx);
}

static void add(scorer *s, const krec *rec) {
    s->seqs[s->n] = sequence_of(s, rec, &s->lens[s->n]);
    s->recs[s->n++] = kstored_copy(rec);
    if (s->n == s->rows) flush(s);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    const char *ckpt = NULL;
    int rows = 16, threads = 0;
    kopt opts[] = {
        KOPT_STRING(0, "ckpt", &ckpt, "FILE", "the reward model: a scalar-head checkpoint",
                    .flags = KOPT_REQUIRED),
        KOPT_INT('B', "rows", &rows, "N", 1, 4096, "rollouts per forward (default 16)"),
        KOPT_THREADS(&threads),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, opts, argc, argv);
    kpool *pool = kpool_create(threads);
    kmodel km;
    kmodel_from_file(&km, ckpt, pool);
    if (km.m->cfg.head != GPT_HEAD_SCALAR)
        kiln_die(EX_KILN_DATA,
                 "%s is not a reward model: it has a language-model head, no scalar head (kiln "
                 "train --objective reward makes one)",
                 ckpt);
    kreader *r = kiln_cli_reader(&cli);
    check_tokenizer(&km, kreader_hdr(r), ckpt);
    scorer s = {.ckpt = ckpt, .m = km.m, .rows = rows};
    snprintf(s.judge, sizeof s.judge, "reward:%s", ckpt);
    s.recs = xcalloc((size_t)rows, sizeof *s.recs);
    s.seqs = xcalloc((size_t)rows, sizeof *s.seqs);
    s.lens = xcalloc((size_t)rows, sizeof *s.lens);
    s.w = kiln_cli_writer(&cli);
    kwriter_hdr_begin(s.w, kreader_hdr(r), NULL, krec_u64_or(kreader_hdr(r), "seed", 0));
    kw_str(s.w, "reward_model", ckpt);
    kwriter_end(s.w);
    kiln_on_input_wait(flush_on_wait, &s);
    krec rec;
    while (!kwriter_gone(s.w) && kreader_next(r, &rec)) {
        if (krec_is(&rec, KROLLOUT)) {
            add(&s, &rec);
        } else {
            flush(&s); /* the same records in the same order */
            kwriter_pass(s.w, &rec);
        }
        if (kiln_stop_signal()) break;
    }
    kiln_on_input_wait(NULL, NULL);
    flush(&s);
    free(s.recs), free(s.seqs), free(s.lens);
    kmodel_free(&km);
    kpool_free(pool);
    kiln_finish(r, s.w);
}
