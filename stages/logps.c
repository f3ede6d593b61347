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
        "chosen or rejected exits 65 naming the record.  Other records pass through.\n"
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
    kprefpair pair = {0};
    static const char *const skip[] = {"ref_chosen_logps", "ref_rejected_logps", NULL};
    char err[512];
    int rc = 0;
    krec rec;
    while (!rc && !kwriter_gone(w) && kreader_next(r, &rec)) {
        if (!kpref_like(&rec)) {
            kwriter_pass(w, &rec);
        } else if (!(rc = kprefpair_read(&pair, &rec, &km.tok, km.m->cfg.vocab, km.m->cfg.n_ctx + 1,
                                         err, sizeof err))) {
            float lp[2];
            kdpo_logps(km.m, &pair, x, y, mask, lp);
            kwriter_begin(w, rec.t);
            kw_copy_fields(w, &rec, skip);
            kw_f64(w, "ref_chosen_logps", lp[0]);
            kw_f64(w, "ref_rejected_logps", lp[1]);
            kwriter_end(w);
        }
        if (kiln_stop_signal()) break;
    }
    free(x), free(y), free(mask);
    kprefpair_free(&pair);
    kmodel_free(&km);
    kpool_free(pool);
    if (rc) kiln_fail(r, w, rc, err);
    kiln_finish(r, w);
}
