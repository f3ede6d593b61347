/* kiln-shuffle — a buffered shuffle of records, deterministic for a seed. */
#include <stdio.h>
#include <stdlib.h>

#include "stream/options.h"
#include "core/rng.h"
#include "data/sample.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "shuffle records through a buffer, deterministically for a seed",
    .usage = "kiln shuffle [-n BUF] [--seed S]",
    .text =
        "Fills a buffer of BUF records; then each new record takes the place of a randomly\n"
        "chosen one, which is written out.  At the end the rest leaves in random order.  The\n"
        "same input and seed give the same output.  BUF >= the stream length is a full shuffle.\n"
        "The buffer also holds at most --max-bytes of records (default 128 MiB): past it, random\n"
        "records leave until the new one fits, so memory stays bounded for large records.\n"
        "Only sample and tokens records are shuffled; others (err, metrics, ...) pass at once.\n",
    .notes = "example:\n"
             "  kiln load text:examples/data/moby-dick.txt --split paragraphs | kiln shuffle -n "
             "1000 \\\n"
             "    --seed 1 | kiln show | head\n",
};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    uint64_t cap = 10000, seed = 0, max_bytes = 128ull << 20, bytes = 0;
    bool have_seed = false;
    kopt rows[] = {
        KOPT_U64('n', "buffer", &cap, "BUF", 1, 1u << 26, "records held (default 10000)"),
        KOPT_U64(0, "max-bytes", &max_bytes, "BYTES", 1, UINT64_MAX,
                 "bytes of records held (default 134217728, 128 MiB)"),
        KOPT_U64(0, "seed", &seed, "S", 0, UINT64_MAX,
                 "the seed (default: the upstream hdr's seed)", .given = &have_seed),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);

    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    if (!have_seed) seed = krec_u64_or(hdr, "seed", 0);
    char schema[64] = "";
    kobj_cstr(krec_get(hdr, "schema"), schema, sizeof schema); /* records keep their kind */
    kwriter_hdr_begin(w, hdr, schema, seed);
    kwriter_end(w);

    krng rng;
    krng_init(&rng, seed, 0, 0, KRNG_SHUFFLE);
    kstored **buf = xcalloc((size_t)cap, sizeof *buf);
    size_t n = 0;
    krec rec;
    while (!kwriter_gone(w) && kreader_next(r, &rec)) {
        if (!krec_is(&rec, "sample") && !krec_is(&rec, "tokens")) {
            kwriter_pass(w, &rec);
        } else if (n == 0 || (n < cap && bytes + rec.raw_len <= max_bytes)) {
            buf[n++] = kstored_copy(&rec);
            bytes += rec.raw_len;
        } else {
            /* Random records leave until the new one fits in count and bytes; it takes the
             * place of the last to leave (with the count bound alone: of the one). */
            for (;;) {
                size_t j = (size_t)krng_below(&rng, n);
                kwriter_pass(w, &buf[j]->rec);
                bytes -= buf[j]->rec.raw_len;
                kstored_free(buf[j]);
                if (bytes + rec.raw_len <= max_bytes || n == 1) {
                    buf[j] = kstored_copy(&rec);
                    break;
                }
                buf[j] = buf[--n];
            }
            bytes += rec.raw_len;
        }
        if (kiln_stop_now()) break;
    }
    /* Drain in random order (Fisher-Yates from the end). */
    while (n > 0 && !kwriter_gone(w) && !kiln_stop_signal()) {
        size_t j = (size_t)krng_below(&rng, n);
        kwriter_pass(w, &buf[j]->rec);
        bytes -= buf[j]->rec.raw_len;
        kstored_free(buf[j]);
        buf[j] = buf[--n];
    }
    for (size_t i = 0; i < n; i++) kstored_free(buf[i]);
    free(buf);
    kiln_finish(r, w);
}
