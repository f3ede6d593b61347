/* kiln-augment — random image transforms, each record's draw keyed by (seed, id, epoch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "stream/options.h"
#include "data/sample.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "random image transforms for training, deterministic per record",
    .usage = "kiln augment [--seed S] OP...",
    .text =
        "Each OP is NAME[:ARGS][@P], applied in the order given with probability P (default 1;\n"
        "0.5 for the flips):\n"
        "  hflip, vflip            mirror left-right / top-bottom\n"
        "  crop:PAD[,reflect]      pad PAD pixels (zeros, or mirrored) and crop back at random\n"
        "  shift:PX                translate up to PX pixels in x and y (zeros shifted in)\n"
        "  rotate:DEG              rotate by up to DEG degrees either way (bilinear)\n"
        "  scale:LO-HI             zoom about the centre by a factor in [LO, HI]\n"
        "  jitter:B[,C[,S[,H]]]    brightness, contrast, saturation, hue (ColorJitter ranges)\n"
        "  noise:SIGMA             Gaussian noise of SIGMA levels (0..255)\n"
        "  cutout:N,SIZE           N random SIZExSIZE squares set to black\n"
        "  gray                    colour to luma (channels kept)\n"
        "A record's draws come from a counter-based generator keyed by (seed, id, epoch) only, so\n"
        "results never depend on record order, batching or the number of parallel workers.\n"
        "Records without an image (text, tokens, batches, ...) pass through unchanged.\n",
    .notes = "example:\n"
             "  kiln load png:photos --epochs 0 | kiln augment hflip crop:4,reflect jitter:0.2,0.2 "
             "\\\n"
             "    | kiln tokenize --levels 16 | kiln show\n",
    .max_args = 1 << 16,
};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    bool have_seed = false;
    uint64_t seed = 0;
    kopt rows[] = {
        KOPT_U64(0, "seed", &seed, "S", 0, UINT64_MAX,
                 "the seed (default: the upstream hdr's seed)", .given = &have_seed),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    int nops = cli.nargs;
    if (nops < 1) kiln_usage_error("no OP given (e.g. hflip crop:2)");
    kaug_op *ops = xcalloc((size_t)nops, sizeof *ops);
    char err[256];
    for (int i = 0; i < nops; i++)
        if (!kaug_parse(cli.args[i], &ops[i], err, sizeof err)) kiln_usage_error("%s", err);

    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    if (!have_seed) seed = krec_u64_or(hdr, "seed", 0);
    kwriter_hdr_begin(w, hdr, "sample", seed);
    kwriter_end(w);

    static const char *const replaced[] = {"image", NULL};
    kimage im = {0}, scratch = {0};
    krec rec;
    while (!kwriter_gone(w) && kreader_next(r, &rec)) {
        if (!krec_is(&rec, "sample") || !krec_image(&rec, &im)) {
            kwriter_pass(w, &rec);
        } else {
            krng rng;
            krng_init(&rng, seed, krec_u64_or(&rec, "id", rec.seq), krec_u64_or(&rec, "epoch", 0),
                      KRNG_AUGMENT);
            kaug_apply(ops, nops, &rng, &im, &scratch);
            uint64_t shape[3] = {(uint64_t)im.h, (uint64_t)im.w, (uint64_t)im.c};
            ktensor t = ktensor_make(KT_U8, im.data, 3, shape);
            kwriter_begin(w, "sample");
            kw_copy_fields(w, &rec, replaced);
            kw_tensor(w, "image", &t);
            kwriter_end(w);
        }
        if (kiln_stop_now()) break;
    }
    kimage_free(&im), kimage_free(&scratch);
    free(ops);
    kiln_finish(r, w);
}
