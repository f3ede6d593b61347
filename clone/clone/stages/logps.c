/* kiln-logps — preference pairs in, the same pairs with the reference model's completion
 * log-probabilities added (TRL's precompute_ref_log_probs), for kiln train --objective dpo. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/load.h"
#include "core/util.h"
#include "data/prefpair.h"
#include "data/sample.h"
#include "run/dpo.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "add a reference model's log-probabilities to preference pairs (for DPO)",
    .usage = "kiln logps --ckpt REF.safetensors [--adapter FILE]",
    .notes =
        "Every pref record, and every record of another type with chosen and rejected (kiln\n"
        "load jsonl: of TRL's {\"prompt\",\"chosen\",\"rejected\"} lines), gets ref_chosen_logps\n"
        "and ref_rejected_logps (f64, TRL's names): the sum of log p of each completion's\n"
        "tokens given its prompt under the checkpoint.  Tokens are the record's\n"
        "prompt_tokens/chosen_tokens/rejected_tokens when it has them, else its text\n"
        "tokenized with the checkpoint's tokenizer (docs/rlhf.md).  A stream whose hdr\n"
        "carries another tokenizer than the checkpoint's is refused (65).  A pair without\n"
        "chosen or rejected exits 65 naming the record.\n"
        "A rollout record (kiln rollout) gets ref_logprobs, F32 [N]: log p of each completion\n"
        "token under the checkpoint, beside its `logprobs` (the policy's): sum(logprobs -\n"
        "ref_logprobs) estimates the completion's KL to the reference (TRL's k1; rollouts at\n"
        "temperature 1).  Other records pass through.\n"
        "example:\n"
        "  kiln load jsonl:prefs.jsonl | kiln logps --ckpt base.safetensors \\\n"
        "    | kiln train --objective dpo --init base.safetensors --steps 100 | kiln ckpt --dir "
        "dpo\n",
};

/* The stream's tokenizer, when it has one, must be the model's. */
static void check_tokenizer(const kmodel *km, const krec *hdr, const char *ckpt) {
    const msgpack_object *o = krec_get(hdr, "tokenizer");
    ktokenizer tok;
    char err[256], a[128], b[128];
    if (!km->has_tok) kiln_die(EX_KILN_DATA, "%s: the checkpoint has no tokenizer", ckpt);
    if (!o) return;
    if (!ktok_from_obj(o, &tok, err, sizeof err)) kiln_die(EX_KILN_DATA, "hdr: %s", err);
    if (!ktok_same(&km->tok, &tok)) {
        ktok_describe(&tok, a, sizeof a), ktok_describe(&km->tok, b, sizeof b);
        kiln_die(EX_KILN_DATA, "%s: the model's tokenizer (%s) is not the stream's (%s)", ckpt, b,
                 a);
    }
    ktok_free(&tok);
}

/* Per-token log-probabilities of a rollout's completion under m, into lp [N]; 0 or 65. */
static int rollout_logps(gpt *m, const krec *r, int32_t *x, int32_t *y, uint8_t *mask, float *lp,
                         int *n_out, char *err, size_t errsz) {
    ktensor pt, ct;
    unsigned long long seq = (unsigned long long)r->seq;
    if (!krec_tensor(r, "prompt_tokens", &pt) || !krec_tensor(r, "completion_tokens", &ct) ||
        pt.dtype != KT_I32 || ct.dtype != KT_I32 || pt.ndim != 1 || ct.ndim != 1 || pt.shape[0] < 1)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: a rollout needs prompt_tokens and completion_tokens, I32 "
                         "[n] (a prompt of one token at least)",
                         seq);
    int P = (int)pt.shape[0], N = (int)ct.shape[0], ctx = m->cfg.n_ctx;
    if (N > ctx)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: a completion of %d tokens, past the context %d", seq, N,
                         ctx);
    int32_t *row = xmalloc(xmul((size_t)P + N, sizeof(int32_t)));
    ktensor_copy(&pt, row);
    ktensor_copy(&ct, row + P);
    int keep = P + N - 1 > ctx ? ctx + 1 - N : P; /* the end of the prompt */
    const int32_t *s = row + (P - keep);
    int T = keep + N - 1;
    for (int t = 0; t < T; t++) {
        x[t] = s[t], y[t] = s[t + 1], mask[t] = t + 1 >= keep;
        if (s[t] < 0 || s[t] >= m->cfg.vocab || s[t + 1] < 0 || s[t + 1] >= m->cfg.vocab) {
            free(row);
            return kiln_errf(err, errsz, EX_KILN_DATA,
                             "record %llu: a token outside the vocabulary (%d)", seq, m->cfg.vocab);
        }
    }
    free(row);
    if (N == 0) return *n_out = 0, 0;
    gpt_forward(m, x, y, mask, 1, T);
    float *all = xmalloc(xmul((size_t)T, sizeof(float)));
    gpt_token_logprobs(m, all, NULL);
    memcpy(lp, all + (keep - 1), (size_t)N * sizeof(float));
    free(all);
    *n_out = N;
    return 0;
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    const char *ckpt = NULL, *adapter = NULL;
    int threads = 0;
    kopt rows[] = {
        KOPT_STRING(0, "ckpt", &ckpt, "FILE", "the reference model (a checkpoint file)",
                    .flags = KOPT_REQUIRED),
        KOPT_STRING(0, "adapter", &adapter, "FILE", "a LoRA adapter folded into it first"),
        KOPT_THREADS(&threads),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    kpool *pool = kpool_create(threads);
    kmodel km;
    kmodel_from_file(&km, ckpt, pool);
    if (adapter) kmodel_apply_adapter(&km, adapter);
    if (km.m->cfg.head != GPT_HEAD_LM)
        kiln_die(EX_KILN_DATA, "%s: a reward model (scalar head), not a language model", ckpt);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    check_tokenizer(&km, hdr, ckpt);
    kwriter_hdr_begin(w, hdr, NULL, krec_u64_or(hdr, "seed", 0));
    kwriter_end(w);
    size_t n = 2 * (size_t)km.m->cfg.n_ctx;
    int32_t *x = xmalloc(xmul(n, sizeof(int32_t))), *y = xmalloc(xmul(n, sizeof(int32_t)));
    uint8_t *mask = xmalloc(n);
    float *lp = xmalloc(xmul(n, sizeof(float)));
    kprefpair pair = {0};
    static const char *const skip[] = {"ref_chosen_logps", "ref_rejected_logps", NULL};
    char err[512];
    int rc = 0;
    krec rec;
    while (!rc && !kwriter_gone(w) && kreader_next(r, &rec)) {
        if (krec_is(&rec, "rollout")) {
            int N = 0;
            if (!(rc = rollout_logps(km.m, &rec, x, y, mask, lp, &N, err, sizeof err))) {
                static const char *const skip_r[] = {"ref_logprobs", NULL};
                ktensor t = ktensor_1d(KT_F32, lp, (size_t)N);
                kwriter_begin(w, rec.t);
                kw_copy_fields(w, &rec, skip_r);
                kw_tensor(w, "ref_logprobs", &t);
                kwriter_end(w);
            }
        } else if (!kpref_like(&rec)) {
            kwriter_pass(w, &rec);
        } else if (!(rc = kprefpair_read(&pair, &rec, &km.tok, km.m->cfg.vocab, km.m->cfg.n_ctx + 1,
                                         err, sizeof err))) {
            kdpo_logps(km.m, &pair, x, y, mask, lp);
            kwriter_begin(w, rec.t);
            kw_copy_fields(w, &rec, skip);
            kw_f64(w, "ref_chosen_logps", lp[0]);
            kw_f64(w, "ref_rejected_logps", lp[1]);
            kwriter_end(w);
        }
        if (kiln_stop_signal()) break;
    }
    free(x), free(y), free(mask), free(lp);
    kprefpair_free(&pair);
    kmodel_free(&km);
    kpool_free(pool);
    if (rc) kiln_fail(r, w, rc, err);
    kiln_finish(r, w);
}
