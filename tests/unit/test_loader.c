/* test_loader — kiln load's items as records (lib/data/loader.h): lines of a text source
 * with --shard and --skip keep their ids, a shuffled epoch is a permutation of the items
 * (the same for the same seed, another for the next epoch), a bad JSON line becomes an
 * `err` record with --skip-bad. */
#include "check.h"
#include "core/util.h"
#include "data/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NLINES 10

/* Run the loader over one source for `epochs` epochs into a temporary stream; the ids of its
 * sample records (in order) go to ids, their count is returned; errs counts err records. */
static int run(kloader L, const char *arg, int epochs, uint64_t *ids, int *errs) {
    char out[] = "/tmp/kiln-test-loader-XXXXXX";
    close(mkstemp(out));
    kload_source s;
    kload_source_open(&L, arg, &s);
    L.w = kwriter_open(out, 1);
    kloader_hdr(&L, &s, 1);
    kload_index *x = L.shuffle ? kload_index_build(&L, &s, 1) : NULL;
    for (L.epoch = 0; L.epoch < (uint64_t)epochs; L.epoch++) {
        L.id = 0;
        if (x)
            kloader_shuffled(&L, &s, x);
        else
            kloader_pass(&L, &s);
    }
    kload_index_free(x, &s, 1);
    kload_source_free(&s);
    kwriter_close(L.w, "ok");
    kloader_free(&L);

    kreader *r = kreader_open(out, 1);
    krec rec;
    int n = 0;
    *errs = 0;
    while (kreader_next(r, &rec)) {
        uint64_t id;
        CHECK(krec_u64(&rec, "id", &id));
        if (krec_is(&rec, "err")) {
            (*errs)++;
            continue;
        }
        const char *text;
        size_t len;
        char want[16];
        snprintf(want, sizeof want, "line %llu", (unsigned long long)id);
        /* text lines hold their own id; JSON lines a text field of it */
        CHECK(krec_str(&rec, "text", &text, &len) && len == strlen(want) &&
              !memcmp(text, want, len));
        ids[n++] = id;
    }
    kreader_close(r);
    unlink(out);
    return n;
}

static kloader lines_loader(void) {
    kloader L = {.epochs = 1, .shard_n = 1};
    char err[128];
    CHECK(ksplit_parse("lines", &L.split, err, sizeof err));
    return L;
}

int main(void) {
    char text[] = "/tmp/kiln-test-loader-text-XXXXXX",
         jsonl[] = "/tmp/kiln-test-loader-json-XXXXXX";
    FILE *f = fdopen(mkstemp(text), "w");
    for (int i = 0; i < NLINES; i++) fprintf(f, "line %d\n", i);
    fclose(f);
    f = fdopen(mkstemp(jsonl), "w");
    fprintf(f, "{\"text\":\"line 0\"}\n{\"text\": oops}\n{\"text\":\"line 2\"}\n");
    fclose(f);
    char arg[128];
    snprintf(arg, sizeof arg, "text:%s", text);
    uint64_t ids[4 * NLINES];
    int errs;

    /* worker 1 of 3 keeps ids 1, 4, 7; --skip 1 drops the first of them */
    kloader L = lines_loader();
    L.shard_i = 1, L.shard_n = 3, L.skip = 1;
    CHECK(run(L, arg, 1, ids, &errs) == 2 && ids[0] == 4 && ids[1] == 7 && errs == 0);

    /* --limit stops after N records */
    L = lines_loader();
    L.limit = 3;
    CHECK(run(L, arg, 2, ids, &errs) == 3 && ids[2] == 2);

    /* shuffled: each epoch every id once, epochs in different orders, seeds repeatable */
    L = lines_loader();
    L.shuffle = true, L.seed = 7;
    uint64_t again[2 * NLINES];
    CHECK(run(L, arg, 2, ids, &errs) == 2 * NLINES);
    CHECK(run(L, arg, 2, again, &errs) == 2 * NLINES);
    CHECK(!memcmp(ids, again, sizeof again));
    for (int e = 0; e < 2; e++) {
        int seen[NLINES] = {0};
        for (int i = 0; i < NLINES; i++)
            seen[ids[e * NLINES + i] < NLINES ? ids[e * NLINES + i] : 0]++;
        for (int i = 0; i < NLINES; i++) CHECK(seen[i] == 1);
    }
    CHECK(memcmp(ids, ids + NLINES, NLINES * sizeof *ids) != 0);
    bool moved = false;
    for (int i = 0; i < NLINES; i++) moved |= ids[i] != (uint64_t)i;
    CHECK(moved);

    /* a line that is not JSON: an err record in its place, the others keep their ids */
    L = (kloader){.epochs = 1, .shard_n = 1, .skip_bad = true};
    snprintf(arg, sizeof arg, "jsonl:%s", jsonl);
    CHECK(run(L, arg, 1, ids, &errs) == 2 && ids[0] == 0 && ids[1] == 2 && errs == 1);

    unlink(text), unlink(jsonl);
    return check_report("loader");
}
