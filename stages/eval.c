/* kiln-eval — checkpoints in, held-out loss out: metrics (stage "eval") before each ckpt. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/adapter.h"
#include "stream/options.h"
#include "model/generate.h"
#include "ckpt/load.h"
#include "data/sample.h"
#include "data/prefpair.h"
#include "run/retrieval.h"
#include "run/reward.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "evaluate checkpoints on held-out data: loss, bits per byte/dim, perplexity",
    .usage = "kiln eval --data URL [--ckpt FILE] [--split NAME] [--max-batches N]\n"
             "                 [--samples N] [--sample-len N] [--temperature X] [--top-k K]",
    .notes =
        "For every ckpt record: a metrics record {stage eval, split, step, loss (mean cross-\n"
        "entropy over the targets the masks count, nats), ppl (exp loss), bits_per_byte (text)\n"
        "or bits_per_dim (images: per channel value), tokens}, then the samples, then the ckpt\n"
        "itself, so kiln ckpt knows the eval loss of the checkpoint it writes.  Bits are the\n"
        "total over every counted target (EOS included) divided by the bytes or values.\n"
        "Other records pass through.  A reward model (kiln train --objective reward) on held-out\n"
        "preference pairs in --data (pref records, or any with chosen and rejected): metrics\n"
        "{stage eval, split, step, accuracy (share of pairs with r_chosen > r_rejected),\n"
        "margin (mean r_chosen - r_rejected), pairs}.\n"
        "example:\n"
        "  kiln load text:examples/data/moby-dick.txt --split chunk:2000 --limit 20 \\\n"
        "    | kiln tokenize --bytes | kiln batch -B 4 -T 256 --pack > val.rec\n"
        "  kiln train ... --every 100 | kiln eval --data val.rec | kiln ckpt --dir runs/a\n"
        "  kiln eval --data val.rec --ckpt runs/a/latest.safetensors --samples 2 | kiln show\n",
};

typedef struct options {
    const char *data, *ckpt, *adapter, *base, *split;
    const char *queries, *corpus, *relevant, *pool;
    uint64_t max_batches;
    int threads;
    kgen_request req;
} options;

typedef struct evalset {
    kstored **batches;
    size_t n;
    kstored **pairs; /* preference pairs: a reward model's pairwise accuracy */
    size_t npairs;
    bool has_tok;
    ktokenizer tok;
    const char *name;
} evalset;

typedef struct result {
    double nll;                /* nats, summed over counted targets */
    uint64_t targets, symbols; /* counted targets; of them, bytes / channel values */
} result;

static void keep(kstored ***list, size_t *n, const krec *r) {
    *list = xrealloc(*list, xmul(*n + 1, sizeof **list));
    (*list)[(*n)++] = kstored_copy(r);
}

static void load_evalset(evalset *e, const options *o) {
    kreader *r = kreader_open(o->data, 1);
    const msgpack_object *tk = krec_get(kreader_hdr(r), "tokenizer");
    char err[256];
    if (tk && !ktok_from_obj(tk, &e->tok, err, sizeof err))
        kiln_die(EX_KILN_DATA, "%s: %s", o->data, err);
    e->has_tok = tk != NULL;
    e->name = o->data;
    krec rec;
    while ((!o->max_batches || e->n + e->npairs < o->max_batches) && kreader_next(r, &rec)) {
        if (krec_is(&rec, "batch") && tk) keep(&e->batches, &e->n, &rec);
        if (kpref_like(&rec)) keep(&e->pairs, &e->npairs, &rec);
    }
    if (kiln_stop_signal()) exit(kiln_stop_status(kiln_stop_signal()));
    kreader_close(r);
    if (!tk && !e->npairs)
        kiln_die(EX_KILN_DATA, "%s: the hdr has no tokenizer (make it with kiln tokenize)",
                 o->data);
    if (!e->n && !e->npairs)
        kiln_die(EX_KILN_DATA, "%s: no batch or preference records to evaluate on", o->data);
}

/* Summed negative log-likelihood of one batch's counted targets from the logits. */
static void eval_batch(gpt *m, const ktokenizer *tok, const krec *r, result *res) {
    ktensor x, y, mask;
    bool has_mask = krec_get(r, "mask") != NULL;
    if (!krec_tensor(r, "x", &x) || !krec_tensor(r, "y", &y) || x.dtype != KT_I32 ||
        y.dtype != KT_I32 || x.ndim != 2 || memcmp(x.shape, y.shape, sizeof x.shape) ||
        (has_mask && (!krec_tensor(r, "mask", &mask) || mask.dtype != KT_U8 ||
                      memcmp(mask.shape, x.shape, sizeof x.shape))))
        kiln_die(EX_KILN_DATA, "eval data record %llu: a batch needs x, y I32 [B,T], mask U8",
                 (unsigned long long)r->seq);
    int B = (int)x.shape[0], T = (int)x.shape[1], V = m->cfg.vocab;
    if (x.shape[1] > (uint64_t)m->cfg.n_ctx || x.shape[0] * x.shape[1] > (1u << 24))
        kiln_die(EX_KILN_DATA, "eval data record %llu: T %d exceeds the model context %d",
                 (unsigned long long)r->seq, T, m->cfg.n_ctx);
    size_t N = (size_t)B * T;
    int32_t *xs = xmalloc(N * 4), *ys = xmalloc(N * 4);
    uint8_t *ms = xmalloc(N);
    ktensor_copy(&x, xs), ktensor_copy(&y, ys);
    if (has_mask)
        ktensor_copy(&mask, ms);
    else
        memset(ms, 1, N);
    for (size_t i = 0; i < N; i++)
        if (xs[i] < 0 || xs[i] >= V || ys[i] < 0 || ys[i] >= V)
            kiln_die(EX_KILN_DATA, "eval data record %llu: token outside the vocabulary (%d)",
                     (unsigned long long)r->seq, V);
    gpt_forward(m, xs, NULL, NULL, B, T);
    const float *logits = gpt_logits(m);
    for (size_t i = 0; i < N; i++) {
        if (!ms[i]) continue;
        const float *l = logits + i * V;
        float mx = l[0];
        for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        double sum = 0.0;
        for (int v = 0; v < V; v++) sum += exp((double)l[v] - mx);
        res->nll += log(sum) + mx - l[ys[i]];
        res->targets++;
        res->symbols += ktok_symbol_bytes(tok, ys[i]);
    }
    free(xs), free(ys), free(ms);
}

/* Retrieval metrics of the model's embeddings (sentence-transformers' names), one metrics
 * record {stage eval, split retrieval, step, accuracy@1 ... map@100, queries}. */
static void evaluate_retrieval(kwriter *w, const kmodel *km, const kret_set *rs, const options *o,
                               kpool *pool) {
    kretrieval res;
    kret_set_check_model(rs, &km->tok, km->has_tok, km->m->cfg.vocab);
    kret_evaluate(km->m, gpt_pool_parse(o->pool), rs, pool, &res);
    kwriter_begin(w, "metrics");
    kw_str(w, "stage", "eval");
    kw_str(w, "split", "retrieval");
    kw_u64(w, "step", km->step);
    for (int i = 0; i < KRET_N_METRICS; i++) kw_f64(w, kret_name(i), kret_value(&res, i));
    kw_u64(w, "queries", res.queries);
    kwriter_end(w);
    if (o->ckpt)
        fprintf(stderr, "%s: step %llu: %llu queries, recall@1 %.4f, recall@10 %.4f, mrr@10 %.4f\n",
                kiln_prog(), (unsigned long long)km->step, (unsigned long long)res.queries,
                res.recall[0], res.recall[2], res.mrr10);
}

/* A reward model on held-out pairs: {stage eval, split, step, accuracy (r_chosen >
 * r_rejected), margin (mean r_chosen - r_rejected), pairs}. */
static void evaluate_pairs(kwriter *w, const kmodel *km, const evalset *e, const options *o) {
    if (!e->npairs || km->m->cfg.head != GPT_HEAD_SCALAR) return;
    const ktokenizer *tok = km->has_tok ? &km->tok : e->has_tok ? &e->tok : NULL;
    size_t n = 2 * (size_t)km->m->cfg.n_ctx;
    int32_t *x = xmalloc(xmul(n, sizeof(int32_t)));
    uint8_t *mask = xmalloc(n);
    kprefpair pair = {0};
    char err[512];
    double hits = 0, margin = 0;
    for (size_t i = 0; i < e->npairs && !kiln_stop_now(); i++) {
        const krec *r = &e->pairs[i]->rec;
        if (kprefpair_read(&pair, r, tok, km->m->cfg.vocab, km->m->cfg.n_ctx, err, sizeof err))
            kiln_die(EX_KILN_DATA, "%s: %s", e->name, err);
        float rw[2];
        kreward_score_pair(km->m, &pair, x, mask, rw);
        hits += rw[0] > rw[1];
        margin += (double)rw[0] - rw[1];
    }
    free(x), free(mask);
    kprefpair_free(&pair);
    double acc = hits / (double)e->npairs;
    kwriter_begin(w, "metrics");
    kw_str(w, "stage", "eval");
    kw_str(w, "split", o->split);
    kw_u64(w, "step", km->step);
    kw_f64(w, "accuracy", acc);
    kw_f64(w, "margin", margin / (double)e->npairs);
    kw_u64(w, "pairs", e->npairs);
    kwriter_end(w);
    if (o->ckpt)
        fprintf(stderr, "%s: step %llu: pairwise accuracy %.4f over %zu pairs\n", kiln_prog(),
                (unsigned long long)km->step, acc, e->npairs);
}

static void evaluate(kwriter *w, const kmodel *km, const evalset *e, const options *o,
                     kpool *pool) {
    char a[96], b[96];
    evaluate_pairs(w, km, e, o);
    if (!e->n) return; /* retrieval or pairs only */
    if (!km->has_tok)
        kiln_warn("checkpoint of step %llu has no tokenizer; assuming the eval data's",
                  (unsigned long long)km->step);
    else if (!ktok_same(&km->tok, &e->tok)) {
        ktok_describe(&e->tok, a, sizeof a), ktok_describe(&km->tok, b, sizeof b);
        kiln_die(EX_KILN_DATA,
                 "%s: the eval data's tokenizer (%s) differs from the checkpoint's (%s); "
                 "tokenize the eval data like the training data",
                 e->name, a, b);
    }
    if (e->tok.vocab != (uint32_t)km->m->cfg.vocab)
        kiln_die(EX_KILN_DATA, "%s: vocabulary %u, the checkpoint's model has %d", e->name,
                 e->tok.vocab, km->m->cfg.vocab);
    result res = {0};
    for (size_t i = 0; i < e->n && !kiln_stop_now(); i++)
        eval_batch(km->m, &e->tok, &e->batches[i]->rec, &res);
    double loss = res.targets ? res.nll / (double)res.targets : NAN;
    double bits = res.symbols ? res.nll / log(2.0) / (double)res.symbols : NAN;
    kwriter_begin(w, "metrics");
    kw_str(w, "stage", "eval");
    kw_str(w, "split", o->split);
    kw_u64(w, "step", km->step);
    kw_f64(w, "loss", loss);
    kw_f64(w, "ppl", exp(loss));
    kw_f64(w, ktok_is_text(&e->tok) ? "bits_per_byte" : "bits_per_dim", bits);
    kw_f64(w, "tokens", (double)res.targets);
    kwriter_end(w);
    if (o->ckpt)
        fprintf(stderr, "%s: step %llu: loss %.4f, %.4f %s, perplexity %.3f over %llu tokens\n",
                kiln_prog(), (unsigned long long)km->step, loss, bits,
                ktok_is_text(&e->tok) ? "bits/byte" : "bits/dim", exp(loss),
                (unsigned long long)res.targets);
    if (o->req.n) {
        kgen_request q = o->req;
        q.step = km->step;
        kgen_write_samples(w, km->m, &e->tok, pool, &q);
    }
    kwriter_flush(w);
}

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){.split = "val",
                   .relevant = "id",
                   .pool = "mean",
                   .req = {.text_len = 200, .cls = -1, .src = "kiln-eval"}};
    o->req.s = ksampler_default();
    kopt rows[] = {
        KOPT_STRING(0, "data", &o->data, "URL",
                    "held-out batch records (a file written by kiln batch, or a stream); read "
                    "once and kept in memory.  Its hdr tokenizer must be the checkpoint's (else "
                    "exit 65)"),
        KOPT_STRING(0, "ckpt", &o->ckpt, "FILE",
                    "evaluate this safetensors checkpoint instead of the ckpt records of the "
                    "input (the input is not read)"),
        KOPT_STRING(0, "adapter", &o->adapter, "FILE",
                    "with --ckpt: a LoRA adapter checkpoint trained on it (kiln train --lora), "
                    "folded in first (its base hash must match)",
                    .needs = "ckpt"),
        KOPT_STRING(0, "base", &o->base, "FILE",
                    "the base model of the LoRA adapter ckpt records in the input (kiln train "
                    "--lora | kiln eval --base FILE ...)"),
        KOPT_STRING(0, "split", &o->split, "NAME", "the `split` of the metrics (default val)"),
        KOPT_U64(0, "max-batches", &o->max_batches, "N", 0, UINT64_MAX,
                 "use the first N batches only (default all)"),
        KOPT_THREADS(&o->threads),
        KOPT_GROUP("retrieval (embedding models: kiln train --objective contrastive)"),
        KOPT_STRING(0, "queries", &o->queries, "URL",
                    "query tokens records; with --corpus, each checkpoint's pooled embeddings "
                    "are scored as kiln search --relevant scores them",
                    .needs = "corpus"),
        KOPT_STRING(0, "corpus", &o->corpus, "URL", "the tokens records searched (ids, labels)",
                    .needs = "queries"),
        KOPT_STRING(0, "relevant", &o->relevant, "HOW",
                    "which corpus rows are relevant to a query: id (default), label, or a "
                    "query's array field of ids"),
        KOPT_CHOICE(0, "pool", &o->pool, "HOW", gpt_pool_names,
                    "mean (default), last or weightedmean, as trained"),
        KOPT_GROUP("samples"),
        KOPT_INT(0, "samples", &o->req.n, "N", 0, 4096,
                 "after the metrics, N generated sample records (text from the document "
                 "boundary; images one class after another)"),
        KOPT_INT(0, "sample-len", &o->req.text_len, "N", 1, 1 << 20,
                 "tokens per text sample (default 200)"),
        KOPT_SAMPLING(&o->req.s.temperature, &o->req.s.top_k, &o->req.s.top_p, &o->req.seed),
        KOPT_STREAM(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
    if (!o->data && !o->queries) kiln_usage_error("give --data, or --queries and --corpus");
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    options o;
    parse_options(argc, argv, &cli, &o);
    evalset e = {0};
    kret_set rs = {0};
    if (o.data) load_evalset(&e, &o);
    if (o.queries) kret_set_load(&rs, o.queries, o.corpus, o.relevant);
    kpool *pool = kpool_create(o.threads);
    kmodel km;
    kreader *r = NULL;
    kwriter *w;
    if (o.ckpt) { /* one file: no input stream */
        kmodel_from_file(&km, o.ckpt, pool);
        if (o.adapter) kmodel_apply_adapter(&km, o.adapter);
        w = kiln_cli_writer(&cli);
        kwriter_hdr_begin(w, NULL, "metrics", o.req.seed);
        kwriter_end(w);
        evaluate(w, &km, &e, &o, pool);
        if (rs.nq) evaluate_retrieval(w, &km, &rs, &o, pool);
        kmodel_free(&km);
    } else {
        r = kiln_cli_reader(&cli);
        w = kiln_cli_writer(&cli);
        kwriter_hdr_begin(w, kreader_hdr(r), NULL, krec_u64_or(kreader_hdr(r), "seed", 0));
        kwriter_end(w);
        krec rec;
        while (!kwriter_gone(w) && kreader_next(r, &rec)) {
            if (krec_is(&rec, "ckpt")) {
                if (kadapter_is_record(&rec))
                    kmodel_from_adapter_record(&km, &rec, o.base, pool);
                else
                    kmodel_from_record(&km, &rec, pool);
                evaluate(w, &km, &e, &o, pool);
                if (rs.nq) evaluate_retrieval(w, &km, &rs, &o, pool);
                kmodel_free(&km);
            }
            kwriter_pass(w, &rec);
            if (kiln_stop_now()) break;
        }
    }
    for (size_t i = 0; i < e.n; i++) kstored_free(e.batches[i]);
    for (size_t i = 0; i < e.npairs; i++) kstored_free(e.pairs[i]);
    free(e.batches), free(e.pairs);
    if (e.has_tok) ktok_free(&e.tok);
    kret_set_free(&rs);
    kpool_free(pool);
    kiln_finish(r, w);
}
