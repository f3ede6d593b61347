/* retrieval — accuracy, precision and recall at k, MRR, NDCG and MAP. */
#include "run/retrieval.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

const int kret_k[KRET_NK] = {1, 5, 10};

static bool relevant_hit(int64_t id, const int64_t *relevant, int n_rel) {
    for (int i = 0; i < n_rel; i++)
        if (relevant[i] == id) return true;
    return false;
}

static double dcg_ideal(int n_rel, int k) {
    double d = 0;
    for (int i = 0; i < n_rel && i < k; i++) d += 1.0 / log2(i + 2.0);
    return d;
}

void kret_add(kretrieval *r, const int64_t *hits, int n_hits, const int64_t *relevant, int n_rel) {
    if (n_rel < 1) return;
    r->queries++;
    int correct = 0, first = -1;
    double dcg = 0, precisions = 0;
    for (int rank = 0; rank < n_hits && rank < 100; rank++) {
        bool rel = relevant_hit(hits[rank], relevant, n_rel);
        if (rel) {
            correct++;
            precisions += (double)correct / (rank + 1);
            if (first < 0) first = rank;
            if (rank < 10) dcg += 1.0 / log2(rank + 2.0);
        }
        for (int j = 0; j < KRET_NK; j++)
            if (rank + 1 == kret_k[j] || (rank + 1 == n_hits && rank + 1 < kret_k[j])) {
                r->precision[j] += (double)correct / kret_k[j];
                r->recall[j] += (double)correct / n_rel;
                r->accuracy[j] += correct > 0;
            }
    }
    if (first >= 0 && first < 10) r->mrr10 += 1.0 / (first + 1);
    r->ndcg10 += dcg / dcg_ideal(n_rel, 10);
    r->map100 += precisions / (n_rel < 100 ? n_rel : 100);
}

void kret_finish(kretrieval *r) {
    double n = r->queries ? (double)r->queries : 1;
    for (int j = 0; j < KRET_NK; j++) r->accuracy[j] /= n, r->precision[j] /= n, r->recall[j] /= n;
    r->mrr10 /= n, r->ndcg10 /= n, r->map100 /= n;
}

const char *kret_name(int i) {
    static const char *const names[KRET_N_METRICS] = {
        "accuracy@1", "accuracy@5", "accuracy@10", "precision@1", "precision@5", "precision@10",
        "recall@1",   "recall@5",   "recall@10",   "mrr@10",      "ndcg@10",     "map@100"};
    return i >= 0 && i < KRET_N_METRICS ? names[i] : NULL;
}

double kret_value(const kretrieval *r, int i) {
    if (i < KRET_NK) return r->accuracy[i];
    if (i < 2 * KRET_NK) return r->precision[i - KRET_NK];
    if (i < 3 * KRET_NK) return r->recall[i - 2 * KRET_NK];
    const double rest[3] = {r->mrr10, r->ndcg10, r->map100};
    return rest[i - 3 * KRET_NK];
}
