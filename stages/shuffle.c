/* kiln-shuffle — a buffered shuffle of records, deterministic for a seed. */
#include <stdio.h>
#include <stdlib.h>

#include "stream/cli.h"
#include "core/rng.h"
#include "data/sample.h"
#include "core/util.h"

static const char HELP[] =
    "kiln-shuffle — shuffle records through a buffer, deterministically for a seed\n"
    "usage: kiln shuffle [-n BUF] [--seed S]\n"
    "Fills a buffer of BUF records; then each new record takes the place of a randomly\n"
    "chosen one, which is written out.  At the end the rest leaves in random order.  The\n"
    "same input and seed give the same output.  BUF >= the stream length is a full shuffle.\n"
    "Only sample and tokens records are shuffled; others (err, metrics, ...) pass at once.\n"
    "  -n, --buffer BUF  records held (default 10000)\n"
    "  --seed S          the seed (default: the upstream hdr's seed)\n" KILN_CLI_HELP "example:\n"
    "  kiln load text:examples/data/moby-dick.txt --split paragraphs | kiln shuffle -n 1000 \\\n"
    "    --seed 1 | kiln show | head\n";

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    enum { O_SEED = 1 };
    static const struct option opts[] = {{"buffer", required_argument, 0, 'n'},
                                         {"seed", required_argument, 0, O_SEED},
                                         KILN_CLI_LONGOPTS,
                                         {0, 0, 0, 0}};
    uint64_t cap = 10000, seed = 0;
    bool have_seed = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        if (opt == 'n')
            cap = opt_u64("-n", optarg);
        else if (opt == O_SEED)
            seed = opt_u64("--seed", optarg), have_seed = true;
        else if (!kiln_cli_option(&cli, opt, optarg))
            kiln_usage_error("unknown option");
    }
    if (cap < 1 || cap > (1u << 26)) kiln_usage_error("-n wants 1 to 67108864 records");
    if (optind < argc) kiln_usage_error("unexpected argument '%s'", argv[optind]);

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
        } else if (n < cap) {
            buf[n++] = kstored_copy(&rec);
        } else {
            size_t j = (size_t)krng_below(&rng, cap);
            kwriter_pass(w, &buf[j]->rec);
            kstored_free(buf[j]);
            buf[j] = kstored_copy(&rec);
        }
        if (kiln_stop_signal()) break;
    }
    /* Drain in random order (Fisher-Yates from the end). */
    while (n > 0 && !kwriter_gone(w) && !kiln_stop_signal()) {
        size_t j = (size_t)krng_below(&rng, n);
        kwriter_pass(w, &buf[j]->rec);
        kstored_free(buf[j]);
        buf[j] = buf[--n];
    }
    for (size_t i = 0; i < n; i++) kstored_free(buf[i]);
    free(buf);
    kiln_finish(r, w);
}
