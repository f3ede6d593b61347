/* pairs — writing the `pairs` record that kiln pairs makes and the contrastive objective
 * reads (lib/run/contrastive.h has the fields): anchor and positive token rows, K hard
 * negatives per anchor, all right-padded to the batch's longest row, each with its mask. */
#ifndef KILN_PAIRS_H
#define KILN_PAIRS_H

#include <stdint.h>

#include "stream/stream.h"

typedef struct ktoken_row {
    int32_t *tok;
    int len;
} ktoken_row;

/* One `pairs` record: anchor[i] and positive[i] for i < n, negative[i*K + k], ids [n]; group
 * [n] (may be NULL: not written) marks pairs that are not each other's negatives; cursor is
 * the token records consumed so far. */
void kpairs_write(kwriter *w, const ktoken_row *anchor, const ktoken_row *positive, int n,
                  const ktoken_row *negative, int K, const int64_t *ids, const int64_t *group,
                  uint64_t cursor);

#endif
