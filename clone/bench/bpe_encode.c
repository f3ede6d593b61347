/* bench-bpe_encode — the BPE encoder alone, in process, as bench/bpe.sh measures the
 * reference encoder in Node.js (lib/data/bpe.h).
 *
 *   bpe_encode DIR TEXT REPS   load DIR's vocabulary, encode the file TEXT REPS times; print
 *                              the best MB/s and the token count */
#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"
#include "data/bpe.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bpe_encode DIR TEXT REPS\n");
        return EX_KILN_USAGE;
    }
    char err[600];
    kbpe *b = kbpe_load(argv[1], err, sizeof err);
    if (!b) kiln_die(EX_KILN_DATA, "%s", err);
    FILE *f = fopen(argv[2], "rb");
    if (!f) kiln_die(EX_KILN_IO, "%s: cannot open", argv[2]);
    size_t cap = 1 << 20, n = 0, got;
    uint8_t *text = xmalloc(cap);
    while ((got = fread(text + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) text = xrealloc(text, cap *= 2);
    fclose(f);
    int32_t *ids = xmalloc(xmul(n ? n : 1, sizeof *ids));
    double best = 1e30;
    size_t k = 0;
    for (int r = 0; r < atoi(argv[3]); r++) {
        double t0 = kiln_now();
        k = kbpe_encode(b, text, n, ids);
        double dt = kiln_now() - t0;
        if (dt < best) best = dt;
    }
    printf("%.2f %zu\n", (double)n / 1e6 / best, k);
    free(text), free(ids);
    kbpe_free(b);
    return 0;
}
