/* retrieval — information-retrieval metrics under sentence-transformers' names and
 * definitions (its InformationRetrievalEvaluator), so numbers compare one to one:
 *
 *   accuracy@k   share of queries with at least one relevant hit in the top k
 *   precision@k  relevant hits in the top k, over k            (mean over queries)
 *   recall@k     relevant hits in the top k, over the relevant (mean over queries)
 *   mrr@10       1 / rank of the first relevant hit in the top 10, else 0
 *   ndcg@10      DCG of the top 10 (gain 1 per relevant hit, 1/log2(rank+1)) over the
 *                DCG of the ideal ranking of the query's relevant documents
 *   map@100      sum of precision at each relevant hit in the top 100, over
 *                min(100, relevant)
 * with k = 1, 5, 10.  Hits are corpus ids, best first. */
#ifndef KILN_RETRIEVAL_H
#define KILN_RETRIEVAL_H

#include <stdint.h>

#include "data/sample.h"
#include "data/tokenizer.h"
#include "model/gpt.h"
#include "model/pool.h"

#define KRET_NK 3
extern const int kret_k[KRET_NK]; /* 1, 5, 10 */

typedef struct kretrieval {
    uint64_t queries;
    double accuracy[KRET_NK], precision[KRET_NK], recall[KRET_NK];
    double mrr10, ndcg10, map100;
} kretrieval;

/* Sums start at zero: kretrieval r = {0}. */
/* Add one query: its ranked hits (at least min(100, corpus size) of them for map@100 to
 * be exact) and its relevant ids (n_rel >= 1; a query without any is not counted). */
void kret_add(kretrieval *r, const int64_t *hits, int n_hits, const int64_t *relevant, int n_rel);
/* The means, in place of the sums. */
void kret_finish(kretrieval *r);

/* The metric names in the order kret_value lists them ("accuracy@1", ..., "map@100"). */
#define KRET_N_METRICS (3 * KRET_NK + 3)
const char *kret_name(int i);
double kret_value(const kretrieval *r, int i);

/* The ids a query counts as relevant among a corpus's (ids[n], labels[n]: "" for none),
 * into rel (at most cap); their number.  how: "id" (rows with the query's id), "label"
 * (rows with its label), or the name of the query's array field of relevant ids. */
int kret_relevant(const krec *q, const char *how, const int64_t *ids, char *const *labels,
                  int64_t n, int64_t *rel, int cap);

/* ---- a model on a retrieval set (kiln eval --queries/--corpus) ---------------------------- */

typedef struct kret_set {
    kstored **queries, **corpus; /* tokens records */
    int nq, nc;
    int64_t *ids; /* the corpus's */
    char **labels;
    const char *relevant;
    const char *queries_url;
    ktokenizer tok; /* the queries' hdr tokenizer (the corpus's is the same) */
} kret_set;

/* Read both streams' tokens records whole; exits 65/74 naming the URL, and 65 when their hdrs
 * have no tokenizer or different ones. */
void kret_set_load(kret_set *s, const char *queries, const char *corpus, const char *relevant);
void kret_set_free(kret_set *s);
/* Exit 65 naming the queries' file unless the set was tokenized as a model with tokenizer
 * `tok` (has_tok false: the model's is unknown, only its vocabulary is checked). */
void kret_set_check_model(const kret_set *s, const ktokenizer *tok, bool has_tok, int vocab);
/* Embed corpus and queries with m (pooled, normalised), search, and score every query that
 * has relevant rows. */
void kret_evaluate(gpt *m, gpt_pool_mode mode, const kret_set *s, kpool *pool, kretrieval *out);

#endif
