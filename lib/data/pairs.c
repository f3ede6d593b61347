/* pairs — the `pairs` record, padded rows and their masks. */
#include "data/pairs.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* rows[0..n) as tokens [n, T] and mask [n, T] (1 = a token), the rest 0.  kw_tensor refers
 * to large buffers instead of copying them, so they live until kwriter_end. */
typedef struct padded {
    int32_t *x;
    uint8_t *m;
} padded;

static padded put_rows(kwriter *w, const char *key, const char *mkey, const ktoken_row *rows, int n,
                       int T) {
    padded p = {xcalloc(xmul((size_t)n, (size_t)T) + 1, sizeof(int32_t)),
                xcalloc(xmul((size_t)n, (size_t)T) + 1, 1)};
    for (int i = 0; i < n; i++) {
        memcpy(p.x + (size_t)i * T, rows[i].tok, sizeof(int32_t) * (size_t)rows[i].len);
        memset(p.m + (size_t)i * T, 1, (size_t)rows[i].len);
    }
    uint64_t shape[2] = {(uint64_t)n, (uint64_t)T};
    ktensor tx = ktensor_make(KT_I32, p.x, 2, shape), tm = ktensor_make(KT_U8, p.m, 2, shape);
    kw_tensor(w, key, &tx);
    kw_tensor(w, mkey, &tm);
    return p;
}

static int longest(const ktoken_row *rows, int n, int T) {
    for (int i = 0; i < n; i++) T = rows[i].len > T ? rows[i].len : T;
    return T;
}

void kpairs_write(kwriter *w, const ktoken_row *anchor, const ktoken_row *positive, int n,
                  const ktoken_row *negative, int K, const int64_t *ids, const int64_t *group,
                  uint64_t cursor) {
    int T = longest(negative, n * K, longest(positive, n, longest(anchor, n, 1)));
    padded p[3] = {{0}};
    kwriter_begin(w, "pairs");
    p[0] = put_rows(w, "anchor", "anchor_mask", anchor, n, T);
    p[1] = put_rows(w, "positive", "positive_mask", positive, n, T);
    if (K) p[2] = put_rows(w, "negative", "negative_mask", negative, n * K, T);
    ktensor tid = ktensor_1d(KT_I64, ids, (size_t)n), tgroup = ktensor_1d(KT_I64, group, (size_t)n);
    kw_tensor(w, "anchor_id", &tid);
    if (group) kw_tensor(w, "group", &tgroup);
    kw_u64(w, "cursor", cursor);
    kwriter_end(w);
    for (int i = 0; i < 3; i++) free(p[i].x), free(p[i].m);
}
